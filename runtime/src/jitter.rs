//! Jitter: durations moved at random, so that many clients or connections do not act in step.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A number in `[0, 1)`, different at each call (for spreading timers; not for anything secret).
pub(crate) fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    #[allow(clippy::cast_precision_loss)]
    let x = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    x
}

/// `duration` moved at random by up to `fraction` of itself, either way.
pub(crate) fn jittered(duration: Duration, fraction: f64) -> Duration {
    let factor = 1.0 + fraction * (2.0 * unit_random() - 1.0);
    Duration::try_from_secs_f64((duration.as_secs_f64() * factor).max(0.0)).unwrap_or(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let base = Duration::from_secs(10);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(base, 0.2)).collect();
        assert!(samples.iter().all(|d| *d >= Duration::from_secs(8) && *d <= Duration::from_secs(12)));
        assert!(samples.iter().any(|d| *d != samples[0]), "jitter varies");
    }
}
