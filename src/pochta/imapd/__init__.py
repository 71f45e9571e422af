"""The IMAP service: sessions over the sans-IO core (proto.imap) and the store.

service.py gives the composition root its handlers; session.py is the loop of one connection;
auth.py the AUTHENTICATE exchange; selected.py the selected mailbox (seq↔UID map, pending updates);
mailboxes.py, messages.py, fetch.py and search.py the command groups; refusal.py maps failures to
tagged NO/BAD responses.
"""
