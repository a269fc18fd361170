//! The gateway's response cache: exact match on the normalized request ([`CacheKey`]),
//! entries that are exactly what the client received ([`Entry`]: a JSON body or recorded
//! server-sent events), and two backends behind [`CacheBackend`]: memory (bounded by bytes,
//! least recently used evicted first, per-entry TTL) and Redis (shared by instances).
//!
//! The cache is never a reason for a request to fail: a backend error is logged and counts
//! as a miss (for reads) or is dropped (for writes).

mod entry;
mod key;
mod memory;
mod redis;

pub use entry::{stream_is_complete, Directive, Entry, EntryKind};
pub use key::{write_canonical, CacheKey, IGNORED_FIELDS};
pub use memory::MemoryBackend;
pub use redis::RedisBackend;

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// A backend failure (Redis unreachable, timed out, ...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cache backend: {0}")]
pub struct CacheError(pub String);

/// Where entries live.
pub trait CacheBackend: Send + Sync {
    /// The live entry of `key`, if any.
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Entry>, CacheError>>;
    /// Stores `entry` under `key` for `ttl`.
    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: Entry,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>>;
}

/// The cache as the gateway uses it: a backend, the default TTL and the entry size limit.
#[derive(Clone)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    /// TTL when neither the policy nor the request gives one.
    pub default_ttl: Duration,
    /// Largest answer stored, bytes.
    pub max_entry_bytes: usize,
}

impl Cache {
    /// A cache over `backend`.
    pub fn new(
        backend: Arc<dyn CacheBackend>,
        default_ttl: Duration,
        max_entry_bytes: usize,
    ) -> Cache {
        Cache {
            backend,
            default_ttl,
            max_entry_bytes,
        }
    }

    /// The entry of `key`; a backend failure is logged and is a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<Entry> {
        match self.backend.get(key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cache read failed; answering from the upstream");
                None
            }
        }
    }

    /// Stores a successful answer in the background (never delays the response); answers
    /// over `max_entry_bytes` or with a non-2xx status are not stored.
    pub fn put(&self, key: CacheKey, entry: Entry, ttl: Duration) {
        if entry.body.len() > self.max_entry_bytes || !(200..300).contains(&entry.status) {
            return;
        }
        let backend = self.backend.clone();
        tokio::spawn(async move {
            if let Err(e) = backend.put(&key, entry, ttl).await {
                tracing::warn!(error = %e, "cache write failed; the answer is not cached");
            }
        });
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("default_ttl", &self.default_ttl)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish_non_exhaustive()
    }
}
