//! Median/IQR scaling with scikit-learn's `RobustScaler` semantics, plus a fallback scale for
//! columns whose inter-quantile range is zero.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::clip::check_percentiles;
use crate::error::{PreprocessError, Result};
use crate::quantile::all_column_stats;
use crate::rows::for_each_row;

/// scikit-learn's `_handle_zeros_in_scale`: a scale below `10 * f64::EPSILON` counts as zero.
const ZERO_SCALE: f64 = 10.0 * f64::EPSILON;

/// What a [`RobustScaler`] divides by when a column's inter-quantile range is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroIqrScale {
    /// Divide by 1, i.e. only centre (scikit-learn). On heavy-tailed flow features this leaves
    /// values as large as the raw feature (the thesis' 5e7).
    #[default]
    One,
    /// Divide by `max - min` of the fitted (training) column; 1 if that is zero too. After a
    /// clip this bounds every training value of such a column to `[-1, 1]`.
    Range,
}

/// Parameters of a [`RobustScaler`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RobustScalerParams {
    /// `(q_min, q_max)` percentiles whose difference is the scale; scikit-learn's default `(25, 75)`.
    pub quantile_range: (f64, f64),
    /// Scale used where `q_max - q_min` is zero.
    pub zero_iqr: ZeroIqrScale,
}

impl Default for RobustScalerParams {
    /// scikit-learn's defaults: quantile range (25, 75), zero scale → 1.
    fn default() -> Self {
        Self {
            quantile_range: (25.0, 75.0),
            zero_iqr: ZeroIqrScale::One,
        }
    }
}

/// [`RobustScalerParams`] that passed [`RobustScalerParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustScalerValidParams(RobustScalerParams);

impl RobustScalerParams {
    /// Sets the quantile range (percentiles, `0 <= q_min <= q_max <= 100`).
    pub fn quantile_range(mut self, q_min: f64, q_max: f64) -> Self {
        self.quantile_range = (q_min, q_max);
        self
    }

    /// Sets the scale used for columns with zero inter-quantile range.
    pub fn zero_iqr(mut self, zero_iqr: ZeroIqrScale) -> Self {
        self.zero_iqr = zero_iqr;
        self
    }

    /// Validates the quantile range.
    pub fn check(self) -> Result<RobustScalerValidParams> {
        check_percentiles(
            "quantile_range",
            self.quantile_range.0,
            self.quantile_range.1,
        )?;
        Ok(RobustScalerValidParams(self))
    }

    /// Checks the parameters, then fits on the training rows `x`.
    pub fn fit(self, x: ArrayView2<'_, f32>) -> Result<RobustScaler> {
        self.check()?.fit(x)
    }
}

impl RobustScalerValidParams {
    /// Fits centre and scale per column on `x` (exact quantiles, parallel over columns).
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<RobustScaler> {
        let p = self.0;
        let (lo, hi) = p.quantile_range;
        let stats = all_column_stats(x, &[lo, hi], true)?;
        let mut scale = Vec::with_capacity(stats.len());
        let mut zero_iqr = Vec::with_capacity(stats.len());
        for (column, s) in stats.iter().enumerate() {
            if !s.median.is_finite() {
                return Err(PreprocessError::NonFiniteStatistic {
                    column,
                    what: "median",
                });
            }
            let iqr = s.quantiles[1] - s.quantiles[0];
            if !iqr.is_finite() {
                return Err(PreprocessError::NonFiniteStatistic {
                    column,
                    what: "quantile range",
                });
            }
            let is_zero = iqr < ZERO_SCALE;
            zero_iqr.push(is_zero);
            scale.push(if !is_zero {
                iqr
            } else {
                match p.zero_iqr {
                    ZeroIqrScale::One => 1.0,
                    ZeroIqrScale::Range => {
                        let range = f64::from(s.max) - f64::from(s.min);
                        if range < ZERO_SCALE || !range.is_finite() {
                            1.0
                        } else {
                            range
                        }
                    }
                }
            });
        }
        Ok(RobustScaler {
            quantile_range: p.quantile_range,
            zero_iqr_scale: p.zero_iqr,
            center: stats.iter().map(|s| s.median).collect(),
            scale,
            zero_iqr,
        })
    }
}

/// Fitted robust scaler: `(x - center) / scale` per column.
///
/// `center` is `np.nanmedian` of the training column (f32, as numpy returns it for f32 input);
/// `scale` is `q_max - q_min` of `np.nanpercentile` (f64), replaced per [`ZeroIqrScale`] where it is
/// zero. The transform subtracts in f32 like scikit-learn and multiplies by the f32 reciprocal of
/// the scale (at most ~1 ulp from scikit-learn's f64 division, well inside 1e-6 relative).
///
/// ```
/// use ndarray::array;
/// use preprocess::RobustScalerParams;
/// let train = array![[1.0f32, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [5.0, 5.0]];
/// let scaler = RobustScalerParams::default().fit(train.view()).unwrap();
/// assert_eq!(scaler.center(), &[3.0, 5.0]);
/// assert_eq!(scaler.scale(), &[2.0, 1.0]); // IQR 4 - 2; zero IQR → 1
/// let out = scaler.transform(array![[7.0f32, 6.0]].view()).unwrap();
/// assert_eq!(out, array![[2.0f32, 1.0]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustScaler {
    quantile_range: (f64, f64),
    zero_iqr_scale: ZeroIqrScale,
    center: Vec<f32>,
    scale: Vec<f64>,
    zero_iqr: Vec<bool>,
}

impl RobustScaler {
    /// Median per column.
    pub fn center(&self) -> &[f32] {
        &self.center
    }

    /// Divisor per column (after the zero-IQR replacement).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Whether each column's inter-quantile range was zero on the training rows.
    pub fn zero_iqr(&self) -> &[bool] {
        &self.zero_iqr
    }

    /// Number of columns whose inter-quantile range was zero.
    pub fn n_zero_iqr(&self) -> usize {
        self.zero_iqr.iter().filter(|&&z| z).count()
    }

    /// The quantile range it was fitted with.
    pub fn quantile_range(&self) -> (f64, f64) {
        self.quantile_range
    }

    /// The zero-IQR policy it was fitted with.
    pub fn zero_iqr_scale(&self) -> ZeroIqrScale {
        self.zero_iqr_scale
    }

    /// Number of columns it was fitted on.
    pub fn n_features(&self) -> usize {
        self.center.len()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let n = self.center.len();
        if self.scale.len() != n || self.zero_iqr.len() != n {
            return Err(PreprocessError::InvalidPipeline(
                "robust scaler vectors have different lengths".into(),
            ));
        }
        if self.scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(PreprocessError::InvalidPipeline(
                "robust scaler scale must be finite and positive".into(),
            ));
        }
        Ok(())
    }

    /// Scales `x` in place, in parallel over row blocks.
    pub fn transform_inplace(&self, x: ArrayViewMut2<'_, f32>) -> Result<()> {
        crate::check_cols(self.n_features(), x.ncols())?;
        let inv: Vec<f32> = self.scale.iter().map(|&s| (1.0 / s) as f32).collect();
        let center = &self.center;
        for_each_row(x, |row| {
            for ((v, &c), &r) in row.iter_mut().zip(center).zip(&inv) {
                *v = (*v - c) * r;
            }
        });
        Ok(())
    }

    /// Returns a scaled copy of `x`.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = x.to_owned();
        self.transform_inplace(out.view_mut())?;
        Ok(out)
    }
}
