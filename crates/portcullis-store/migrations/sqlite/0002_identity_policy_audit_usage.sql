-- Identity, versioned policies, audit, shadow mode and usage (issue 4).
-- Times are unix seconds. Every table here is written through the Store API;
-- the SQL is kept the same as the PostgreSQL migration except for types.

-- Keys now belong to a team, carry a role and name their owner (a user id or
-- a service-account name). Existing keys become team-less developers.
ALTER TABLE api_keys ADD COLUMN team TEXT;
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'developer';
ALTER TABLE api_keys ADD COLUMN owner TEXT;
CREATE INDEX api_keys_team_idx ON api_keys (team);

CREATE TABLE users (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    email       TEXT,
    team        TEXT,
    role        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
);

CREATE TABLE teams (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

-- Immutable policy documents, numbered 1, 2, 3, ... without gaps.
CREATE TABLE policy_versions (
    version    INTEGER NOT NULL PRIMARY KEY,
    document   TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    comment    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is immutable');
END;

CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is immutable');
END;

-- Which version is enforced and which one (if any) runs in shadow mode.
-- Exactly one row (id = 1).
CREATE TABLE policy_state (
    id                INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    active_version    INTEGER REFERENCES policy_versions (version),
    shadow_version    INTEGER REFERENCES policy_versions (version),
    shadow_started_at INTEGER
);

INSERT INTO policy_state (id, active_version, shadow_version, shadow_started_at)
VALUES (1, NULL, NULL, NULL);

INSERT INTO revisions (name, value) VALUES ('policy', 0);
INSERT INTO revisions (name, value) VALUES ('identity', 0);

-- Append-only audit log. `detail` is JSON text. `prev_hash`/`hash` are
-- reserved for the tamper-evident hash chain (NULL until it exists).
CREATE TABLE audit_log (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    detail    TEXT    NOT NULL DEFAULT '{}',
    prev_hash TEXT,
    hash      TEXT
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Requests where the shadow policy decided differently from the active one.
CREATE TABLE shadow_events (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    active_version INTEGER,
    shadow_version INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    principal      TEXT    NOT NULL,
    team           TEXT,
    target         TEXT    NOT NULL,
    active_rule    TEXT    NOT NULL,
    shadow_rule    TEXT    NOT NULL,
    summary        TEXT    NOT NULL
);

CREATE INDEX shadow_events_version_idx ON shadow_events (shadow_version, id);

-- One row per settled request: tokens and cost (micro-USD).
CREATE TABLE usage (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at                INTEGER NOT NULL,
    request_id        TEXT    NOT NULL,
    key_id            TEXT    NOT NULL,
    team              TEXT,
    model             TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    status            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost_micros       INTEGER NOT NULL
);

CREATE INDEX usage_team_at_idx ON usage (team, at);
CREATE INDEX usage_key_at_idx ON usage (key_id, at);
CREATE INDEX usage_at_idx ON usage (at);
