//! The in-process backend: a map in least-recently-used order, bounded by the bytes of
//! its entries; every entry carries its own expiry. Time is tokio's clock, so tests can
//! pause and advance it.

use crate::{CacheBackend, CacheError, CacheKey, Entry};
use futures_util::future::BoxFuture;
use hashlink::LinkedHashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

struct Slot {
    entry: Entry,
    expires: Instant,
    weight: usize,
}

#[derive(Default)]
struct Inner {
    /// Front = least recently used.
    map: LinkedHashMap<CacheKey, Slot>,
    bytes: usize,
}

/// Entries in memory, at most `max_bytes` of them (by [`Entry::weight`]).
pub struct MemoryBackend {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

impl MemoryBackend {
    /// An empty cache holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> MemoryBackend {
        MemoryBackend {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Entries currently held (expired ones included until they are touched or evicted).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entry of `key`, now most recently used.
    pub fn get_now(&self, key: &CacheKey) -> Option<Entry> {
        let now = Instant::now();
        let mut inner = self.lock();
        let expired = inner.map.get(key).map(|s| s.expires <= now)?;
        if expired {
            if let Some(slot) = inner.map.remove(key) {
                inner.bytes -= slot.weight;
            }
            return None;
        }
        inner.map.to_back(key);
        inner.map.get(key).map(|s| s.entry.clone())
    }

    /// Stores `entry` for `ttl`, evicting least recently used entries to make room. An
    /// entry larger than the whole bound is not stored.
    pub fn put_now(&self, key: CacheKey, entry: Entry, ttl: Duration) {
        let weight = entry.weight();
        if weight > self.max_bytes {
            return;
        }
        let expires = Instant::now() + ttl;
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&key) {
            inner.bytes -= old.weight;
        }
        while inner.bytes + weight > self.max_bytes {
            match inner.map.pop_front() {
                Some((_, slot)) => inner.bytes -= slot.weight,
                None => break,
            }
        }
        inner.bytes += weight;
        inner.map.insert(
            key,
            Slot {
                entry,
                expires,
                weight,
            },
        );
    }
}

impl CacheBackend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Entry>, CacheError>> {
        Box::pin(async move { Ok(self.get_now(key)) })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: Entry,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            self.put_now(*key, entry, ttl);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use bytes::Bytes;

    fn entry(size: usize) -> Entry {
        Entry {
            kind: EntryKind::Json,
            status: 200,
            body: Bytes::from(vec![b'x'; size]),
        }
    }

    fn k(i: u8) -> CacheKey {
        CacheKey([i; 32])
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let cache = MemoryBackend::new(10_000);
        cache.put_now(k(1), entry(10), Duration::from_secs(60));
        cache.put_now(k(2), entry(10), Duration::from_secs(600));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.get_now(&k(1)).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get_now(&k(1)).is_none(), "expired after 60 s");
        assert!(cache.get_now(&k(2)).is_some());
        assert_eq!(cache.len(), 1, "the expired entry was dropped");
        assert_eq!(cache.bytes(), entry(10).weight());
    }

    #[tokio::test(start_paused = true)]
    async fn the_size_bound_evicts_least_recently_used() {
        let w = entry(100).weight();
        let cache = MemoryBackend::new(3 * w);
        for i in 1..=3 {
            cache.put_now(k(i), entry(100), Duration::from_secs(60));
        }
        assert!(cache.get_now(&k(1)).is_some(), "1 is now the most recent");
        cache.put_now(k(4), entry(100), Duration::from_secs(60));
        assert!(cache.get_now(&k(2)).is_none(), "2 was least recently used");
        for i in [1, 3, 4] {
            assert!(cache.get_now(&k(i)).is_some(), "{i} kept");
        }
        assert_eq!(cache.bytes(), 3 * w);
        // A large entry pushes out as many as needed; one over the bound is refused.
        cache.put_now(k(5), entry(2 * w), Duration::from_secs(60));
        assert!(cache.bytes() <= 3 * w);
        assert!(cache.get_now(&k(5)).is_some());
        cache.put_now(k(6), entry(3 * w), Duration::from_secs(60));
        assert!(cache.get_now(&k(6)).is_none());
        assert!(
            cache.get_now(&k(5)).is_some(),
            "a refused entry evicts nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_an_entry_keeps_the_byte_count_true() {
        let cache = MemoryBackend::new(10_000);
        cache.put_now(k(1), entry(100), Duration::from_secs(60));
        cache.put_now(k(1), entry(10), Duration::from_secs(60));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), entry(10).weight());
    }
}
