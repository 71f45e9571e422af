-- Pochta SQLite schema, version 7: retention policies, the undelete bin, the compliance journal's index
-- and quota warnings (archive/retention.py, archive/undelete.py, archive/journal.py, archive/quota.py).

-- One rule per (target, mailbox): target is a domain name or an account address; the most specific wins
-- (account over domain over the [retention] config defaults). days = 0 turns an inherited rule off.
CREATE TABLE retention_policies (
    target TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    action TEXT NOT NULL,             -- 'archive' or 'expunge'
    days INTEGER NOT NULL,
    per_year INTEGER NOT NULL DEFAULT 0,  -- archive into Archive/<year of the message>
    PRIMARY KEY (target, mailbox)
) WITHOUT ROWID;

-- Expunged messages kept for undelete: invisible to IMAP and POP3, not counted in quota, purged after
-- [retention] undelete_days. The blob stays referenced (by blob_id) while a row is here.
CREATE TABLE deleted_messages (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mailbox TEXT NOT NULL,            -- its mailbox's name when it was expunged
    flags TEXT NOT NULL DEFAULT '',
    internal_date INTEGER NOT NULL,
    expunged INTEGER NOT NULL,
    size INTEGER NOT NULL,
    blob_id TEXT NOT NULL,
    structure BLOB NOT NULL,
    envelope BLOB
);
CREATE INDEX deleted_by_account ON deleted_messages (account_id, expunged);
CREATE INDEX deleted_by_time ON deleted_messages (expunged);
CREATE INDEX deleted_by_blob ON deleted_messages (blob_id);

-- Domains whose mail is journaled; retention_days = 0 keeps the journal for ever.
CREATE TABLE journal_domains (
    domain TEXT PRIMARY KEY,
    retention_days INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The index of the journal's segment files (data_dir/journal/<domain>/<day>.zst): one row per record.
CREATE TABLE journal (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    segment TEXT NOT NULL,            -- the segment file's name, "YYYY-MM-DD.zst"
    offset INTEGER NOT NULL,          -- where the record's zstd frame starts in the segment
    length INTEGER NOT NULL,          -- the frame's length in octets
    received INTEGER NOT NULL,
    direction TEXT NOT NULL,          -- 'in' (MX) or 'out' (submission)
    sender TEXT NOT NULL,
    size INTEGER NOT NULL             -- the message's size before compression
);
CREATE INDEX journal_by_time ON journal (received);
CREATE INDEX journal_by_segment ON journal (domain, segment);
CREATE INDEX journal_by_sender ON journal (sender);

CREATE TABLE journal_recipients (
    journal_id INTEGER NOT NULL REFERENCES journal(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (journal_id, address)
) WITHOUT ROWID;
CREATE INDEX journal_recipients_by_address ON journal_recipients (address);

-- Accounts told that their mailbox passed the warning level; the row goes when usage drops below it.
CREATE TABLE quota_warnings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    warned INTEGER NOT NULL
);
