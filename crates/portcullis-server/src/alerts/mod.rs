//! Anomaly alerts off the request path. The access log's finish hook hands each request's
//! [`Observation`] to [`Alerts::observe`], which runs the [`engine`] in place (a short
//! lock and a few table lookups: no task is woken for an ordinary request). What fires goes
//! to one task over a bounded channel (never waited on; a full channel is counted), which
//! delivers it: a warning log line and the `portcullis_alerts_total{rule}` counter for
//! every occurrence; for a newly raised alert a row in the store's `alerts` table and a
//! webhook POST (on its own task, with a timeout and retries); repeats inside the
//! deduplication window are folded into the stored alert's `count` every few seconds and
//! at shutdown.

pub mod engine;
#[cfg(test)]
mod tests;
mod webhook;

pub use engine::{Engine, Fired, Observation, Settings};

use portcullis_config::AlertsConfig;
use portcullis_store::{NewAlert, Store};
use portcullis_telemetry::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Fired alerts waiting for delivery, at most.
const CHANNEL: usize = 16_384;
/// How often folded repeats are written to the store.
const REPEAT_FLUSH: Duration = Duration::from_secs(5);

/// Finds the team of a key id (set once the gateway state exists).
pub type TeamOf = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Handle of the alert task; cheap to call from the request path.
pub struct Alerts {
    /// The engine and its delivery queue; `None` when alerts are disabled.
    live: Option<Live>,
    team_of: Arc<OnceLock<TeamOf>>,
    dropped: AtomicU64,
    close: Arc<Notify>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// The running side of [`Alerts`].
struct Live {
    engine: Mutex<Engine>,
    /// The engine's time origin (it works in milliseconds since).
    started: Instant,
    sender: mpsc::Sender<Fired>,
}

impl Alerts {
    /// Starts the alert task (a no-op handle when `config.enabled` is false).
    pub fn start(config: &AlertsConfig, store: Store, metrics: Arc<Metrics>) -> Alerts {
        if !config.enabled {
            return Alerts {
                live: None,
                team_of: Arc::new(OnceLock::new()),
                dropped: AtomicU64::new(0),
                close: Arc::new(Notify::new()),
                task: std::sync::Mutex::new(None),
            };
        }
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let close = Arc::new(Notify::new());
        let settings = Settings {
            rules: config.rules.clone(),
            dedup_ms: config.dedup_window.0.as_millis() as u64,
        };
        let hook = config
            .webhook
            .clone()
            .map(|url| webhook::start(url, config.webhook_timeout.0));
        let team_of = Arc::new(OnceLock::new());
        let sink = Sink {
            store,
            team_of: team_of.clone(),
            metrics,
            hook,
            dedup_secs: config.dedup_window.0.as_secs() as i64,
            repeats: HashMap::new(),
        };
        let task = tokio::spawn(run(receiver, sink, close.clone()));
        Alerts {
            live: Some(Live {
                engine: Mutex::new(Engine::new(settings)),
                started: Instant::now(),
                sender,
            }),
            team_of,
            dropped: AtomicU64::new(0),
            close,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Sets how stored alerts find the team of their key (the key ring of the running
    /// gateway); alerts raised before this carry no team.
    pub fn set_team_lookup(&self, lookup: TeamOf) {
        let _ = self.team_of.set(lookup);
    }

    /// Runs the engine on one finished request; what fires is handed to the delivery task
    /// without waiting.
    pub fn observe(&self, o: Observation) {
        let Some(live) = &self.live else {
            return;
        };
        let now = live.started.elapsed().as_millis() as u64;
        let fired = live
            .engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(now, &o);
        for f in fired {
            if live.sender.try_send(f).is_err() {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n % 10_000 == 0 {
                    tracing::warn!(
                        dropped_total = n + 1,
                        "alert delivery behind: fired alerts skipped"
                    );
                }
            }
        }
    }

    /// Fired alerts skipped because delivery was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Processes what is queued, writes folded repeats, waits for webhooks in flight
    /// (each bounded by its timeout and retries) and stops the task.
    pub async fn shutdown(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            self.close.notify_one();
            let _ = task.await;
        }
    }
}

/// Where fired alerts go.
struct Sink {
    store: Store,
    team_of: Arc<OnceLock<TeamOf>>,
    metrics: Arc<Metrics>,
    hook: Option<webhook::Webhook>,
    dedup_secs: i64,
    repeats: HashMap<(String, String), (NewAlert, u64)>,
}

async fn run(mut receiver: mpsc::Receiver<Fired>, mut sink: Sink, close: Arc<Notify>) {
    let mut flush = tokio::time::interval(REPEAT_FLUSH);
    loop {
        tokio::select! {
            f = receiver.recv() => match f {
                Some(f) => sink.deliver(f).await,
                None => break,
            },
            _ = flush.tick() => sink.flush_repeats().await,
            _ = close.notified() => {
                receiver.close();
                while let Some(f) = receiver.recv().await {
                    sink.deliver(f).await;
                }
                break;
            }
        }
    }
    sink.flush_repeats().await;
    if let Some(hook) = sink.hook.take() {
        hook.shutdown().await;
    }
}

impl Sink {
    async fn deliver(&mut self, f: Fired) {
        self.metrics.alert(f.rule);
        let alert = NewAlert {
            at: crate::policy_ops::now(),
            rule: f.rule.label().to_string(),
            subject: f.subject,
            severity: engine::severity(f.rule).to_string(),
            message: f.message,
            team: f
                .key_id
                .as_deref()
                .and_then(|k| self.team_of.get().and_then(|lookup| lookup(k))),
            key_id: f.key_id,
            detail: f.detail,
        };
        if !f.raised {
            let slot = (alert.rule.clone(), alert.subject.clone());
            let at = alert.at;
            let entry = self.repeats.entry(slot).or_insert((alert, 0));
            entry.0.at = at;
            entry.1 += 1;
            return;
        }
        tracing::warn!(
            alert = %alert.rule,
            subject = %alert.subject,
            severity = %alert.severity,
            "ALERT: {}",
            alert.message
        );
        let id = match self.store.record_alert(&alert, 1, self.dedup_secs).await {
            Ok(w) => Some(w.id),
            Err(e) => {
                tracing::error!(error = %e, "cannot store an alert");
                None
            }
        };
        if let Some(hook) = &self.hook {
            hook.send(webhook::payload(id, &alert));
        }
    }

    async fn flush_repeats(&mut self) {
        for (_, (alert, n)) in self.repeats.drain() {
            if let Err(e) = self.store.record_alert(&alert, n, self.dedup_secs).await {
                tracing::error!(error = %e, "cannot store alert repeats");
            }
        }
    }
}
