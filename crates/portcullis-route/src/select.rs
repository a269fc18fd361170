//! Choosing the target of a model group that serves the next attempt.

/// How a model group spreads requests over its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Random, in proportion to the targets' weights.
    #[default]
    Weighted,
    /// The target with the fewest requests in flight (random among ties).
    LeastInFlight,
    /// The lowest observed latency (EWMA), scaled by the requests in flight so a fast
    /// target is not flooded; targets without a measurement yet are tried first.
    Latency,
    /// The lowest `priority` number; weighted among equal priorities. Later priorities
    /// serve only while the earlier ones are ejected or failed for this request.
    Priority,
}

/// What the strategies know about one eligible target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Relative weight (0 = only when every candidate weighs 0).
    pub weight: u32,
    /// Lower is preferred ([`Strategy::Priority`]).
    pub priority: u32,
    /// Requests currently in flight to the target.
    pub in_flight: u32,
    /// Latency EWMA in microseconds, `None` before the first measurement.
    pub latency_us: Option<u64>,
}

/// Picks one of `candidates` (all eligible) with `strategy`; `random` is a uniformly
/// random number. Returns the index, `None` only when `candidates` is empty.
pub fn pick(strategy: Strategy, candidates: &[Candidate], random: u64) -> Option<usize> {
    if candidates.len() <= 1 {
        return (!candidates.is_empty()).then_some(0);
    }
    let all: Vec<usize> = (0..candidates.len()).collect();
    match strategy {
        Strategy::Weighted => Some(weighted(candidates, &all, random)),
        Strategy::LeastInFlight => {
            let best = candidates.iter().map(|c| c.in_flight).min()?;
            let ties: Vec<usize> = all
                .into_iter()
                .filter(|&i| candidates[i].in_flight == best)
                .collect();
            Some(ties[(random % ties.len() as u64) as usize])
        }
        Strategy::Latency => {
            let score = |c: &Candidate| {
                c.latency_us
                    .map(|l| u128::from(l.max(1)) * u128::from(c.in_flight + 1))
            };
            // Unmeasured targets first (None sorts before Some).
            let best = candidates.iter().map(score).min()?;
            let ties: Vec<usize> = all
                .into_iter()
                .filter(|&i| score(&candidates[i]) == best)
                .collect();
            Some(ties[(random % ties.len() as u64) as usize])
        }
        Strategy::Priority => {
            let best = candidates.iter().map(|c| c.priority).min()?;
            let ties: Vec<usize> = all
                .into_iter()
                .filter(|&i| candidates[i].priority == best)
                .collect();
            Some(weighted(candidates, &ties, random))
        }
    }
}

/// Weighted random among `among` (indexes into `candidates`, not empty).
fn weighted(candidates: &[Candidate], among: &[usize], random: u64) -> usize {
    let total: u64 = among.iter().map(|&i| u64::from(candidates[i].weight)).sum();
    if total == 0 {
        return among[(random % among.len() as u64) as usize];
    }
    let mut point = random % total;
    for &i in among {
        let w = u64::from(candidates[i].weight);
        if point < w {
            return i;
        }
        point -= w;
    }
    among[among.len() - 1]
}

/// The next exponentially weighted moving average of a latency: `alpha` is the weight of
/// the new sample in percent (30 = 0.3). The first sample is taken as is.
pub fn ewma(previous: Option<u64>, sample: u64, alpha_percent: u64) -> u64 {
    match previous {
        None => sample,
        Some(prev) => {
            let alpha = alpha_percent.min(100);
            ((u128::from(sample) * u128::from(alpha) + u128::from(prev) * u128::from(100 - alpha))
                / 100) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(weight: u32, priority: u32, in_flight: u32, latency_us: Option<u64>) -> Candidate {
        Candidate {
            weight,
            priority,
            in_flight,
            latency_us,
        }
    }

    fn spread(strategy: Strategy, cs: &[Candidate]) -> Vec<usize> {
        let mut counts = vec![0; cs.len()];
        for r in 0..10_000u64 {
            let random = r.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
            counts[pick(strategy, cs, random).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn weighted_follows_the_weights() {
        let counts = spread(Strategy::Weighted, &[c(1, 0, 0, None), c(3, 0, 0, None)]);
        assert!((2_200..2_800).contains(&counts[0]), "{counts:?}");
        assert!((7_200..7_800).contains(&counts[1]), "{counts:?}");
        let counts = spread(Strategy::Weighted, &[c(0, 0, 0, None), c(5, 0, 0, None)]);
        assert_eq!(counts[0], 0);
        // All zero: uniform.
        let counts = spread(Strategy::Weighted, &[c(0, 0, 0, None), c(0, 0, 0, None)]);
        assert!(counts.iter().all(|n| *n > 4_000), "{counts:?}");
    }

    #[test]
    fn least_in_flight_takes_the_idlest() {
        let cs = [c(1, 0, 4, None), c(1, 0, 1, None), c(1, 0, 2, None)];
        assert_eq!(spread(Strategy::LeastInFlight, &cs), vec![0, 10_000, 0]);
        let counts = spread(
            Strategy::LeastInFlight,
            &[c(1, 0, 1, None), c(1, 0, 1, None)],
        );
        assert!(counts.iter().all(|n| *n > 4_000), "{counts:?}");
    }

    #[test]
    fn latency_prefers_fast_and_unmeasured_targets() {
        let cs = [
            c(1, 0, 0, Some(900)),
            c(1, 0, 0, Some(100)),
            c(1, 0, 0, Some(500)),
        ];
        assert_eq!(pick(Strategy::Latency, &cs, 7), Some(1));
        // Unmeasured first, to learn its latency.
        let cs = [c(1, 0, 0, Some(100)), c(1, 0, 0, None)];
        assert_eq!(pick(Strategy::Latency, &cs, 7), Some(1));
        // A fast but busy target loses against a slower idle one.
        let cs = [c(1, 0, 9, Some(100)), c(1, 0, 0, Some(500))];
        assert_eq!(pick(Strategy::Latency, &cs, 7), Some(1));
    }

    #[test]
    fn priority_orders_then_weighs() {
        let cs = [c(1, 2, 0, None), c(1, 1, 0, None), c(3, 1, 0, None)];
        let counts = spread(Strategy::Priority, &cs);
        assert_eq!(counts[0], 0);
        assert!((2_200..2_800).contains(&counts[1]), "{counts:?}");
        // With the first priority gone (the caller leaves it out), the next one serves.
        assert_eq!(pick(Strategy::Priority, &cs[..1], 3), Some(0));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(pick(Strategy::Weighted, &[], 1), None);
        assert_eq!(pick(Strategy::Latency, &[c(0, 0, 0, None)], 1), Some(0));
        assert_eq!(ewma(None, 100, 30), 100);
        assert_eq!(ewma(Some(100), 200, 30), 130);
        assert_eq!(ewma(Some(u64::MAX), u64::MAX, 30), u64::MAX);
    }
}
