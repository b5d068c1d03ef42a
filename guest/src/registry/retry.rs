//! The one retry policy. `--retry-times N` gives each transfer (a manifest,
//! a blob check, a blob download or upload) N retries in all, shared by
//! every request it makes (ping, token, the request itself, a resume, an
//! upload's steps): no request is sent more than N + 1 times, and nothing
//! above the client retries again. Retried: connection failures and
//! transient statuses (408, 429, 5xx except 501 and 505), after a backoff
//! with jitter or what `Retry-After` asks. A 401 is answered once per
//! request with a fresh token and costs no retry.

use std::cell::Cell;
use std::time::Duration;

use crate::concurrent;
use crate::http::Response;

const MAX_RETRY_AFTER_SECS: u64 = 60;

/// How long to wait before retries: doubling from `first`, capped at `cap`,
/// plus up to half of that again at random.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait (before jitter).
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1-based), `jitter` in 0..1.
    fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let base = self
            .first
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(self.cap);
        base + base.mul_f64(0.5 * jitter)
    }
}

/// One transfer's retries: how many are left, and how many were taken.
pub struct Budget {
    left: Cell<u32>,
    taken: Cell<u32>,
    backoff: Backoff,
}

impl Budget {
    /// `retries` retries, waiting as `backoff` says.
    pub fn new(retries: u32, backoff: Backoff) -> Budget {
        Budget {
            left: Cell::new(retries),
            taken: Cell::new(0),
            backoff,
        }
    }

    /// Takes one retry and waits its backoff (or `asked`, the server's
    /// `Retry-After`, up to a minute); false if none is left.
    pub async fn retry(&self, asked: Option<Duration>) -> bool {
        let left = self.left.get();
        if left == 0 {
            return false;
        }
        self.left.set(left - 1);
        self.taken.set(self.taken.get() + 1);
        let wait = asked.unwrap_or_else(|| self.backoff.delay(self.taken.get(), jitter()));
        concurrent::sleep(wait).await;
        true
    }

    /// Retries taken so far.
    pub fn taken(&self) -> u32 {
        self.taken.get()
    }

    /// ` (after N tries)` for a message, if a retry was taken.
    pub fn after(&self) -> String {
        match self.taken.get() {
            0 => String::new(),
            n => format!(" (after {} tries)", n + 1),
        }
    }
}

/// Statuses worth another try: overload and server errors.
pub fn transient(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status) && status != 501 && status != 505
}

/// `Retry-After` in seconds (the HTTP-date form falls back to backoff).
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER_SECS)))
}

fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // std seeds RandomState from the host's wasi:random.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (r % 1000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concurrent::block_on;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(1500));
        assert_eq!(b.delay(40, 1.0), Duration::from_millis(12_000));
        assert!(transient(503) && transient(429) && transient(500) && transient(408));
        assert!(!transient(501) && !transient(404) && !transient(401) && !transient(505));
    }

    #[test]
    fn a_budget_gives_exactly_its_retries() {
        let none = Backoff {
            first: Duration::ZERO,
            cap: Duration::ZERO,
        };
        let budget = Budget::new(2, none);
        assert!(block_on(budget.retry(None)));
        assert!(block_on(budget.retry(Some(Duration::ZERO))));
        assert!(!block_on(budget.retry(None)));
        assert_eq!(budget.taken(), 2);
        assert_eq!(budget.after(), " (after 3 tries)");
    }
}
