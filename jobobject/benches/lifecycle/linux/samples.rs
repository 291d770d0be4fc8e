//! Samples kept for the summary, and the lines that print them.

use super::*;

pub(super) static SAMPLES: Mutex<BTreeMap<&'static str, Vec<Duration>>> =
    Mutex::new(BTreeMap::new());

pub(super) fn record(key: &'static str, sample: Duration) {
    SAMPLES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .push(sample);
}

pub(super) fn samples(key: &str) -> Vec<Duration> {
    SAMPLES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
        .unwrap_or_default()
}

/// Median, 10th and 90th percentile, min and max of some samples.
pub(super) struct Stats {
    pub(super) n: usize,
    pub(super) median: Duration,
    pub(super) p10: Duration,
    pub(super) p90: Duration,
    pub(super) p99: Duration,
    pub(super) min: Duration,
    pub(super) max: Duration,
}

impl Stats {
    pub(super) fn of(mut samples: Vec<Duration>) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Stats {
            n: samples.len(),
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            p99: at(0.99),
            min: samples[0],
            max: samples[samples.len() - 1],
        })
    }
}

pub(super) fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

pub(super) fn line(label: &str, key: &str) -> String {
    match Stats::of(samples(key)) {
        Some(s) => format!(
            "  {label:<44} median {:>10}  p10 {:>10}  p90 {:>10}  p99 {:>10}  min {:>10}  max {:>10}  (n={})",
            us(s.median),
            us(s.p10),
            us(s.p90),
            us(s.p99),
            us(s.min),
            us(s.max),
            s.n
        ),
        None => format!("  {label:<44} (no samples)"),
    }
}

/// Median, min and max of some ratios.
pub(super) fn ratio_line(label: &str, mut ratios: Vec<f64>) -> String {
    if ratios.is_empty() {
        return format!("  {label:<44} (no rounds)");
    }
    ratios.sort_by(f64::total_cmp);
    format!(
        "  {label:<44} median {:.3}x  (min {:.3}x, max {:.3}x over {} rounds)",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
        ratios.len()
    )
}
