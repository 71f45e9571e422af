-- Subscriptions are names, not mailboxes: RFC 9051 §6.3.7 keeps a subscription when its mailbox is
-- deleted (LIST (SUBSCRIBED) shows it \NonExistent) and allows subscribing to a name that does not exist.
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed = 1;

ALTER TABLE mailboxes DROP COLUMN subscribed;
