//! Alert webhook delivery: JSON POSTs from a bounded queue on their own task, each attempt
//! bounded by the configured timeout, three attempts with backoff. Nothing here runs on
//! the request path; a full queue or a failed delivery is logged, never retried forever.

use portcullis_store::NewAlert;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Alerts waiting for delivery, at most.
const QUEUE: usize = 1024;
/// Attempts per alert.
const ATTEMPTS: u32 = 3;
/// Longest wait at shutdown for queued deliveries.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after the first failed attempt (doubles each time).
const BACKOFF: Duration = Duration::from_millis(500);

/// The delivery task and its queue.
pub struct Webhook {
    sender: mpsc::Sender<Value>,
    task: JoinHandle<()>,
}

/// Starts delivering to `url`.
pub fn start(url: String, timeout: Duration) -> Webhook {
    let (sender, mut receiver) = mpsc::channel::<Value>(QUEUE);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build();
    let task = tokio::spawn(async move {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "alert webhook disabled: cannot build an HTTP client");
                return;
            }
        };
        while let Some(body) = receiver.recv().await {
            deliver(&client, &url, &body).await;
        }
    });
    Webhook { sender, task }
}

async fn deliver(client: &reqwest::Client, url: &str, body: &Value) {
    let mut pause = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let outcome = client.post(url).json(body).send().await;
        let failure = match outcome {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("status {}", r.status().as_u16()),
            // Without the URL: it may carry a token.
            Err(e) => e.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::error!(attempts = ATTEMPTS, error = %failure, "alert webhook delivery failed; alert kept in the store");
        } else {
            tracing::warn!(attempt, error = %failure, "alert webhook attempt failed; retrying");
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
}

impl Webhook {
    /// Queues one payload without waiting.
    pub fn send(&self, body: Value) {
        if self.sender.try_send(body).is_err() {
            tracing::error!("alert webhook queue full; alert not sent (it is in the store)");
        }
    }

    /// Delivers what is queued within [`SHUTDOWN_GRACE`] and stops; what is left is
    /// logged (the alerts themselves are in the store).
    pub async fn shutdown(self) {
        let Webhook { sender, mut task } = self;
        drop(sender);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            tracing::warn!("alert webhook deliveries still pending at shutdown were abandoned (the alerts are in the store)");
        }
    }
}

/// The JSON body of one alert.
pub fn payload(id: Option<i64>, a: &NewAlert) -> Value {
    json!({
        "source": "portcullis",
        "id": id,
        "rule": a.rule,
        "subject": a.subject,
        "severity": a.severity,
        "message": a.message,
        "key_id": a.key_id,
        "detail": a.detail,
        "at": a.at,
    })
}
