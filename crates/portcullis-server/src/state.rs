//! Shared state of a running gateway: the compiled routing table, provider clients, and the
//! key ring, which a background task refreshes from the store when its revision changes.

use arc_swap::ArcSwap;
use portcullis_config::Config;
use portcullis_policy::{KeyEntry, KeyRing};
use portcullis_providers::{Provider, Providers};
use portcullis_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the key revision is polled: changes made by the CLI are live within this.
pub const KEY_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often last-use times are written back to the store.
const LAST_USED_FLUSH_EVERY: u32 = 120;

/// A public model and where it goes.
#[derive(Debug)]
pub struct Route {
    /// Public name.
    pub model: String,
    /// Name sent upstream.
    pub upstream_model: String,
    /// Client for the serving provider.
    pub provider: Arc<Provider>,
}

/// Everything a request handler needs.
pub struct AppState {
    /// Model name -> route.
    pub routes: HashMap<String, Arc<Route>>,
    /// Public model names in configuration order (for /v1/models).
    pub model_order: Vec<String>,
    /// Largest accepted request body, bytes.
    pub max_body: u64,
    /// Current key ring, swapped atomically.
    pub keys: ArcSwap<KeyRing>,
    /// The store (keys, later policies, audit, usage).
    pub store: Store,
    /// True once keys have loaded and while the store answers.
    pub ready: AtomicBool,
    keys_revision: AtomicI64,
}

/// A state construction failure.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A provider client could not be built.
    #[error(transparent)]
    Provider(#[from] portcullis_providers::BuildError),
    /// The store could not be read.
    #[error("cannot load keys from the store: {0}")]
    Store(#[from] portcullis_store::StoreError),
}

impl AppState {
    /// Builds the state and loads the key ring once.
    pub async fn new(config: &Config, store: Store) -> Result<Arc<AppState>, StateError> {
        let providers = Providers::from_config(config)?;
        let mut routes = HashMap::new();
        for m in &config.models {
            if let Some(provider) = providers.get(&m.provider) {
                routes.insert(
                    m.name.clone(),
                    Arc::new(Route {
                        model: m.name.clone(),
                        upstream_model: m.upstream().to_string(),
                        provider: provider.clone(),
                    }),
                );
            }
        }
        let state = Arc::new(AppState {
            routes,
            model_order: config.models.iter().map(|m| m.name.clone()).collect(),
            max_body: config.server.max_body_size.0,
            keys: ArcSwap::from_pointee(KeyRing::default()),
            store,
            ready: AtomicBool::new(false),
            keys_revision: AtomicI64::new(-1),
        });
        state.refresh_keys().await?;
        Ok(state)
    }

    /// Reloads the key ring when the store's key revision moved. Returns whether it did.
    pub async fn refresh_keys(&self) -> Result<bool, portcullis_store::StoreError> {
        let revision = self.store.keys_revision().await?;
        if revision == self.keys_revision.load(Ordering::Acquire) {
            self.ready.store(true, Ordering::Release);
            return Ok(false);
        }
        self.flush_last_used().await;
        let records = self.store.list_keys().await?;
        let ring = KeyRing::new(records.into_iter().map(|r| {
            let entry = KeyEntry::new(r.id, r.name, r.models, r.expires_at, r.revoked_at);
            (r.hash, entry)
        }));
        self.keys.store(Arc::new(ring));
        self.keys_revision.store(revision, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        Ok(true)
    }

    /// Writes last-use times seen since the previous flush (best effort).
    async fn flush_last_used(&self) {
        let ring = self.keys.load_full();
        for entry in ring.entries() {
            let at = entry.last_used();
            if at > 0 {
                if let Err(e) = self.store.touch_key(&entry.id, at).await {
                    tracing::debug!(error = %e, "cannot record key last use");
                }
            }
        }
    }

    /// Polls the store until the returned task is aborted.
    pub fn spawn_key_refresher(self: &Arc<AppState>) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut ticks: u32 = 0;
            let mut failing = false;
            loop {
                tokio::time::sleep(KEY_POLL_INTERVAL).await;
                ticks = ticks.wrapping_add(1);
                match state.refresh_keys().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("store reachable again; key ring refreshed");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        state.ready.store(false, Ordering::Release);
                        if !failing {
                            tracing::error!(error = %e, "store unreachable: keeping the last known key ring; /readyz reports not ready");
                        }
                        failing = true;
                    }
                }
                if ticks % LAST_USED_FLUSH_EVERY == 0 {
                    state.flush_last_used().await;
                }
            }
        })
    }

    /// Final flush at shutdown.
    pub async fn on_shutdown(&self) {
        self.flush_last_used().await;
    }
}
