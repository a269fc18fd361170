//! The in-memory set of keys a running gateway authenticates against. It is rebuilt from
//! the store when the store's key revision changes and swapped in atomically, so the hot
//! path is one hash and one map lookup, with no store round trip.

use crate::keys::hash_key;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Why a presented key was not accepted. The messages never include the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Authorization/x-api-key header.
    #[error("missing API key: send Authorization: Bearer <key> or x-api-key: <key>")]
    Missing,
    /// Not a key this gateway issued.
    #[error("invalid API key")]
    Invalid,
    /// The key's expiry time has passed.
    #[error("API key has expired")]
    Expired,
    /// The key was revoked.
    #[error("API key has been revoked")]
    Revoked,
}

/// What the gateway knows about one key at request time.
#[derive(Debug)]
pub struct KeyEntry {
    /// Public key id, for logs and usage.
    pub id: String,
    /// Human name given at creation.
    pub name: String,
    /// Unix seconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// Unix seconds at which the key was revoked.
    pub revoked_at: Option<i64>,
    model_globs: Vec<String>,
    models: Option<GlobSet>,
    last_used: AtomicI64,
    /// Team the key belongs to (`None`: the policy's default team).
    pub team: Option<String>,
    /// Role the key carries (`developer` unless set).
    pub role: String,
    /// User or service account owning the key.
    pub owner: Option<String>,
}

impl KeyEntry {
    /// Builds an entry; `model_globs` empty means every model. Bad globs fail closed: the
    /// entry then allows no model at all.
    pub fn new(
        id: String,
        name: String,
        model_globs: Vec<String>,
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
    ) -> KeyEntry {
        let models = if model_globs.is_empty() {
            None
        } else {
            let mut builder = GlobSetBuilder::new();
            let mut ok = true;
            for pattern in &model_globs {
                match Glob::new(pattern) {
                    Ok(glob) => {
                        builder.add(glob);
                    }
                    Err(_) => ok = false,
                }
            }
            Some(if ok {
                builder.build().unwrap_or_else(|_| GlobSet::empty())
            } else {
                GlobSet::empty()
            })
        };
        KeyEntry {
            id,
            name,
            expires_at,
            revoked_at,
            model_globs,
            models,
            last_used: AtomicI64::new(0),
            team: None,
            role: "developer".into(),
            owner: None,
        }
    }

    /// Sets who the key acts as: team, role and owner.
    pub fn with_identity(
        mut self,
        team: Option<String>,
        role: String,
        owner: Option<String>,
    ) -> KeyEntry {
        self.team = team;
        self.role = role;
        self.owner = owner;
        self
    }

    /// Unix seconds of the latest successful authentication seen by this process (0 = none),
    /// flushed to the store in the background so stale keys can be found.
    pub fn last_used(&self) -> i64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Whether this key may call the public model `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        match &self.models {
            None => true,
            Some(set) => set.is_match(model),
        }
    }

    /// The model globs as given at creation.
    pub fn model_globs(&self) -> &[String] {
        &self.model_globs
    }
}

/// All known keys indexed by the SHA-256 of the secret.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
}

impl KeyRing {
    /// Builds the ring from (hex hash, entry) pairs; entries with a malformed hash are skipped.
    pub fn new(entries: impl IntoIterator<Item = (String, KeyEntry)>) -> KeyRing {
        let by_hash = entries
            .into_iter()
            .filter_map(|(hash_hex, entry)| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&hash_hex, &mut digest).ok()?;
                Some((digest, Arc::new(entry)))
            })
            .collect();
        KeyRing { by_hash }
    }

    /// Every entry, for background bookkeeping (last-use flushing).
    pub fn entries(&self) -> impl Iterator<Item = &Arc<KeyEntry>> {
        self.by_hash.values()
    }

    /// Number of keys known.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no key is known.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Authenticates a presented secret at time `now` (unix seconds).
    pub fn authenticate(&self, secret: &str, now: i64) -> Result<Arc<KeyEntry>, AuthError> {
        let entry = self
            .by_hash
            .get(&hash_key(secret))
            .ok_or(AuthError::Invalid)?;
        if entry.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if entry.expires_at.is_some_and(|at| now >= at) {
            return Err(AuthError::Expired);
        }
        if entry.last_used.load(Ordering::Relaxed) != now {
            entry.last_used.store(now, Ordering::Relaxed);
        }
        Ok(entry.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key;

    fn ring_with(
        globs: Vec<String>,
        expires: Option<i64>,
        revoked: Option<i64>,
    ) -> (KeyRing, String) {
        let key = generate_key().unwrap();
        let entry = KeyEntry::new(key.id.clone(), "t".into(), globs, expires, revoked);
        (KeyRing::new([(key.hash.clone(), entry)]), key.secret)
    }

    #[test]
    fn authenticates_and_refuses() {
        let (ring, secret) = ring_with(vec![], None, None);
        assert!(ring.authenticate(&secret, 0).is_ok());
        assert_eq!(
            ring.authenticate("pcl_nope", 0).unwrap_err(),
            AuthError::Invalid
        );
        let (ring, secret) = ring_with(vec![], Some(100), None);
        assert!(ring.authenticate(&secret, 99).is_ok());
        assert_eq!(
            ring.authenticate(&secret, 100).unwrap_err(),
            AuthError::Expired
        );
        let (ring, secret) = ring_with(vec![], None, Some(5));
        assert_eq!(
            ring.authenticate(&secret, 0).unwrap_err(),
            AuthError::Revoked
        );
    }

    #[test]
    fn model_globs_restrict() {
        let (ring, secret) = ring_with(vec!["gpt-4o*".into(), "mock-echo".into()], None, None);
        let entry = ring.authenticate(&secret, 0).unwrap();
        assert!(entry.allows_model("gpt-4o-mini"));
        assert!(entry.allows_model("mock-echo"));
        assert!(!entry.allows_model("claude-sonnet"));
        let open = KeyEntry::new("k".into(), "n".into(), vec![], None, None);
        assert!(open.allows_model("anything"));
        let broken = KeyEntry::new("k".into(), "n".into(), vec!["[".into()], None, None);
        assert!(!broken.allows_model("["), "a bad glob must fail closed");
    }
}
