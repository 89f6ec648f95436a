//! Retries of store operations: transient failures (connection reset, timeouts, 5xx, throttling,
//! integrity mismatches in transit) are retried with exponential backoff and jitter; anything else
//! is returned at once.

use std::time::Duration;

use rand::Rng;

use crate::store::StoreError;

/// How many times and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `n` (1-based): initial × 2^(n-1), capped, with ±25 % jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
            .min(self.max);
        let jitter = rand::rng().random_range(0.75..1.25);
        base.mul_f64(jitter)
    }
}

/// Runs `op` until it succeeds, fails permanently, or the attempts are used up.
pub async fn retry<T>(
    policy: &RetryPolicy,
    what: &str,
    mut op: impl AsyncFnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < policy.attempts => {
                let d = policy.delay(attempt);
                tracing::debug!(%what, attempt, error = %e, delay_ms = d.as_millis() as u64, "retrying");
                tokio::time::sleep(d).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds_and_stops_on_permanent() {
        let policy = RetryPolicy {
            attempts: 5,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        };
        let mut calls = 0;
        let r = retry(&policy, "t", async || {
            calls += 1;
            if calls < 3 {
                Err(StoreError::Transient("503".into()))
            } else {
                Ok(calls)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), _> = retry(&policy, "t", async || {
            calls += 1;
            Err(StoreError::Permanent("403".into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r: Result<(), _> = retry(&policy, "t", async || {
            calls += 1;
            Err(StoreError::Transient("reset".into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 5);
    }
}
