-- Tamper-evident audit chain (issue 6). Appends take the `audit` revision row
-- lock first, so the chain head is read and extended by one writer at a time;
-- the counter also records how many chained records were ever appended, so
-- truncating the end of the log is detectable. Records written before this
-- migration keep NULL hashes and are reported as unchained.
INSERT INTO revisions (name, value) VALUES ('audit', 0);
