-- Pochta SQLite schema, version 8: how far each import got, written in the same transaction as the
-- messages it covers, so an import interrupted at any point resumes with no duplicate and no gap.
-- source names what was read ("mbox:/abs/path", "maildir:/abs/dir", "imap://user@host/folder"),
-- position is the source's own cursor (an mbox byte offset, a Maildir unique name, "uidvalidity:uid").
CREATE TABLE import_progress (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    position TEXT NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account_id, source, mailbox)
) WITHOUT ROWID;
