-- Pochta SQLite schema, version 5: the learning spam filter. Account id 0 is the global model and the
-- server-wide allow/block list; other ids are accounts (their rows go with the account).
CREATE TABLE spam_tokens (
    account_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    spam INTEGER NOT NULL DEFAULT 0,   -- spam messages that held the token
    ham INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;

CREATE TABLE spam_totals (
    account_id INTEGER PRIMARY KEY,
    spam INTEGER NOT NULL DEFAULT 0,   -- messages trained as spam
    ham INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
);

-- what each model was taught, by message digest (the blob id): no message counts twice, and a message
-- trained the other way is first un-learned
CREATE TABLE spam_trained (
    account_id INTEGER NOT NULL,
    message TEXT NOT NULL,
    is_spam INTEGER NOT NULL,
    PRIMARY KEY (account_id, message)
) WITHOUT ROWID;

CREATE TABLE spam_lists (
    account_id INTEGER NOT NULL,
    pattern TEXT NOT NULL,             -- local@domain or @domain
    is_block INTEGER NOT NULL,
    PRIMARY KEY (account_id, pattern)
) WITHOUT ROWID;

CREATE TRIGGER spam_account_removed AFTER DELETE ON accounts BEGIN
    DELETE FROM spam_tokens WHERE account_id = OLD.id;
    DELETE FROM spam_totals WHERE account_id = OLD.id;
    DELETE FROM spam_trained WHERE account_id = OLD.id;
    DELETE FROM spam_lists WHERE account_id = OLD.id;
END;
