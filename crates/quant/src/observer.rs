//! Range observers for static quantization: from calibration values to a clipping range `[lo, hi]`.
//!
//! The range is then turned into 7-bit activation parameters by
//! [`activation_qparams`](crate::qparams::activation_qparams) (which widens it to contain 0).

use serde::{Deserialize, Serialize};

use crate::QuantError;

/// Number of quantization levels of the 7-bit activation grid.
const LEVELS: usize = 128;

/// How a calibrated layer input range is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Observer {
    /// Smallest and largest value seen (PyTorch `MinMaxObserver`).
    MinMax,
    /// The `p` and `100 − p` percentiles, `p` in (50, 100] (e.g. 99.99): clips rare outliers.
    Percentile(f64),
    /// Histogram of `bins` bins; the range minimising the expected squared quantization error
    /// (rounding error inside, clipping error outside), searched like PyTorch's `HistogramObserver`.
    HistogramMse {
        /// Histogram bins (PyTorch uses 2048).
        bins: usize,
    },
    /// Histogram of |x| with `bins` bins; the threshold minimising the KL divergence between the
    /// clipped distribution and its 128-level quantization (TensorRT's entropy calibration).
    HistogramEntropy {
        /// Histogram bins (TensorRT uses 2048).
        bins: usize,
    },
}

impl Observer {
    /// Check the parameters.
    pub fn check(&self) -> Result<(), QuantError> {
        match *self {
            Observer::MinMax => Ok(()),
            Observer::Percentile(p) if p > 50.0 && p <= 100.0 => Ok(()),
            Observer::Percentile(p) => Err(QuantError::InvalidParam(format!(
                "percentile must be in (50, 100], got {p}"
            ))),
            Observer::HistogramMse { bins } | Observer::HistogramEntropy { bins }
                if bins >= LEVELS =>
            {
                Ok(())
            }
            Observer::HistogramMse { bins } | Observer::HistogramEntropy { bins } => {
                Err(QuantError::InvalidParam(format!(
                    "histogram needs at least {LEVELS} bins, got {bins}"
                )))
            }
        }
    }

    /// The clipping range `[lo, hi]` for these calibration values (non-finite values ignored).
    pub fn range(&self, values: &[f32]) -> Result<(f32, f32), QuantError> {
        self.check()?;
        let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return Err(QuantError::InvalidParam(
                "no finite calibration values".into(),
            ));
        }
        let (min, max) = finite
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if min == max {
            return Ok((min, max));
        }
        Ok(match *self {
            Observer::MinMax => (min, max),
            Observer::Percentile(p) => percentile_range(finite, p),
            Observer::HistogramMse { bins } => mse_range(&finite, min, max, bins),
            Observer::HistogramEntropy { bins } => entropy_range(&finite, min, max, bins),
        })
    }
}

fn percentile_range(mut values: Vec<f32>, p: f64) -> (f32, f32) {
    let n = values.len();
    let hi_idx = ((p / 100.0) * (n - 1) as f64).ceil() as usize;
    let lo_idx = (((100.0 - p) / 100.0) * (n - 1) as f64).floor() as usize;
    let hi = *values
        .select_nth_unstable_by(hi_idx.min(n - 1), f32::total_cmp)
        .1;
    let lo = *values.select_nth_unstable_by(lo_idx, f32::total_cmp).1;
    (lo, hi)
}

fn histogram(values: &[f32], lo: f32, hi: f32, bins: usize) -> Vec<f64> {
    let mut hist = vec![0.0f64; bins];
    let width = f64::from(hi) - f64::from(lo);
    for &v in values {
        let b = ((f64::from(v) - f64::from(lo)) / width * bins as f64) as usize;
        hist[b.min(bins - 1)] += 1.0;
    }
    hist
}

/// Expected squared error of quantizing the histogram onto 128 levels spanning `[a, b]` (widened to 0).
fn quant_error(hist: &[f64], lo: f64, bin_w: f64, a: f64, b: f64) -> f64 {
    let (a, b) = (a.min(0.0), b.max(0.0));
    let delta = (b - a) / (LEVELS - 1) as f64;
    let mut err = 0.0;
    for (i, &count) in hist.iter().enumerate() {
        if count == 0.0 {
            continue;
        }
        let center = lo + (i as f64 + 0.5) * bin_w;
        err += count
            * if center < a {
                (a - center).powi(2)
            } else if center > b {
                (center - b).powi(2)
            } else {
                delta * delta / 12.0
            };
    }
    err
}

fn mse_range(values: &[f32], min: f32, max: f32, bins: usize) -> (f32, f32) {
    let hist = histogram(values, min, max, bins);
    let (lo, bin_w) = (
        f64::from(min),
        (f64::from(max) - f64::from(min)) / bins as f64,
    );
    let total: f64 = hist.iter().sum();
    // Greedy shrink as in PyTorch's `_non_linear_param_search`: move whichever end of the
    // bin window drops less mass, remember the best window seen.
    let (mut start, mut end) = (0usize, bins - 1);
    let (mut cum_lo, mut cum_hi) = (0.0f64, 0.0f64);
    let mut best = (
        quant_error(&hist, lo, bin_w, lo, lo + bins as f64 * bin_w),
        start,
        end,
    );
    let step = (bins / 512).max(1);
    while end > start + LEVELS / 4 {
        let next_lo = cum_lo + hist[start..start + step].iter().sum::<f64>();
        let next_hi = cum_hi + hist[end + 1 - step..=end].iter().sum::<f64>();
        if next_lo < next_hi {
            cum_lo = next_lo;
            start += step;
        } else {
            cum_hi = next_hi;
            end -= step;
        }
        if cum_lo + cum_hi > 0.5 * total {
            break;
        }
        let err = quant_error(
            &hist,
            lo,
            bin_w,
            lo + start as f64 * bin_w,
            lo + (end + 1) as f64 * bin_w,
        );
        if err < best.0 {
            best = (err, start, end);
        }
    }
    (
        (lo + best.1 as f64 * bin_w) as f32,
        (lo + (best.2 + 1) as f64 * bin_w) as f32,
    )
}

fn entropy_range(values: &[f32], min: f32, max: f32, bins: usize) -> (f32, f32) {
    let amax = min.abs().max(max.abs());
    let abs: Vec<f32> = values.iter().map(|v| v.abs()).collect();
    let hist = histogram(&abs, 0.0, amax, bins);
    let bin_w = f64::from(amax) / bins as f64;
    let mut best = (f64::INFINITY, bins);
    for i in LEVELS..=bins {
        // Reference P: the first i bins, with everything beyond folded into the last one.
        let mut p: Vec<f64> = hist[..i].to_vec();
        p[i - 1] += hist[i..].iter().sum::<f64>();
        // Candidate Q: the first i bins merged into LEVELS groups, spread back over the non-empty bins.
        let mut q = vec![0.0f64; i];
        for lvl in 0..LEVELS {
            let (s, e) = (
                lvl * i / LEVELS,
                ((lvl + 1) * i / LEVELS).max(lvl * i / LEVELS + 1),
            );
            let mass: f64 = hist[s..e].iter().sum();
            let nonzero = hist[s..e].iter().filter(|&&c| c > 0.0).count();
            if nonzero > 0 {
                for j in s..e {
                    if hist[j] > 0.0 {
                        q[j] = mass / nonzero as f64;
                    }
                }
            }
        }
        let (ps, qs) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
        if qs == 0.0 {
            continue;
        }
        let mut kl = 0.0;
        for (&pj, &qj) in p.iter().zip(&q) {
            if pj > 0.0 {
                // A reference bin the candidate leaves empty (only the folded tail) costs as if tiny.
                let qn = if qj > 0.0 { qj / qs } else { 1e-12 };
                kl += pj / ps * ((pj / ps) / qn).ln();
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    let t = (best.1 as f64 * bin_w) as f32;
    (min.max(-t), max.min(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heavy_tailed() -> Vec<f32> {
        // 10 000 values uniform on [0, 1) plus 3 huge outliers.
        let mut v: Vec<f32> = (0..10_000)
            .map(|i| (i as f32 * 0.618_034).fract())
            .collect();
        v.extend([50.0, 80.0, 100.0]);
        v
    }

    #[test]
    fn minmax_is_exact() {
        assert_eq!(
            Observer::MinMax.range(&[-1.0, 2.0, 0.5, f32::NAN]).unwrap(),
            (-1.0, 2.0)
        );
    }

    #[test]
    fn percentile_clips_outliers() {
        let (lo, hi) = Observer::Percentile(99.9).range(&heavy_tailed()).unwrap();
        assert!(lo < 0.01 && (0.95..1.0).contains(&hi), "{lo} {hi}");
    }

    #[test]
    fn histogram_observers_clip_long_tails() {
        // Exponential(1) quantiles: the tail beyond ~7 holds 0.1 % of the mass; spending levels
        // on it costs more rounding error than clipping it.
        let n = 50_000;
        let v: Vec<f32> = (0..n)
            .map(|i| -((i as f32 + 0.5) / n as f32).ln())
            .collect();
        let max = v.iter().fold(0.0f32, |m, &x| m.max(x));
        for obs in [
            Observer::HistogramMse { bins: 2048 },
            Observer::HistogramEntropy { bins: 2048 },
        ] {
            let (lo, hi) = obs.range(&v).unwrap();
            assert!(
                lo < 0.01 && hi > 2.0 && hi < 0.9 * max,
                "{obs:?}: {lo} {hi} (max {max})"
            );
        }
        // A handful of far outliers among 10 000 values: MSE keeps them (clipping them would cost
        // more), the percentile drops them.
        let (_, hi) = Observer::HistogramMse { bins: 2048 }
            .range(&heavy_tailed())
            .unwrap();
        assert!(hi > 50.0);
    }

    #[test]
    fn bad_params_are_errors() {
        assert!(Observer::Percentile(20.0).range(&[1.0]).is_err());
        assert!(Observer::HistogramMse { bins: 3 }.range(&[1.0]).is_err());
        assert!(Observer::MinMax.range(&[f32::NAN]).is_err());
    }
}
