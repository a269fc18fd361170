//! Shared state of a running gateway: the compiled routing table, provider clients, and the
//! key ring, which a background task refreshes from the store when its revision changes.

use crate::groups::RouteTable;
use crate::policy_runtime::PolicySnapshot;
use crate::writer::{BatchWriter, Flush};
use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use portcullis_config::Config;
use portcullis_config::RedisFailMode;
use portcullis_policy::limits::{FailMode, Limiter, MemoryBackend, RedisBackend, RedisOptions};
use portcullis_policy::{KeyEntry, KeyRing};
use portcullis_providers::Providers;
use portcullis_store::Store;
use portcullis_store::{NewShadowEvent, NewUsage};
use portcullis_telemetry::metrics::{self, Metrics};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the key revision is polled: changes made by the CLI are live within this.
pub const KEY_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often last-use times are written back to the store.
const LAST_USED_FLUSH_EVERY: u32 = 120;

pub use crate::groups::Route;

/// Everything a request handler needs.
pub struct AppState {
    /// Model name -> route (a group of targets).
    pub routes: HashMap<String, Arc<Route>>,
    /// Conditional routing rules and every target's health (breakers).
    pub routing: RouteTable,
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
    /// Active and shadow policy, swapped atomically.
    pub policy: ArcSwap<PolicySnapshot>,
    /// Rate limits, concurrency and budgets (memory or Redis).
    pub limiter: Limiter,
    /// Usage records on their way to the store.
    pub usage_writer: BatchWriter<NewUsage>,
    /// Shadow-mode differences on their way to the store.
    pub shadow_writer: BatchWriter<NewShadowEvent>,
    /// Request logs on their way to the store (`None` when `logs.enabled` is false).
    pub request_logs: Option<crate::request_log::RequestLogWriter>,
    /// Requests where the shadow policy decided differently (since start).
    pub shadow_differences: AtomicU64,
    /// Limit checks decided by the fail mode because Redis was unreachable: [open, closed].
    pub limiter_unavailable: [AtomicU64; 2],
    /// Prometheus metrics, labeled by the configured model and provider names.
    pub metrics: Arc<Metrics>,
    /// Anomaly alert engine fed by the access log's finish hook.
    pub alerts: crate::alerts::Alerts,
    /// The audit queue: admin actions on their way to the hash-chained log and forwarding.
    pub audit: crate::audit_trail::AuditTrail,
    /// The configuration the gateway runs with and the loader's warnings (for the
    /// configuration security audit of the admin API).
    pub config: ConfigSource,
    /// REST routes (plain HTTP services), longest prefix first.
    pub rest: crate::rest::RestRoutes,
    /// HTTP client of the REST routes (no redirects followed: they go back to the client).
    pub rest_client: reqwest::Client,
    /// The response cache, when the configuration has a `cache` section.
    pub cache: Option<portcullis_cache::Cache>,
    /// OpenTelemetry trace export, when configured (otel.rs).
    pub otel: Option<Arc<portcullis_telemetry::otel::Otel>>,
    keys_revision: AtomicI64,
    policy_revision: AtomicI64,
}

/// The running configuration and its load warnings.
pub struct ConfigSource {
    /// The configuration the gateway was started with.
    pub config: Arc<Config>,
    /// The loader's warnings (literal secrets, ...), set once by the binary after start.
    pub warnings: std::sync::OnceLock<Vec<portcullis_config::Problem>>,
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
    /// The stored policy cannot be loaded.
    #[error("cannot load the security policy: {0}")]
    Policy(String),
    /// An audit forwarding destination cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit_trail::ForwardError),
    /// The response cache cannot be set up (its Redis is unreachable).
    #[error("cannot set up the response cache: {0}")]
    Cache(String),
    /// The HTTP client of the REST routes cannot be built.
    #[error("cannot build the HTTP client of the REST routes: {0}")]
    RestClient(String),
    /// Redis for shared limits is unreachable at start.
    #[error(
        "cannot connect to Redis for rate limits ({0}); fix redis.url or remove the redis section"
    )]
    Redis(String),
    /// Trace export could not be set up.
    #[error("{0}; fix telemetry.otlp")]
    Telemetry(String),
}

impl AppState {
    /// Builds the state and loads the key ring once.
    pub async fn new(config: &Config, store: Store) -> Result<Arc<AppState>, StateError> {
        let providers = Providers::from_config(config)?;
        let metrics = Arc::new(Metrics::new(
            config.models.iter().map(|m| m.name.as_str()),
            config.providers.iter().map(|p| p.name.as_str()),
        ));
        let mut routing = RouteTable::build(config, &providers, &metrics)?;
        let routes = std::mem::take(&mut routing.routes);
        let limiter = limiter_for(config).await?;
        let alerts = crate::alerts::Alerts::start(&config.alerts, store.clone(), metrics.clone());
        let audit = crate::audit_trail::AuditTrail::start(&config.audit, store.clone()).await?;
        let state = Arc::new(AppState {
            routes,
            routing,
            model_order: config.models.iter().map(|m| m.name.clone()).collect(),
            max_body: config.server.max_body_size.0,
            keys: ArcSwap::from_pointee(KeyRing::default()),
            usage_writer: BatchWriter::start(
                "usage",
                65_536,
                store_flush(&store, |s, rows| {
                    Box::pin(async move { s.record_usage(&rows).await })
                }),
            ),
            shadow_writer: BatchWriter::start(
                "shadow",
                65_536,
                store_flush(&store, |s, rows| {
                    Box::pin(async move { s.record_shadow_events(&rows).await })
                }),
            ),
            request_logs: config
                .logs
                .enabled
                .then(|| crate::request_log::start_writer(&store, config.logs.queue)),
            store,
            ready: AtomicBool::new(false),
            policy: ArcSwap::from_pointee(PolicySnapshot::default()),
            limiter,
            shadow_differences: AtomicU64::new(0),
            limiter_unavailable: [AtomicU64::new(0), AtomicU64::new(0)],
            metrics,
            alerts,
            audit,
            config: ConfigSource {
                config: Arc::new(config.clone()),
                warnings: std::sync::OnceLock::new(),
            },
            rest: crate::rest::RestRoutes::from_config(config),
            rest_client: rest_client(config)?,
            cache: crate::cache::build(config)
                .await
                .map_err(StateError::Cache)?,
            otel: match crate::otel::settings(config, &|name| std::env::var(name).ok()) {
                Some(settings) => {
                    let otel = portcullis_telemetry::otel::Otel::start(&settings)
                        .map_err(|e| StateError::Telemetry(e.to_string()))?;
                    tracing::info!(endpoint = %settings.export_url(), protocol = ?settings.protocol, "exporting traces over OTLP");
                    Some(Arc::new(otel))
                }
                None => None,
            },
            keys_revision: AtomicI64::new(-1),
            policy_revision: AtomicI64::new(-1),
        });
        let ring = Arc::downgrade(&state);
        state.alerts.set_team_lookup(Arc::new(move |key_id: &str| {
            let state = ring.upgrade()?;
            let keys = state.keys.load();
            let entry = keys.entries().find(|e| e.id == key_id)?;
            entry.team.clone()
        }));
        state.refresh_keys().await?;
        state.refresh_policy().await.map_err(StateError::Policy)?;
        if state.policy.load().uses_tokenizer() {
            // Before serving: otherwise the first limited requests wait for the build.
            let _ = tokio::task::spawn_blocking(portcullis_policy::tokens::warm_up).await;
        }
        Ok(state)
    }

    /// Counts a limit check decided by the fail mode.
    pub fn count_limiter_unavailable(&self, mode: FailMode) {
        let i = usize::from(mode == FailMode::Closed);
        let n = self.limiter_unavailable[i].fetch_add(1, Ordering::Relaxed);
        self.metrics.limiter_fail_mode(match mode {
            FailMode::Open => metrics::FailMode::Open,
            FailMode::Closed => metrics::FailMode::Closed,
        });
        if n % 1000 == 0 {
            tracing::error!(
                fail_mode = mode.label(),
                "ALERT: limit store unreachable; limits decided by the fail mode"
            );
        }
    }

    /// Reloads the policy snapshot when the store's policy revision moved.
    pub async fn refresh_policy(&self) -> Result<bool, String> {
        let revision = self
            .store
            .policy_revision()
            .await
            .map_err(|e| e.to_string())?;
        if revision == self.policy_revision.load(Ordering::Acquire) {
            return Ok(false);
        }
        let snapshot = PolicySnapshot::load(&self.store, &self.policy.load()).await?;
        if snapshot.uses_tokenizer() {
            // Builds the tokenizer vocabularies once (≈0.3–1.5 s of CPU in debug builds) on
            // the blocking pool; a no-op when already built. Without it the first limited
            // requests build them inside the request, blocking a runtime worker, and every
            // request arriving meanwhile waits.
            tokio::task::spawn_blocking(portcullis_policy::tokens::warm_up);
        }
        let versions = (
            snapshot.active.as_ref().map(|p| p.version),
            snapshot.shadow.as_ref().map(|p| p.version),
        );
        self.policy.store(Arc::new(snapshot));
        self.policy_revision.store(revision, Ordering::Release);
        tracing::info!(active = ?versions.0, shadow = ?versions.1, "security policy loaded");
        Ok(true)
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
            let entry = KeyEntry::new(r.id, r.name, r.models, r.expires_at, r.revoked_at)
                .with_identity(r.team, r.role, r.owner);
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
                if let Err(e) = state.refresh_policy().await {
                    tracing::error!(error = %e, "cannot refresh the security policy; keeping the current one");
                }
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

    /// The Prometheus text of [`AppState::metrics`], with the queue gauges refreshed.
    pub fn render_metrics(&self) -> String {
        let (usage, shadow) = (&self.usage_writer, &self.shadow_writer);
        let m = &self.metrics;
        m.set_queue(metrics::Queue::Usage, usage.depth() as u64, usage.dropped());
        m.set_queue(
            metrics::Queue::Shadow,
            shadow.depth() as u64,
            shadow.dropped(),
        );
        if let Some(logs) = &self.request_logs {
            m.set_queue(
                metrics::Queue::RequestLog,
                logs.depth() as u64,
                logs.dropped(),
            );
        }
        let audit = &self.audit;
        m.set_queue(metrics::Queue::Audit, audit.depth() as u64, audit.dropped());
        self.metrics.render()
    }

    /// Final flush at shutdown: request logs, usage, shadow events, alerts, audit records,
    /// last-use times.
    pub async fn on_shutdown(&self) {
        if let Some(logs) = &self.request_logs {
            logs.shutdown().await;
        }
        self.usage_writer.shutdown().await;
        self.shadow_writer.shutdown().await;
        self.alerts.shutdown().await;
        self.audit.shutdown().await;
        self.flush_last_used().await;
        if let Some(otel) = self.otel.clone() {
            // Exports what is buffered; blocking, and its HTTP calls run on this runtime.
            let _ = tokio::task::spawn_blocking(move || otel.shutdown()).await;
        }
    }
}

/// The limit backend: Redis when configured (shared by all instances), memory otherwise.
async fn limiter_for(config: &Config) -> Result<Limiter, StateError> {
    match &config.redis {
        None => Ok(Limiter::new(
            Arc::new(MemoryBackend::new()),
            FailMode::Closed,
        )),
        Some(redis) => {
            let backend = RedisBackend::connect(&redis.url, RedisOptions::default())
                .await
                .map_err(|e| StateError::Redis(e.to_string()))?;
            let mode = match redis.fail_mode {
                RedisFailMode::Closed => FailMode::Closed,
                RedisFailMode::Open => FailMode::Open,
            };
            Ok(Limiter::new(Arc::new(backend), mode))
        }
    }
}

/// The client of the REST routes: pooled, connect timeout from the server settings.
fn rest_client(config: &Config) -> Result<reqwest::Client, StateError> {
    reqwest::Client::builder()
        .connect_timeout(config.server.timeouts.connect.0)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StateError::RestClient(e.to_string()))
}

/// A batch writer flush that calls one store method.
fn store_flush<T: Send + Sync + 'static>(
    store: &Store,
    write: fn(Store, Arc<[T]>) -> BoxFuture<'static, portcullis_store::Result<()>>,
) -> Flush<T> {
    let store = store.clone();
    Arc::new(move |rows| {
        let fut = write(store.clone(), rows);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    })
}
