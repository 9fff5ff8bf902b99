//! Percentiles and tables.

use std::time::Duration;

/// p50, p99 and max of `samples`, in milliseconds.
pub fn summary(samples: &[Duration]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}
