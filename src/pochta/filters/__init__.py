"""Checks that judge a message before we answer its DATA: sender authentication, viruses, spam."""
