//! Percentiles of samples.

use std::time::Duration;

/// Nearest-rank percentile `p` (0–100) of `samples` in microseconds; 0 when empty.
pub fn percentile_us(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<Duration> = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e6
}

/// `{"p50", "p99", "mean", "n"}` in microseconds.
pub fn summary(samples: &[Duration]) -> serde_json::Value {
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1e6
    };
    serde_json::json!({
        "p50": percentile_us(samples, 50.0),
        "p99": percentile_us(samples, 99.0),
        "mean": mean,
        "n": samples.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_us(&samples, 50.0), 50.0);
        assert_eq!(percentile_us(&samples, 99.0), 99.0);
        assert_eq!(percentile_us(&samples, 100.0), 100.0);
        assert_eq!(percentile_us(&[Duration::from_micros(7)], 99.0), 7.0);
        assert_eq!(percentile_us(&[], 50.0), 0.0);
    }
}
