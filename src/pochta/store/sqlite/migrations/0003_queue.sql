-- Pochta SQLite schema, version 3: the outbound queue. One row per message and destination domain
-- (so each remote is tried on its own schedule), its recipients beside it.
CREATE TABLE queue (
    id INTEGER PRIMARY KEY,
    blob_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    envelope BLOB NOT NULL,          -- mail.envelope JSON: sender, body type, RET, ENVID
    domain TEXT NOT NULL,            -- destination domain, normalised
    account_id INTEGER,              -- the submitting account, if any (NULL for bounces and forwards)
    created INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,                -- a worker delivering it now, until lease_until
    lease_until INTEGER NOT NULL DEFAULT 0,
    delay_notified INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX queue_due ON queue (held, next_attempt);

CREATE TABLE queue_recipients (
    queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    notify TEXT NOT NULL DEFAULT '',  -- RFC 3461 NOTIFY keywords, space-separated
    orcpt TEXT,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    reply TEXT,                             -- the last remote answer for this recipient
    PRIMARY KEY (queue_id, address)
) WITHOUT ROWID;
