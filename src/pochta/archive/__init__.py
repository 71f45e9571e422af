"""Archiving: retention policies, the undelete bin, the compliance journal, quota warnings (and, beside
them, import/export and backup)."""
