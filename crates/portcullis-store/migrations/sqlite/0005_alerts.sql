-- Anomaly alerts (issue 6). One row per raised alert; repeats of the same rule and
-- subject inside the deduplication window update `count` and `last_at` instead of
-- adding rows. Times are unix seconds; `detail` is JSON text (never secrets).
CREATE TABLE alerts (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    rule     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    severity TEXT    NOT NULL,
    message  TEXT    NOT NULL,
    key_id   TEXT,
    team     TEXT,
    detail   TEXT    NOT NULL DEFAULT '{}',
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    count    INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX alerts_first_at_idx ON alerts (first_at);
CREATE INDEX alerts_rule_subject_idx ON alerts (rule, subject, first_at);
