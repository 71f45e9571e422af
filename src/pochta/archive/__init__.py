"""Archiving: import and export (mbox, Maildir, IMAP), online backup, restore and verify (docs/archive.md)."""
