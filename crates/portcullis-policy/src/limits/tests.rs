//! Limiter tests: math under virtual time, and a shared concurrency suite run against the
//! memory backend here and against Redis in `redis_tests`.

use super::*;
use crate::document::{BudgetMode, BudgetPeriod};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod redis_tests;

/// 2026-11-27T12:00:00Z, so budget periods are reproducible.
const BASE: u64 = 1_795_780_800_000_000;

pub(super) fn rate(
    counter: &str,
    kind: RateKind,
    limit: u64,
    interval_secs: u64,
    cost: u64,
) -> RateCheck {
    RateCheck {
        id: counter.into(),
        counter: counter.into(),
        kind,
        limit,
        interval_secs,
        cost,
    }
}

pub(super) fn budget(
    counter: &str,
    usd: u64,
    mode: BudgetMode,
    estimate_micros: u64,
) -> BudgetCheck {
    BudgetCheck {
        id: counter.into(),
        counter: counter.into(),
        limit_micros: usd * 1_000_000,
        period: BudgetPeriod::Day,
        mode,
        estimate_micros,
    }
}

fn virtual_backend() -> MemoryBackend {
    MemoryBackend::with_clock(Box::new(TokioClock::starting_at(BASE)))
}

#[tokio::test(start_paused = true)]
async fn requests_per_interval_with_virtual_time() {
    let b = virtual_backend();
    let c = [rate("r", RateKind::Requests, 5, 60, 1)];
    for left in (0..5).rev() {
        let o = b.reserve_rate(&c).await.unwrap();
        assert!(o.allowed);
        assert_eq!(o.statuses[0].remaining, left);
    }
    let o = b.reserve_rate(&c).await.unwrap();
    assert!(!o.allowed);
    assert_eq!(o.denied_by, Some(0));
    assert_eq!(o.retry_after_secs(), Some(12));
    assert_eq!(o.statuses[0].reset_secs, 60);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(!b.reserve_rate(&c).await.unwrap().allowed);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(b.reserve_rate(&c).await.unwrap().allowed);
    tokio::time::advance(Duration::from_secs(60)).await;
    let o = b.reserve_rate(&c).await.unwrap();
    assert_eq!(
        o.statuses[0].remaining, 4,
        "a full interval refills the bucket"
    );
}

#[tokio::test(start_paused = true)]
async fn tokens_reserve_then_settle() {
    let b = virtual_backend();
    let est = [rate("t", RateKind::Tokens, 1000, 60, 800)];
    let first = b.reserve_rate(&est).await.unwrap();
    assert!(first.allowed);
    let more = [rate("t", RateKind::Tokens, 1000, 60, 300)];
    assert!(!b.reserve_rate(&more).await.unwrap().allowed);
    // The call used only 200 tokens: 600 come back.
    b.settle_rate(first.reservation.as_ref().unwrap(), 200)
        .await
        .unwrap();
    let second = b.reserve_rate(&more).await.unwrap();
    assert!(second.allowed);
    assert_eq!(second.statuses[0].remaining, 500);
    // It used 900 instead of 300: the debt blocks further calls until it drains.
    b.settle_rate(second.reservation.as_ref().unwrap(), 900)
        .await
        .unwrap();
    let o = b
        .reserve_rate(&[rate("t", RateKind::Tokens, 1000, 60, 1)])
        .await
        .unwrap();
    assert!(!o.allowed);
    assert_eq!(o.retry_after_secs(), Some(7)); // 1101 - 1000 = 101 tokens at 1000/min
}

#[tokio::test(start_paused = true)]
async fn several_checks_are_all_or_nothing() {
    let b = virtual_backend();
    let checks = [
        rate("wide", RateKind::Requests, 10, 60, 1),
        rate("narrow", RateKind::Requests, 1, 60, 1),
    ];
    assert!(b.reserve_rate(&checks).await.unwrap().allowed);
    let o = b.reserve_rate(&checks).await.unwrap();
    assert_eq!(o.denied_by, Some(1));
    assert!(o.reservation.is_none());
    let o = b.reserve_rate(&checks[..1]).await.unwrap();
    assert_eq!(
        o.statuses[0].remaining, 8,
        "the refused request was not charged"
    );
}

#[tokio::test(start_paused = true)]
async fn budgets_hard_soft_and_periods() {
    let b = virtual_backend();
    let hard = [budget("team", 10, BudgetMode::Hard, 4_000_000)];
    let r1 = b.reserve_budget(&hard).await.unwrap();
    let r2 = b.reserve_budget(&hard).await.unwrap();
    assert!(r1.allowed && r2.allowed);
    let o = b.reserve_budget(&hard).await.unwrap();
    assert!(!o.allowed && o.statuses[0].exceeded);
    assert_eq!(o.statuses[0].reset_secs, 12 * 3600);
    // Actual cost below the estimate frees room.
    b.settle_budget(r1.reservation.as_ref().unwrap(), 1_000_000)
        .await
        .unwrap();
    let r3 = b.reserve_budget(&hard).await.unwrap();
    assert!(r3.allowed);
    assert_eq!(r3.statuses[0].spent_micros, 1_000_000);
    assert_eq!(r3.statuses[0].reserved_micros, 8_000_000);
    let soft = [budget("soft", 1, BudgetMode::Soft, 2_000_000)];
    let o = b.reserve_budget(&soft).await.unwrap();
    assert!(
        o.allowed && o.statuses[0].exceeded,
        "soft budgets only report"
    );
    // Next day: a fresh period.
    tokio::time::advance(Duration::from_secs(12 * 3600)).await;
    let o = b.reserve_budget(&hard).await.unwrap();
    assert!(o.allowed);
    assert_eq!(o.statuses[0].spent_micros, 0);
}

/// N parallel tasks never exceed a rate limit: exactly `limit` succeed.
pub(super) async fn parallel_rate(backend: Arc<dyn LimitBackend>, counter: &str) {
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let b = backend.clone();
            let c = [rate(counter, RateKind::Requests, 50, 3600, 1)];
            tokio::spawn(async move { b.reserve_rate(&c).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += u32::from(t.await.unwrap());
    }
    assert_eq!(allowed, 50);
}

/// N parallel tasks never hold more than `max` slots at once, and every slot comes back.
pub(super) async fn parallel_concurrency(backend: Arc<dyn LimitBackend>, counter: &str) {
    let current = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (b, current, peak, served) = (
                backend.clone(),
                current.clone(),
                peak.clone(),
                served.clone(),
            );
            let c = [ConcurrencyCheck {
                id: "c".into(),
                counter: counter.into(),
                max: 4,
            }];
            tokio::spawn(async move {
                for _ in 0..200 {
                    let o = b.acquire(&c).await.unwrap();
                    if let Some(lease) = o.lease {
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        current.fetch_sub(1, Ordering::SeqCst);
                        b.release(&lease).await.unwrap();
                        served.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(served.load(Ordering::SeqCst) > 4);
    let c = [ConcurrencyCheck {
        id: "c".into(),
        counter: counter.into(),
        max: 4,
    }];
    let o = backend.acquire(&c).await.unwrap();
    assert_eq!(o.in_flight, [1], "every slot was released");
}

/// N parallel requests never overspend a hard budget by more than one estimate, even
/// when each actually costs more than estimated.
pub(super) async fn parallel_budget(backend: Arc<dyn LimitBackend>, counter: &str) {
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let b = backend.clone();
            let c = [budget(counter, 10, BudgetMode::Hard, 1_000_000)];
            tokio::spawn(async move {
                let o = b.reserve_budget(&c).await.unwrap();
                if let Some(r) = &o.reservation {
                    tokio::task::yield_now().await;
                    b.settle_budget(r, 1_000_000).await.unwrap();
                }
                o.allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += u32::from(t.await.unwrap());
    }
    assert_eq!(allowed, 10);
    let o = backend
        .reserve_budget(&[budget(counter, 10, BudgetMode::Hard, 0)])
        .await
        .unwrap();
    assert_eq!(o.statuses[0].spent_micros, 10_000_000);
    assert_eq!(o.statuses[0].reserved_micros, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn memory_parallel_limits_hold() {
    let b: Arc<dyn LimitBackend> = Arc::new(MemoryBackend::new());
    parallel_rate(b.clone(), "rate").await;
    parallel_concurrency(b.clone(), "conc").await;
    parallel_budget(b, "budget").await;
}

struct Down;

impl LimitBackend for Down {
    fn reserve_rate<'a>(
        &'a self,
        _: &'a [RateCheck],
    ) -> BoxFuture<'a, Result<RateOutcome, BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
    fn settle_rate<'a>(
        &'a self,
        _: &'a RateReservation,
        _: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
    fn acquire<'a>(
        &'a self,
        _: &'a [ConcurrencyCheck],
    ) -> BoxFuture<'a, Result<ConcurrencyOutcome, BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
    fn release<'a>(&'a self, _: &'a Lease) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
    fn reserve_budget<'a>(
        &'a self,
        _: &'a [BudgetCheck],
    ) -> BoxFuture<'a, Result<BudgetOutcome, BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
    fn settle_budget<'a>(
        &'a self,
        _: &'a BudgetReservation,
        _: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Err(BackendError("down".into())) })
    }
}

#[tokio::test]
async fn fail_modes_decide_when_the_backend_is_down() {
    let c = [rate("r", RateKind::Requests, 1, 1, 1)];
    let open = Limiter::new(Arc::new(Down), FailMode::Open);
    let o = open.reserve_rate(&c).await;
    assert!(o.allowed);
    assert_eq!(o.unavailable, Some(FailMode::Open));
    let closed = Limiter::new(Arc::new(Down), FailMode::Closed);
    let o = closed.reserve_rate(&c).await;
    assert!(!o.allowed);
    assert_eq!(o.unavailable.map(FailMode::label), Some("closed"));
    let cc = [ConcurrencyCheck {
        id: "c".into(),
        counter: "c".into(),
        max: 1,
    }];
    assert!(!closed.acquire(&cc).await.allowed);
    assert!(
        !closed
            .reserve_budget(&[budget("b", 1, BudgetMode::Hard, 1)])
            .await
            .allowed
    );
    assert!(
        open.reserve_budget(&[budget("b", 1, BudgetMode::Hard, 1)])
            .await
            .allowed
    );
    assert!(closed.settle_rate(None, 5).await.is_ok());
    // Nothing to check: no backend call at all.
    let o = closed.reserve_rate(&[]).await;
    assert!(o.allowed && o.unavailable.is_none());
}

#[tokio::test]
async fn guard_releases_on_drop() {
    let backend: Arc<dyn LimitBackend> = Arc::new(MemoryBackend::new());
    let c = [ConcurrencyCheck {
        id: "c".into(),
        counter: "g".into(),
        max: 1,
    }];
    let lease = backend.acquire(&c).await.unwrap().lease;
    let guard = ConcurrencyGuard::new(backend.clone(), lease);
    assert!(!backend.acquire(&c).await.unwrap().allowed);
    drop(guard);
    tokio::task::yield_now().await;
    let lease = backend.acquire(&c).await.unwrap().lease;
    assert!(lease.is_some());
    ConcurrencyGuard::new(backend.clone(), lease)
        .release()
        .await
        .unwrap();
    assert!(backend.acquire(&c).await.unwrap().allowed);
}

#[test]
fn plan_maps_decision_limits() {
    let policy = crate::decide::CompiledPolicy::compile(
        &crate::document::parse_policy(include_str!("../../../../examples/policy.yaml"))
            .unwrap()
            .document,
    )
    .unwrap();
    let d = policy.decide(&crate::decide::Principal {
        key_id: "k",
        user_id: None,
        team: Some("research"),
        role: "developer",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        target: crate::decide::Target::Model("gpt-4o"),
        estimated_tokens: Some(700),
        body_bytes: None,
    });
    let p = plan(&d.limits, 700, 12_000);
    assert_eq!(p.rate.iter().map(|c| c.cost).collect::<Vec<_>>(), [1, 700]);
    assert_eq!(p.concurrency[0].max, 20);
    assert_eq!(p.budgets[0].limit_micros, 250_000_000);
    assert_eq!(p.budgets[0].estimate_micros, 12_000);
    assert!(!p.is_empty());
}
