-- Pochta SQLite schema, version 2: the SMTP envelope a message arrived with (JSON, mail.envelope),
-- kept for DSN handling and Sieve's envelope test; NULL for messages that came without one (IMAP APPEND).
ALTER TABLE messages ADD COLUMN envelope BLOB;
