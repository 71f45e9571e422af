-- Pochta SQLite schema, version 10: the spam filter's linear model (filters/spam/linear.py), a weight per
-- word feature and per octet 4-gram, beside the token counts of version 5. Weights change by adding
-- (training writes the changes it computed), so two writers (the server and `pochta spam train`) add up.
CREATE TABLE spam_word_weights (
    account_id INTEGER NOT NULL,       -- 0: the global model
    token TEXT NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;

CREATE TABLE spam_gram_weights (
    account_id INTEGER NOT NULL,
    gram INTEGER NOT NULL,             -- four octets as a little-endian 32-bit number
    weight REAL NOT NULL,
    PRIMARY KEY (account_id, gram)
) WITHOUT ROWID;

DROP TRIGGER spam_account_removed;
CREATE TRIGGER spam_account_removed AFTER DELETE ON accounts BEGIN
    DELETE FROM spam_tokens WHERE account_id = OLD.id;
    DELETE FROM spam_totals WHERE account_id = OLD.id;
    DELETE FROM spam_trained WHERE account_id = OLD.id;
    DELETE FROM spam_lists WHERE account_id = OLD.id;
    DELETE FROM spam_word_weights WHERE account_id = OLD.id;
    DELETE FROM spam_gram_weights WHERE account_id = OLD.id;
END;
