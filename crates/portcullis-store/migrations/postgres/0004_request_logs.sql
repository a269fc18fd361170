-- Request logs (issue 6): one row per data-plane request, batch-written by the
-- gateway's request-log queue and purged after the configured retention.
-- Times are unix seconds; `guardrails` is a JSON array of {rule, action}
-- (never the matched value); bodies are NULL unless the team enables them and
-- are stored after guardrail redaction. Kept the same as the SQLite
-- migration except for types.
CREATE TABLE request_logs (
    id                BIGSERIAL NOT NULL PRIMARY KEY,
    at                BIGINT  NOT NULL,
    request_id        TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    path              TEXT    NOT NULL,
    key_id            TEXT,
    principal         TEXT,
    team              TEXT,
    model             TEXT,
    provider          TEXT,
    status            INTEGER NOT NULL,
    denied            BOOLEAN NOT NULL DEFAULT FALSE,
    error             TEXT,
    reason            TEXT,
    policy_rule       TEXT,
    guardrails        TEXT    NOT NULL DEFAULT '[]',
    cache             TEXT,
    outcome           TEXT    NOT NULL,
    latency_us        BIGINT  NOT NULL,
    upstream_us       BIGINT,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    cached_tokens     BIGINT  NOT NULL,
    cost_micros       BIGINT  NOT NULL,
    client_ip         TEXT,
    request_body      TEXT,
    response_body     TEXT
);

CREATE INDEX request_logs_at_idx ON request_logs (at);
CREATE INDEX request_logs_team_idx ON request_logs (team, id);
CREATE INDEX request_logs_key_idx ON request_logs (key_id, id);
