-- Pochta SQLite schema, version 4: DKIM signing keys, per domain and selector (RFC 6376, RFC 8463).
CREATE TABLE dkim_keys (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,      -- rsa-sha256 or ed25519-sha256
    private_key TEXT NOT NULL,    -- PEM (RSA) or base64 seed (Ed25519), as dkimpy takes them
    public_key TEXT NOT NULL,     -- the p= value of the DNS record
    created INTEGER NOT NULL,
    UNIQUE (domain, selector)
);
