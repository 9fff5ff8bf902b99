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

/// The geometric mean of paired ratios (with/without) and its 95 % confidence interval,
/// from Student's t on the logarithms (`None` with fewer than 2 finite, positive ratios).
/// Pairs run back to back on a shared machine differ by a few per cent each; the interval
/// says what their mean pins down.
pub fn ratio_interval(ratios: &[f64]) -> Option<(f64, f64, f64)> {
    let logs: Vec<f64> = ratios
        .iter()
        .filter(|r| r.is_finite() && **r > 0.0)
        .map(|r| r.ln())
        .collect();
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let variance = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (variance / n as f64).sqrt();
    Some((mean.exp(), (mean - half).exp(), (mean + half).exp()))
}

/// Student's t 0.975 quantile for `df` degrees of freedom (two-sided 95 %).
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    TABLE.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_of_identical_ratios_is_that_ratio() {
        let (mean, low, high) = ratio_interval(&[1.02, 1.02, 1.02]).unwrap();
        assert!(
            (mean - 1.02).abs() < 1e-12
                && (low - 1.02).abs() < 1e-12
                && (high - 1.02).abs() < 1e-12
        );
    }

    #[test]
    fn scattered_pairs_give_a_wide_interval_around_their_geometric_mean() {
        let ratios = [
            1.0429, 0.9318, 1.0266, 1.1695, 1.0330, 1.1044, 1.0111, 1.0962, 0.9816, 1.0630, 1.0184,
            1.0255,
        ];
        let (mean, low, high) = ratio_interval(&ratios).unwrap();
        assert!((mean - 1.0404).abs() < 1e-3, "{mean}");
        assert!((low - 1.0024).abs() < 1e-3, "{low}");
        assert!((high - 1.0798).abs() < 1e-3, "{high}");
        assert!(ratio_interval(&[1.0]).is_none());
        assert!(ratio_interval(&[1.0, f64::NAN]).is_none());
    }
}
