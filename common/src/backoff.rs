//! The one backoff policy type of the pipeline: how long to wait before attempt `n + 1` after
//! `n` failures, growing linearly or exponentially up to a cap, plus optional jitter.
//!
//! A [`BackoffPolicy`] is a pure function of the attempt number (so a decision that takes
//! `now` and an attempt count can be unit-tested); a [`Backoff`] is one retry loop's state
//! (the failures so far) over a policy. The producer's reconnection table
//! (`producer/src/source/reconnect.rs`) keeps one `Backoff` per kind of failure.

use std::time::Duration;

/// How the wait grows with each failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// `first × (failures)`: 1×, 2×, 3×, ...
    Linear,
    /// `first × 2^(failures - 1)`: 1×, 2×, 4×, ...
    Exponential,
}

/// A backoff policy: the first wait, how it grows, and its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The wait after the first failure.
    pub first: Duration,
    /// How later waits grow.
    pub growth: Growth,
    /// No wait is longer than this.
    pub max: Duration,
}

impl BackoffPolicy {
    /// Waits of `step`, `2 × step`, `3 × step`, ..., at most `max`.
    pub const fn linear(step: Duration, max: Duration) -> Self {
        Self {
            first: step,
            growth: Growth::Linear,
            max,
        }
    }

    /// Waits of `first`, doubling after each failure, at most `max`.
    pub const fn exponential(first: Duration, max: Duration) -> Self {
        Self {
            first,
            growth: Growth::Exponential,
            max,
        }
    }

    /// The wait after `failures` consecutive failures (`1` for the first); `Duration::ZERO` for
    /// `0` (nothing failed yet). Saturates at [`BackoffPolicy::max`], never overflows.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = match self.growth {
            Growth::Linear => failures,
            // 2^16 × any first wait of a millisecond or more is past every sensible cap.
            Growth::Exponential => 1u32 << (failures - 1).min(16),
        };
        self.first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// One retry loop's backoff: the failures since the last success, over a [`BackoffPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    /// A backoff with no failures yet.
    pub const fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Counts one more failure and returns the wait before the next attempt (without jitter).
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.delay(self.failures)
    }

    /// Failures since the last [`Backoff::reset`].
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures (after a success): the next wait is the first again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The policy.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }
}

/// `delay` plus a random 0–10 % (`fraction` in [0, 1) picks where in that range; values
/// outside are clamped), so that many clients do not retry in step.
pub fn with_jitter(delay: Duration, fraction: f64) -> Duration {
    delay + delay.mul_f64(0.1 * fraction.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(policy: BackoffPolicy, failures: impl IntoIterator<Item = u32>) -> Vec<u64> {
        failures
            .into_iter()
            .map(|n| policy.delay(n).as_millis() as u64)
            .collect()
    }

    #[test]
    fn linear_grows_by_one_step_to_the_cap() {
        let policy = BackoffPolicy::linear(Duration::from_millis(250), Duration::from_secs(16));
        assert_eq!(millis(policy, 0..5), [0, 250, 500, 750, 1000]);
        assert_eq!(policy.delay(64), Duration::from_secs(16));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(16));
    }

    #[test]
    fn exponential_doubles_to_the_cap_without_overflow() {
        let policy = BackoffPolicy::exponential(Duration::from_secs(5), Duration::from_secs(320));
        assert_eq!(
            millis(policy, 1..=8),
            [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000]
        );
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(320));
        let huge = BackoffPolicy::exponential(Duration::MAX, Duration::from_secs(1));
        assert_eq!(huge.delay(3), Duration::from_secs(1));
    }

    #[test]
    fn a_backoff_counts_failures_and_resets() {
        let mut backoff = Backoff::new(BackoffPolicy::exponential(
            Duration::from_millis(100),
            Duration::from_secs(5),
        ));
        let got: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.failures(), 8);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_adds_at_most_ten_percent() {
        let delay = Duration::from_secs(10);
        assert_eq!(with_jitter(delay, 0.0), delay);
        assert_eq!(with_jitter(delay, 0.5), Duration::from_millis(10_500));
        assert!(with_jitter(delay, 0.999_999) < Duration::from_secs(11));
        assert_eq!(with_jitter(delay, 7.0), Duration::from_secs(11));
    }
}
