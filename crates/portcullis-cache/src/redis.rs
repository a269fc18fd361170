//! The Redis backend: one string per entry (`SET ... PX ttl`), shared by every gateway
//! instance on the same Redis; Redis's own expiry and `maxmemory` policy bound it.

use crate::{CacheBackend, CacheError, CacheKey, Entry};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use futures_util::future::BoxFuture;
use std::time::Duration;

/// Entries in Redis under `prefix` + the key's hex.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn err(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string())
}

impl RedisBackend {
    /// Connects to `url`; every call gives up after `timeout` (a miss, never a failure of
    /// the request). Keys are `prefix` + hex digest (the gateway uses `portcullis:cache:`).
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        timeout: Duration,
    ) -> Result<RedisBackend, CacheError> {
        let client = ::redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout * 4)
            .set_response_timeout(timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let conn = tokio::time::timeout(
            timeout * 8,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| CacheError("timed out connecting to Redis".into()))?
        .map_err(err)?;
        Ok(RedisBackend {
            conn,
            prefix: prefix.into(),
            timeout,
        })
    }

    fn key(&self, key: &CacheKey) -> String {
        format!("{}{}", self.prefix, key.hex())
    }
}

impl CacheBackend for RedisBackend {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Result<Option<Entry>, CacheError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let cmd = ::redis::cmd("GET").arg(self.key(key)).clone();
            let raw: Option<Vec<u8>> =
                tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
                    .await
                    .map_err(|_| CacheError("Redis call timed out".into()))?
                    .map_err(err)?;
            Ok(raw.and_then(|b| Entry::decode(&b)))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        entry: Entry,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
            let cmd = ::redis::cmd("SET")
                .arg(self.key(key))
                .arg(entry.encode())
                .arg("PX")
                .arg(ms)
                .clone();
            let _: () = tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
                .await
                .map_err(|_| CacheError("Redis call timed out".into()))?
                .map_err(err)?;
            Ok(())
        })
    }
}
