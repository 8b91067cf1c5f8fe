//! Reconnection policy for streaming connections, as X documents it for the v1.1 and v2
//! streams ("Connecting to a streaming endpoint", "Handling disconnections"; tweepy implements
//! the same table):
//!
//! | what happened                                   | wait before the next attempt                       |
//! |-------------------------------------------------|----------------------------------------------------|
//! | an established stream dropped (after data)      | none: reconnect at once                            |
//! | network error (connect, TLS, reset, stall)      | linear: +250 ms per attempt, at most 16 s          |
//! | HTTP error (5xx, other non-auth 4xx)            | exponential: 5 s, doubling, at most 320 s          |
//! | 429 (v2) / 420 (v1.1) rate limited              | exponential: 60 s, doubling, at most 960 s         |
//! | 429 TooManyConnections at connect (zombie)      | as rate limited: at least 60 s, for the old connection to time out |
//! | 401 / 403                                       | none: stop, the credential is wrong                |
//! | 429 `usage-capped` (the monthly read cap)       | until the reset the answer gives, else the next UTC month (`budget`) |
//! | the read budget reached (`--max-post-reads-per-*`) | until the next UTC day or month (`budget`)      |
//!
//! Each wait gets up to 10 % random jitter on top so that many clients don't reconnect in step.
//! Every counter resets once a connection delivered data.

use std::time::Duration;

/// Re-exported: the jitter every reconnection wait gets.
pub use tweet_pipeline_common::backoff::with_jitter;
use tweet_pipeline_common::backoff::{Backoff as RetryBackoff, BackoffPolicy};

/// Why a connection attempt failed or a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// The server closed an established stream that had delivered data (EOF, operational
    /// disconnect, server restart).
    Dropped,
    /// Connect, TLS or read error; also a stream that ended before delivering anything.
    Network,
    /// Nothing arrived, not even a keep-alive, within the stall timeout.
    Stall,
    /// An HTTP error status other than the ones below.
    Http(u16),
    /// 429 (v2) or 420 (v1.1): rate limited.
    RateLimited(u16),
    /// 429 whose body names `TooManyConnections`: a previous connection is still counted.
    TooManyConnections,
    /// 401 or 403: the credential is wrong or lacks access. Fatal.
    Unauthorized(u16),
    /// 429 `usage-capped`: the app's monthly read cap is reached; `reset_epoch_secs` is the
    /// answer's `x-rate-limit-reset` (Unix seconds), if it gave one.
    UsageCapped {
        /// When the cap resets, Unix seconds.
        reset_epoch_secs: Option<i64>,
    },
    /// The producer's own read budget is reached: it disconnected itself.
    BudgetPaused,
}

impl Disconnect {
    /// A closed-set label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Disconnect::Dropped => "dropped",
            Disconnect::Network => "network",
            Disconnect::Stall => "stall",
            Disconnect::Http(status) if status >= 500 => "http_5xx",
            Disconnect::Http(_) => "http_4xx",
            Disconnect::RateLimited(_) => "rate_limited",
            Disconnect::TooManyConnections => "too_many_connections",
            Disconnect::Unauthorized(_) => "unauthorized",
            Disconnect::UsageCapped { .. } => "usage_capped",
            Disconnect::BudgetPaused => "budget_paused",
        }
    }
}

/// First step and cap of the linear network backoff.
pub const NETWORK_STEP: Duration = Duration::from_millis(250);
/// Cap of the network backoff.
pub const NETWORK_MAX: Duration = Duration::from_secs(16);
/// First wait after an HTTP error.
pub const HTTP_FIRST: Duration = Duration::from_secs(5);
/// Cap of the HTTP error backoff.
pub const HTTP_MAX: Duration = Duration::from_secs(320);
/// First wait after a 429/420.
pub const RATE_LIMIT_FIRST: Duration = Duration::from_secs(60);
/// Cap of the rate-limit backoff (the documents give no cap; 16 minutes keeps a client alive
/// across a 15-minute rate-limit window).
pub const RATE_LIMIT_MAX: Duration = Duration::from_secs(960);

/// The network backoff: linear, [`NETWORK_STEP`] per attempt, at most [`NETWORK_MAX`].
pub const NETWORK_POLICY: BackoffPolicy = BackoffPolicy::linear(NETWORK_STEP, NETWORK_MAX);
/// The HTTP error backoff: [`HTTP_FIRST`], doubling, at most [`HTTP_MAX`].
pub const HTTP_POLICY: BackoffPolicy = BackoffPolicy::exponential(HTTP_FIRST, HTTP_MAX);
/// The rate-limit backoff: [`RATE_LIMIT_FIRST`], doubling, at most [`RATE_LIMIT_MAX`].
pub const RATE_LIMIT_POLICY: BackoffPolicy =
    BackoffPolicy::exponential(RATE_LIMIT_FIRST, RATE_LIMIT_MAX);

/// The backoff state of one stream: one counter per row of the table above.
#[derive(Debug, Clone)]
pub struct Backoff {
    network: RetryBackoff,
    http: RetryBackoff,
    rate_limit: RetryBackoff,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            network: RetryBackoff::new(NETWORK_POLICY),
            http: RetryBackoff::new(HTTP_POLICY),
            rate_limit: RetryBackoff::new(RATE_LIMIT_POLICY),
        }
    }
}

impl Backoff {
    /// The wait before the next attempt after `disconnect`, without jitter; `None` when the
    /// producer must stop (401/403).
    pub fn next_delay(&mut self, disconnect: Disconnect) -> Option<Duration> {
        match disconnect {
            Disconnect::Dropped => {
                self.reset();
                Some(Duration::ZERO)
            }
            Disconnect::Network | Disconnect::Stall => Some(self.network.next_delay()),
            Disconnect::Http(_) => Some(self.http.next_delay()),
            Disconnect::RateLimited(_) | Disconnect::TooManyConnections => {
                Some(self.rate_limit.next_delay())
            }
            Disconnect::Unauthorized(_) => None,
            // These wait on the clock, not on a backoff (`live::run` asks `budget`); the
            // backoff counters are left alone.
            Disconnect::UsageCapped { .. } | Disconnect::BudgetPaused => Some(Duration::ZERO),
        }
    }

    /// Forgets past failures: called once a connection delivered data.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(backoff: &mut Backoff, disconnect: Disconnect, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| backoff.next_delay(disconnect).unwrap().as_millis() as u64)
            .collect()
    }

    #[test]
    fn network_errors_back_off_linearly_to_16_s() {
        let mut backoff = Backoff::default();
        let got = delays(&mut backoff, Disconnect::Network, 66);
        assert_eq!(&got[..4], &[250, 500, 750, 1000]);
        assert_eq!(got[63], 16_000);
        assert_eq!(got[65], 16_000);
        assert_eq!(backoff.next_delay(Disconnect::Stall), Some(NETWORK_MAX));
    }

    #[test]
    fn http_errors_back_off_exponentially_from_5_s_to_320_s() {
        let mut backoff = Backoff::default();
        let got = delays(&mut backoff, Disconnect::Http(503), 9);
        assert_eq!(
            got,
            vec![5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000, 320_000]
        );
    }

    #[test]
    fn rate_limits_and_zombie_connections_wait_at_least_a_minute() {
        let mut backoff = Backoff::default();
        assert_eq!(
            delays(&mut backoff, Disconnect::RateLimited(429), 3),
            vec![60_000, 120_000, 240_000]
        );
        assert_eq!(
            backoff.next_delay(Disconnect::TooManyConnections),
            Some(Duration::from_secs(480))
        );
        let mut fresh = Backoff::default();
        assert_eq!(
            fresh.next_delay(Disconnect::TooManyConnections),
            Some(Duration::from_secs(60))
        );
        for _ in 0..20 {
            fresh.next_delay(Disconnect::RateLimited(420));
        }
        assert_eq!(
            fresh.next_delay(Disconnect::RateLimited(420)),
            Some(RATE_LIMIT_MAX)
        );
    }

    #[test]
    fn a_healthy_connection_resets_and_reconnects_at_once() {
        let mut backoff = Backoff::default();
        delays(&mut backoff, Disconnect::Http(500), 3);
        delays(&mut backoff, Disconnect::Network, 3);
        assert_eq!(
            backoff.next_delay(Disconnect::Dropped),
            Some(Duration::ZERO)
        );
        assert_eq!(backoff.next_delay(Disconnect::Http(500)), Some(HTTP_FIRST));
        assert_eq!(backoff.next_delay(Disconnect::Network), Some(NETWORK_STEP));
    }

    #[test]
    fn auth_failures_stop() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay(Disconnect::Unauthorized(401)), None);
        assert_eq!(backoff.next_delay(Disconnect::Unauthorized(403)), None);
    }

    #[test]
    fn reasons_are_a_closed_set() {
        assert_eq!(Disconnect::Http(502).reason(), "http_5xx");
        assert_eq!(Disconnect::Http(404).reason(), "http_4xx");
        assert_eq!(
            Disconnect::TooManyConnections.reason(),
            "too_many_connections"
        );
    }
}
