//! Percentile clipping, fitted per column on training rows.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, Result};
use crate::quantile::all_column_stats;
use crate::rows::for_each_row;

/// Parameters of a [`PercentileClipper`]: the lower and upper percentile (0–100).
///
/// Bounds are numpy's `np.percentile(x, [lower, upper], axis=0)` with the default `linear`
/// interpolation, NaN ignored (`nanpercentile`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentileClipperParams {
    /// Lower percentile, 0–100.
    pub lower_percentile: f64,
    /// Upper percentile, 0–100, at least `lower_percentile`.
    pub upper_percentile: f64,
}

impl Default for PercentileClipperParams {
    /// The thesis' 1st/99th percentile.
    fn default() -> Self {
        Self {
            lower_percentile: 1.0,
            upper_percentile: 99.0,
        }
    }
}

/// [`PercentileClipperParams`] that passed [`PercentileClipperParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileClipperValidParams(PercentileClipperParams);

pub(crate) fn check_percentiles(name: &'static str, lower: f64, upper: f64) -> Result<()> {
    if !(0.0..=100.0).contains(&lower) || !(0.0..=100.0).contains(&upper) || lower > upper {
        return Err(PreprocessError::InvalidParameter {
            name,
            reason: format!("need 0 <= lower <= upper <= 100, got ({lower}, {upper})"),
        });
    }
    Ok(())
}

impl PercentileClipperParams {
    /// Clip to the `lower`/`upper` percentiles.
    pub fn new(lower_percentile: f64, upper_percentile: f64) -> Self {
        Self {
            lower_percentile,
            upper_percentile,
        }
    }

    /// Validates the percentiles.
    pub fn check(self) -> Result<PercentileClipperValidParams> {
        check_percentiles("percentiles", self.lower_percentile, self.upper_percentile)?;
        Ok(PercentileClipperValidParams(self))
    }

    /// Checks the parameters, then fits on the training rows `x`.
    pub fn fit(self, x: ArrayView2<'_, f32>) -> Result<PercentileClipper> {
        self.check()?.fit(x)
    }
}

impl PercentileClipperValidParams {
    /// Fits the per-column bounds on `x` (rows = training flows), in parallel over columns.
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<PercentileClipper> {
        let p = self.0;
        let stats = all_column_stats(x, &[p.lower_percentile, p.upper_percentile], false)?;
        for (column, s) in stats.iter().enumerate() {
            if !(s.quantiles[0].is_finite() && s.quantiles[1].is_finite()) {
                return Err(PreprocessError::NonFiniteStatistic {
                    column,
                    what: "clip bound",
                });
            }
        }
        Ok(PercentileClipper {
            lower_percentile: p.lower_percentile,
            upper_percentile: p.upper_percentile,
            lower: stats.iter().map(|s| s.quantiles[0]).collect(),
            upper: stats.iter().map(|s| s.quantiles[1]).collect(),
        })
    }
}

/// Fitted percentile clipper: `x[:, j]` is clipped to `[lower[j], upper[j]]`.
///
/// Equals `np.clip(x, lo, hi).astype(np.float32)` with `lo, hi = np.nanpercentile(train, [l, u], axis=0)`
/// (bounds kept in f64 like numpy; clamping an f32 value to f64 bounds and rounding to f32 is the
/// same as clamping to the f32-rounded bounds, which is what runs). NaN stays NaN.
///
/// ```
/// use ndarray::array;
/// use preprocess::PercentileClipperParams;
/// let train = array![[0.0f32], [1.0], [2.0], [3.0], [100.0]];
/// let clip = PercentileClipperParams::new(0.0, 75.0).fit(train.view()).unwrap();
/// assert_eq!(clip.upper()[0], 3.0);
/// let mut x = array![[50.0f32], [-1.0]];
/// clip.transform_inplace(x.view_mut()).unwrap();
/// assert_eq!(x, array![[3.0f32], [0.0]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PercentileClipper {
    lower_percentile: f64,
    upper_percentile: f64,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl PercentileClipper {
    /// Lower bound per column (f64, as numpy computes it).
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }

    /// Upper bound per column.
    pub fn upper(&self) -> &[f64] {
        &self.upper
    }

    /// Percentiles this clipper was fitted with.
    pub fn percentiles(&self) -> (f64, f64) {
        (self.lower_percentile, self.upper_percentile)
    }

    /// Number of columns it was fitted on.
    pub fn n_features(&self) -> usize {
        self.lower.len()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_percentiles("percentiles", self.lower_percentile, self.upper_percentile)
            .map_err(|e| PreprocessError::InvalidPipeline(e.to_string()))?;
        if self.lower.len() != self.upper.len() {
            return Err(PreprocessError::InvalidPipeline(
                "clipper bounds have different lengths".into(),
            ));
        }
        Ok(())
    }

    /// Clips `x` in place, in parallel over row blocks.
    pub fn transform_inplace(&self, x: ArrayViewMut2<'_, f32>) -> Result<()> {
        crate::check_cols(self.n_features(), x.ncols())?;
        let lo: Vec<f32> = self.lower.iter().map(|&v| v as f32).collect();
        let hi: Vec<f32> = self.upper.iter().map(|&v| v as f32).collect();
        for_each_row(x, |row| {
            for ((v, &l), &h) in row.iter_mut().zip(&lo).zip(&hi) {
                // explicit comparisons keep NaN (f32::clamp would too, but panics if l > h after
                // rounding, which cannot happen here; this form also vectorises).
                let c = if *v < l { l } else { *v };
                *v = if c > h { h } else { c };
            }
        });
        Ok(())
    }

    /// Returns a clipped copy of `x`.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = x.to_owned();
        self.transform_inplace(out.view_mut())?;
        Ok(out)
    }
}
