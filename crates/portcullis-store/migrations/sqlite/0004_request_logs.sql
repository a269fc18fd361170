-- Request logs (issue 6): one row per data-plane request, batch-written by the
-- gateway's request-log queue and purged after the configured retention.
-- Times are unix seconds; `guardrails` is a JSON array of {rule, action}
-- (never the matched value); bodies are NULL unless the team enables them and
-- are stored after guardrail redaction. Kept the same as the PostgreSQL
-- migration except for types.
CREATE TABLE request_logs (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at                INTEGER NOT NULL,
    request_id        TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    path              TEXT    NOT NULL,
    key_id            TEXT,
    principal         TEXT,
    team              TEXT,
    model             TEXT,
    provider          TEXT,
    status            INTEGER NOT NULL,
    denied            INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    reason            TEXT,
    policy_rule       TEXT,
    guardrails        TEXT    NOT NULL DEFAULT '[]',
    cache             TEXT,
    outcome           TEXT    NOT NULL,
    latency_us        INTEGER NOT NULL,
    upstream_us       INTEGER,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost_micros       INTEGER NOT NULL,
    client_ip         TEXT,
    request_body      TEXT,
    response_body     TEXT
);

CREATE INDEX request_logs_at_idx ON request_logs (at);
CREATE INDEX request_logs_team_idx ON request_logs (team, id);
CREATE INDEX request_logs_key_idx ON request_logs (key_id, id);
