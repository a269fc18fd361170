-- Identity, versioned policies, audit, shadow mode and usage (issue 4).
-- Times are unix seconds. Every table here is written through the Store API;
-- the SQL is kept the same as the SQLite migration except for types.

-- Keys now belong to a team, carry a role and name their owner (a user id or
-- a service-account name). Existing keys become team-less developers.
ALTER TABLE api_keys ADD COLUMN team TEXT;
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'developer';
ALTER TABLE api_keys ADD COLUMN owner TEXT;
CREATE INDEX api_keys_team_idx ON api_keys (team);

CREATE TABLE users (
    id          TEXT   NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    email       TEXT,
    team        TEXT,
    role        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE teams (
    name        TEXT   NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

-- Immutable policy documents, numbered 1, 2, 3, ... without gaps.
CREATE TABLE policy_versions (
    version    BIGINT NOT NULL PRIMARY KEY,
    document   TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    author     TEXT   NOT NULL,
    comment    TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

-- Which version is enforced and which one (if any) runs in shadow mode.
-- Exactly one row (id = 1).
CREATE TABLE policy_state (
    id                INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    active_version    BIGINT REFERENCES policy_versions (version),
    shadow_version    BIGINT REFERENCES policy_versions (version),
    shadow_started_at BIGINT
);

INSERT INTO policy_state (id, active_version, shadow_version, shadow_started_at)
VALUES (1, NULL, NULL, NULL);

INSERT INTO revisions (name, value) VALUES ('policy', 0);
INSERT INTO revisions (name, value) VALUES ('identity', 0);

-- Append-only audit log. `detail` is JSON text (kept verbatim, as the future
-- hash chain hashes these exact bytes). `prev_hash`/`hash` are reserved for
-- the tamper-evident hash chain (NULL until it exists).
CREATE TABLE audit_log (
    id        BIGSERIAL NOT NULL PRIMARY KEY,
    at        BIGINT    NOT NULL,
    actor     TEXT      NOT NULL,
    action    TEXT      NOT NULL,
    target    TEXT      NOT NULL,
    outcome   TEXT      NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    detail    TEXT      NOT NULL DEFAULT '{}',
    prev_hash TEXT,
    hash      TEXT
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);

-- Immutability of policy versions and the audit log, enforced by the
-- database as well as by the absence of any update/delete API.
CREATE FUNCTION portcullis_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER policy_versions_immutable BEFORE UPDATE OR DELETE ON policy_versions
FOR EACH ROW EXECUTE FUNCTION portcullis_forbid_change();
CREATE TRIGGER policy_versions_no_truncate BEFORE TRUNCATE ON policy_versions
FOR EACH STATEMENT EXECUTE FUNCTION portcullis_forbid_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION portcullis_forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION portcullis_forbid_change();

-- Requests where the shadow policy decided differently from the active one.
CREATE TABLE shadow_events (
    id             BIGSERIAL NOT NULL PRIMARY KEY,
    at             BIGINT    NOT NULL,
    active_version BIGINT,
    shadow_version BIGINT    NOT NULL,
    kind           TEXT      NOT NULL,
    principal      TEXT      NOT NULL,
    team           TEXT,
    target         TEXT      NOT NULL,
    active_rule    TEXT      NOT NULL,
    shadow_rule    TEXT      NOT NULL,
    summary        TEXT      NOT NULL
);

CREATE INDEX shadow_events_version_idx ON shadow_events (shadow_version, id);

-- One row per settled request: tokens and cost (micro-USD).
CREATE TABLE usage (
    id                BIGSERIAL NOT NULL PRIMARY KEY,
    at                BIGINT    NOT NULL,
    request_id        TEXT      NOT NULL,
    key_id            TEXT      NOT NULL,
    team              TEXT,
    model             TEXT      NOT NULL,
    provider          TEXT      NOT NULL,
    status            INTEGER   NOT NULL,
    prompt_tokens     BIGINT    NOT NULL,
    completion_tokens BIGINT    NOT NULL,
    cached_tokens     BIGINT    NOT NULL,
    cost_micros       BIGINT    NOT NULL
);

CREATE INDEX usage_team_at_idx ON usage (team, at);
CREATE INDEX usage_key_at_idx ON usage (key_id, at);
CREATE INDEX usage_at_idx ON usage (at);
