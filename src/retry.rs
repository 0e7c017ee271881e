//! Backoff for the function's own retries (unprocessed items, throttling),
//! layered over the SDK's: the SDK retries each request a few times; these
//! retries go on, with full jitter, until the invocation's retry deadline.

use std::time::{Duration, Instant};

const BASE: Duration = Duration::from_millis(50);
const CAP: Duration = Duration::from_secs(2);

/// Full-jitter exponential backoff: uniform in `[0, min(CAP, BASE·2^attempt)]`.
/// `unit` is a random number in `[0, 1)`.
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let ceiling = BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Sleeps before the next attempt, or says there is no time left for one.
pub async fn pause(attempt: u32, deadline: Instant) -> bool {
    let delay = backoff(attempt, fastrand::f64());
    if Instant::now() + delay >= deadline {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_jitters_below_the_ceiling() {
        assert_eq!(backoff(0, 1.0), Duration::from_millis(50));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(10, 1.0), CAP);
        assert_eq!(backoff(u32::MAX, 1.0), CAP);
        assert_eq!(backoff(5, 0.0), Duration::ZERO);
        assert_eq!(backoff(3, 0.5), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn no_pause_past_the_deadline() {
        assert!(!pause(10, Instant::now()).await);
    }
}
