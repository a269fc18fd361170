//! The tamper-evident hash chain over the audit log.
//!
//! Every record appended by [`Store::append_audit`] carries
//! `hash = hex(sha256(prev_hash || canonical))`, where `prev_hash` is the
//! previous record's hash ([`GENESIS_HASH`] for the first chained record) and
//! `canonical` is the compact JSON object of the record's fields with keys in
//! bytewise order: `{"action":..,"actor":..,"at":..,"detail":..,"id":..,
//! "outcome":..,"target":..}`. `detail` is the stored JSON *text* as a JSON
//! string, so the hash covers its exact bytes and any external tool can
//! recompute it without re-encoding numbers.
//!
//! Appends are serialised on the `audit` row of `revisions` (the same lock
//! pattern as policy versions), ids are assigned `max + 1` under that lock, so
//! chained ids are contiguous and a missing id is a deleted record. The
//! counter also counts chained appends, which makes truncating the end of the
//! log visible too.
//!
//! What the chain cannot do on its own: an attacker with write access who
//! recomputes every later hash and the counter produces a valid-looking chain.
//! Anchor the head (printed by `portcullis audit verify`) outside the
//! database, e.g. in the exported JSON lines or a ticket, to catch that.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Result, Store};

/// The `prev_hash` of the first chained record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Records read per query while verifying.
const PAGE: i64 = 1000;

/// The fields of one record that the hash covers.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ChainFields<'a> {
    // Declared in bytewise key order: serialisation order is the canonical order.
    pub action: &'a str,
    pub actor: &'a str,
    pub at: i64,
    pub detail: &'a str,
    pub id: i64,
    pub outcome: &'a str,
    pub target: &'a str,
}

impl ChainFields<'_> {
    /// `hex(sha256(prev_hash || canonical JSON))`.
    pub(crate) fn hash(&self, prev_hash: &str) -> String {
        // Serialising &str/i64 fields cannot fail.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let mut digest = Sha256::new();
        digest.update(prev_hash.as_bytes());
        digest.update(&canonical);
        hex::encode(digest.finalize())
    }
}

/// The newest chained record: anchor it elsewhere to detect a rewritten chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    /// Its id.
    pub id: i64,
    /// Its hash.
    pub hash: String,
}

/// The result of [`Store::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ChainVerdict {
    /// Every record read (chained or not).
    pub records: u64,
    /// Records written before the chain existed (hash NULL), all before the
    /// first chained record; they are not covered by the chain.
    pub unchained: u64,
    /// The last chained record read, if any.
    pub head: Option<ChainHead>,
    /// The first record that fails verification and why; `None` when intact.
    pub first_broken: Option<(i64, String)>,
}

impl ChainVerdict {
    /// True when no record failed verification.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

impl std::fmt::Display for ChainVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.first_broken {
            None => write!(f, "audit chain intact: {} record(s)", self.records)?,
            Some((id, reason)) => write!(f, "audit chain BROKEN at record {id}: {reason}")?,
        }
        if self.unchained > 0 {
            write!(
                f,
                "; {} unchained record(s) from before the chain",
                self.unchained
            )?;
        }
        if let Some(head) = &self.head {
            write!(f, "; head {} {}", head.id, head.hash)?;
        }
        Ok(())
    }
}

/// One stored row as the verifier reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ChainRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl ChainRow {
    fn fields(&self) -> ChainFields<'_> {
        ChainFields {
            action: &self.action,
            actor: &self.actor,
            at: self.at,
            detail: &self.detail,
            id: self.id,
            outcome: &self.outcome,
            target: &self.target,
        }
    }
}

/// Pure verification state, fed rows in id order (no I/O, unit-tested).
#[derive(Debug, Default)]
pub(crate) struct Walker {
    verdict: ChainVerdict,
    chained: i64,
}

impl Walker {
    /// Checks the next row (ascending id); after the first break rows are
    /// only counted.
    pub(crate) fn push(&mut self, row: &ChainRow) {
        self.verdict.records += 1;
        if self.verdict.first_broken.is_some() {
            return;
        }
        if let Err(reason) = self.check(row) {
            self.verdict.first_broken = Some((row.id, reason));
        }
    }

    fn check(&mut self, row: &ChainRow) -> std::result::Result<(), String> {
        let head = self.verdict.head.as_ref();
        let Some(hash) = &row.hash else {
            if let Some(h) = head {
                return Err(format!(
                    "hash is missing after chained record {} (hash removed)",
                    h.id
                ));
            }
            if row.prev_hash.is_some() {
                return Err("prev_hash is set but hash is missing".into());
            }
            self.verdict.unchained += 1;
            return Ok(());
        };
        let prev = row.prev_hash.as_deref().ok_or("prev_hash is missing")?;
        match head {
            None if prev != GENESIS_HASH => {
                return Err(
                    "the first chained record does not link to the genesis hash: \
                            earlier chained records were deleted, or it was edited"
                        .into(),
                )
            }
            Some(h) if row.id != h.id + 1 => {
                return Err(format!(
                    "records {}..={} are missing after record {} (deleted)",
                    h.id + 1,
                    row.id - 1,
                    h.id
                ))
            }
            Some(h) if prev != h.hash => {
                return Err(format!(
                    "prev_hash does not match the hash of record {}: \
                     a record was deleted, replaced or reordered",
                    h.id
                ))
            }
            _ => {}
        }
        if row.fields().hash(prev) != *hash {
            return Err("content does not match its hash (edited or reordered)".into());
        }
        self.chained += 1;
        self.verdict.head = Some(ChainHead {
            id: row.id,
            hash: hash.clone(),
        });
        Ok(())
    }

    /// The verdict, given how many chained appends the `audit` counter
    /// recorded before the walk started.
    pub(crate) fn finish(mut self, appended: i64) -> ChainVerdict {
        if self.verdict.first_broken.is_none() && self.chained < appended {
            let last = self.verdict.head.as_ref().map_or(0, |h| h.id);
            let reason = format!(
                "{} chained record(s) missing at the end of the log \
                 ({appended} appended, {} found): records after {last} were deleted",
                appended - self.chained,
                self.chained
            );
            self.verdict.first_broken = Some((last + 1, reason));
        }
        self.verdict
    }
}

impl Store {
    /// Walks the whole audit log in id order, recomputes every hash and
    /// returns the verdict: the first broken record (edited content, a
    /// deleted or reordered record, a removed hash, a truncated end) or
    /// intact. Records from before the chain existed are counted as
    /// `unchained`. Reads in pages; safe to run while records are appended.
    pub async fn verify_audit_chain(&self) -> Result<ChainVerdict> {
        // Read first: every record committed by now is counted by it.
        let appended = self.revision("audit").await?;
        let sql = "SELECT id, at, actor, action, target, outcome, detail, prev_hash, hash \
                   FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2";
        let mut walker = Walker::default();
        let mut after = i64::MIN;
        loop {
            let rows: Vec<ChainRow> = with_pool!(self, pool => {
                sqlx::query_as::<_, ChainRow>(sql)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(pool)
                    .await?
            });
            for row in &rows {
                walker.push(row);
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == PAGE => after = last.id,
                _ => break,
            }
        }
        Ok(walker.finish(appended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|id| {
                let mut row = ChainRow {
                    id,
                    at: 100 + id,
                    actor: "a".into(),
                    action: "x.y".into(),
                    target: format!("t{id}"),
                    outcome: "ok".into(),
                    detail: format!("{{\"n\":{id}}}"),
                    prev_hash: Some(prev.clone()),
                    hash: None,
                };
                let h = row.fields().hash(&prev);
                row.hash = Some(h.clone());
                prev = h;
                row
            })
            .collect()
    }

    fn verdict(rows: &[ChainRow], appended: i64) -> ChainVerdict {
        let mut w = Walker::default();
        rows.iter().for_each(|r| w.push(r));
        w.finish(appended)
    }

    #[test]
    fn canonical_form_is_sorted_compact_json() {
        let rows = chain(1);
        let canonical = serde_json::to_string(&rows[0].fields()).unwrap();
        assert_eq!(
            canonical,
            r#"{"action":"x.y","actor":"a","at":101,"detail":"{\"n\":1}","id":1,"outcome":"ok","target":"t1"}"#
        );
        let mut d = Sha256::new();
        d.update(GENESIS_HASH.as_bytes());
        d.update(canonical.as_bytes());
        assert_eq!(
            rows[0].hash.as_deref(),
            Some(hex::encode(d.finalize()).as_str())
        );
    }

    #[test]
    fn intact_edited_deleted_truncated_and_unchained() {
        let rows = chain(5);
        let v = verdict(&rows, 5);
        assert!(v.is_intact(), "{v}");
        assert_eq!((v.records, v.head.unwrap().id), (5, 5));

        let mut edited = rows.clone();
        edited[2].detail = "{\"n\":99}".into();
        assert_eq!(verdict(&edited, 5).first_broken.unwrap().0, 3);

        let mut deleted = rows.clone();
        deleted.remove(1);
        let (id, reason) = verdict(&deleted, 5).first_broken.unwrap();
        assert_eq!(id, 3);
        assert!(reason.contains("records 2..=2 are missing"), "{reason}");

        let first_gone = &rows[1..];
        assert_eq!(verdict(first_gone, 5).first_broken.unwrap().0, 2);

        let (id, reason) = verdict(&rows[..3], 5).first_broken.unwrap();
        assert_eq!(id, 4);
        assert!(reason.contains("2 chained record(s) missing"), "{reason}");

        let mut legacy = vec![ChainRow {
            prev_hash: None,
            hash: None,
            ..rows[0].clone()
        }];
        legacy.extend(chain(3).into_iter().map(|mut r| {
            r.id += 1;
            r.prev_hash = Some(GENESIS_HASH.into());
            r
        }));
        // Re-chain the shifted rows properly.
        let mut prev = GENESIS_HASH.to_string();
        for r in legacy.iter_mut().skip(1) {
            r.prev_hash = Some(prev.clone());
            let h = r.fields().hash(&prev);
            r.hash = Some(h.clone());
            prev = h;
        }
        let v = verdict(&legacy, 3);
        assert!(v.is_intact(), "{v}");
        assert_eq!((v.records, v.unchained), (4, 1));

        let mut stripped = rows.clone();
        stripped[3].hash = None;
        stripped[3].prev_hash = None;
        assert_eq!(verdict(&stripped, 5).first_broken.unwrap().0, 4);
    }
}
