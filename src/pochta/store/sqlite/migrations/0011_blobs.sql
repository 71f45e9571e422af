-- Small blobs (message bodies up to store.blobs.INLINE_LIMIT octets) as rows, written in the same transaction
-- as the rows that name them: one group commit makes a batch of messages durable, with no file per message.
-- Larger blobs stay files under blobs/. Content-addressed like the files: id is the SHA-256 in hex.
CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
