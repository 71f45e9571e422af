-- Pochta SQLite schema, version 6: Sieve (RFC 5228). Each account's scripts, at most one active, and the
-- marks scripts leave behind: vacation replies sent (RFC 5230 §4.2, one per sender and :days) and
-- duplicate ids seen (RFC 7352), each with its expiry.
CREATE TABLE sieve_scripts (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,   -- bumped on each change: delivery caches parsed scripts by (id, version)
    updated INTEGER NOT NULL,
    UNIQUE (account_id, name)
);
-- RFC 5804 §1.3: at most one active script per account
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (account_id) WHERE active = 1;

CREATE TABLE sieve_marks (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,       -- 'vacation' (key: handle NUL sender) or 'duplicate' (key: the id)
    key TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind, key)
) WITHOUT ROWID;
