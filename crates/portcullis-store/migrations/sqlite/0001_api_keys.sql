-- Virtual API keys. Times are unix seconds. `models` is a JSON array of glob
-- strings (empty array = all models). `hash` is the lowercase hex SHA-256 of
-- the key; the key itself is never stored.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    models       TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

CREATE UNIQUE INDEX api_keys_hash_idx ON api_keys (hash);
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

-- Change counters polled by running gateways to know when to reload state.
-- One row per kind of state; later migrations add rows ('policies', ...).
CREATE TABLE revisions (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);

INSERT INTO revisions (name, value) VALUES ('keys', 0);
