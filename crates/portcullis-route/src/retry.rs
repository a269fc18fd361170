//! Whether a failed attempt is tried again, and after how long.

use crate::class::FailureClass;
use std::time::Duration;

/// A set of failure classes (the `retry.on` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassSet(u16);

impl ClassSet {
    /// The classes retried when the configuration names none: connect, timeout, 429, 5xx,
    /// overloaded.
    pub const DEFAULT: ClassSet = ClassSet(
        1 << FailureClass::Connect as u16
            | 1 << FailureClass::Timeout as u16
            | 1 << FailureClass::RateLimited as u16
            | 1 << FailureClass::ServerError as u16
            | 1 << FailureClass::Overloaded as u16,
    );

    /// Whether `class` is in the set.
    pub fn contains(self, class: FailureClass) -> bool {
        self.0 & (1 << class as u16) != 0
    }

    /// Adds `class`.
    pub fn insert(&mut self, class: FailureClass) {
        self.0 |= 1 << class as u16;
    }
}

impl FromIterator<FailureClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = FailureClass>>(iter: I) -> ClassSet {
        let mut set = ClassSet::default();
        iter.into_iter().for_each(|c| set.insert(c));
        set
    }
}

/// The retry policy of a model group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts on the group's targets for one request (1 = no retry).
    pub attempts: u32,
    /// First backoff ceiling; each retry of the same target doubles it.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub max: Duration,
    /// Failure classes that are retried (on another target first, when there is one).
    pub on: ClassSet,
    /// Longest `Retry-After` the gateway waits for; a longer one is not waited out (the
    /// target is held for that long and the request moves on or fails with the 429).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            on: ClassSet::DEFAULT,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Whether a failure of `class` may be retried at all.
    pub fn retryable(&self, class: FailureClass) -> bool {
        self.on.contains(class)
    }

    /// Exponential backoff with full jitter before retry number `retry` (0 for the first
    /// retry): uniform in `[0, min(max, base * 2^retry)]`, drawn from `random`.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random % (nanos + 1))
    }

    /// The wait before retrying the same target: the backoff, or the upstream's
    /// `Retry-After` when that is longer. `None` when the `Retry-After` exceeds
    /// [`RetryPolicy::max_retry_after`]: the target should not be retried for this request.
    pub fn wait(&self, retry: u32, random: u64, retry_after: Option<Duration>) -> Option<Duration> {
        let backoff = self.backoff(retry, random);
        match retry_after {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(after.max(backoff)),
            None => Some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            on: ClassSet::DEFAULT,
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn default_classes() {
        let p = policy();
        for c in [
            FailureClass::Connect,
            FailureClass::Timeout,
            FailureClass::RateLimited,
            FailureClass::ServerError,
            FailureClass::Overloaded,
        ] {
            assert!(p.retryable(c), "{c:?}");
        }
        for c in [
            FailureClass::Rejected,
            FailureClass::Misconfigured,
            FailureClass::BadResponse,
        ] {
            assert!(!p.retryable(c), "{c:?}");
        }
        let custom: ClassSet = [FailureClass::Connect].into_iter().collect();
        assert!(custom.contains(FailureClass::Connect));
        assert!(!custom.contains(FailureClass::Timeout));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let p = policy();
        // The largest draw reaches the ceiling: 100, 200, 400, 800, then capped at 1000 ms.
        for (retry, ceiling_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            assert_eq!(
                p.backoff(
                    retry,
                    u64::MAX - (u64::MAX % (ceiling_ms * 1_000_000 + 1)) - 1
                ),
                Duration::from_millis(ceiling_ms),
                "retry {retry}"
            );
            assert_eq!(p.backoff(retry, 0), Duration::ZERO);
        }
        // Full jitter: draws spread over the whole range, never above the ceiling.
        let draws: Vec<Duration> = (0..1000u64)
            .map(|i| p.backoff(2, i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(300)));
    }

    #[test]
    fn retry_after_is_honored_up_to_the_cap() {
        let p = policy();
        assert_eq!(
            p.wait(0, 0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(p.wait(0, 0, None), Some(Duration::ZERO));
        // A Retry-After shorter than the drawn backoff does not shorten it.
        let long_draw = u64::MAX - (u64::MAX % 400_000_001) - 1;
        assert_eq!(
            p.wait(2, long_draw, Some(Duration::from_millis(10))),
            Some(Duration::from_millis(400))
        );
        assert_eq!(
            p.wait(0, 0, Some(Duration::from_secs(5))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(p.wait(0, 0, Some(Duration::from_secs(6))), None);
    }
}
