//! Latency distributions: every sample kept (nanoseconds), sorted once at the end, and
//! read with the nearest-rank rule. Exact, and cheap at the volumes of these runs
//! (a few million samples at most).

use serde_json::{json, Value as Json};

#[derive(Debug, Default, Clone)]
pub struct Samples {
    ns: Vec<u64>,
}

impl Samples {
    pub fn push(&mut self, ns: u64) {
        self.ns.push(ns);
    }

    pub fn append(&mut self, other: &mut Samples) {
        self.ns.append(&mut other.ns);
    }

    pub fn summary(mut self) -> Summary {
        self.ns.sort_unstable();
        let n = self.ns.len();
        let at = |p: f64| -> u64 {
            if n == 0 {
                return 0;
            }
            // Nearest rank: the smallest sample with at least p of the samples at or below it.
            let rank = (p * n as f64).ceil() as usize;
            self.ns[rank.clamp(1, n) - 1]
        };
        let mean = if n == 0 { 0.0 } else { self.ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64 };
        Summary {
            count: n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: self.ns.last().copied().unwrap_or(0),
            mean: mean as u64,
        }
    }
}

/// Percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: u64,
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 10.0).round() / 100.0
}

impl Summary {
    /// The figures in microseconds (two decimals), with `prefix` on every key.
    pub fn to_json(self, prefix: &str) -> Vec<(String, Json)> {
        vec![
            (format!("{prefix}samples"), json!(self.count)),
            (format!("{prefix}p50_us"), json!(us(self.p50))),
            (format!("{prefix}p90_us"), json!(us(self.p90))),
            (format!("{prefix}p99_us"), json!(us(self.p99))),
            (format!("{prefix}p999_us"), json!(us(self.p999))),
            (format!("{prefix}max_us"), json!(us(self.max))),
            (format!("{prefix}mean_us"), json!(us(self.mean))),
        ]
    }

    pub fn human(&self) -> String {
        format!(
            "p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} samples)",
            us(self.p50),
            us(self.p99),
            us(self.max),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(i * 1000);
        }
        let m = s.summary();
        assert_eq!((m.p50, m.p90, m.p99, m.max), (50_000, 90_000, 99_000, 100_000));
        assert_eq!(Samples::default().summary().p99, 0);
    }
}
