//! Piecewise-linear encoding (PLE) of numeric features with quantile bins (Gorishniy, Rubachev
//! and Babenko, "On Embeddings for Numerical Features in Tabular Deep Learning", NeurIPS 2022).
//!
//! Each column becomes `t` columns, one per bin between consecutive training quantiles
//! `e_0 < e_1 < … < e_t`. For a value `v` in bin `b*`, bins left of it read 1, bins right of it
//! read 0 and bin `b*` reads the position of `v` inside it, `(v − e_b*) / (e_b*+1 − e_b*)`.
//! The first bin is open to the left and the last to the right (values beyond the training
//! range extrapolate linearly instead of saturating), as in the paper's reference code
//! (`rtdl_num_embeddings.PiecewiseLinearEncoding`).
//!
//! Why a network wants it: a first Linear layer sees a plain feature only through one weight
//! per unit, so every unit responds to it monotonically; after the encoding, each unit sees a
//! piecewise-linear function of the feature with `t` learnable slopes. Monotone rescalings of a
//! feature (log, ranks, normal scores) cannot give that, because BatchNorm after the first layer
//! absorbs them.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, Result};
use crate::quantile::all_column_stats;

/// Parameters of a [`PiecewiseLinear`] encoding: the number of quantile bins per column.
///
/// Bin edges are `np.nanpercentile(x, 100 * i / bins, axis=0)` for `i = 0..=bins` (numpy's
/// `linear` interpolation, on the float32 training column), with repeated edges merged as
/// `np.unique` does, so a column with few distinct values gets fewer bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiecewiseLinearParams {
    /// Quantile bins per column (at least 1).
    pub bins: usize,
}

impl Default for PiecewiseLinearParams {
    /// 16 bins: on the real CIC-DDoS2019 rows, 12 to 48 bins gave the `optimized` MLP the same
    /// macro-F1 within 0.003 (see [`crate::Preset::PiecewiseLinear`]); 16 keeps the first layer
    /// smallest among them but 12.
    fn default() -> Self {
        Self { bins: 16 }
    }
}

/// [`PiecewiseLinearParams`] that passed [`PiecewiseLinearParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiecewiseLinearValidParams(PiecewiseLinearParams);

impl PiecewiseLinearParams {
    /// `bins` quantile bins per column.
    pub fn new(bins: usize) -> Self {
        Self { bins }
    }

    /// Validates the bin count (1 to 1,000).
    pub fn check(self) -> Result<PiecewiseLinearValidParams> {
        if !(1..=1000).contains(&self.bins) {
            return Err(PreprocessError::InvalidParameter {
                name: "bins",
                reason: format!("need 1 <= bins <= 1000, got {}", self.bins),
            });
        }
        Ok(PiecewiseLinearValidParams(self))
    }

    /// Checks the parameters, then fits on the training rows `x`.
    pub fn fit(self, x: ArrayView2<'_, f32>) -> Result<PiecewiseLinear> {
        self.check()?.fit(x)
    }
}

impl PiecewiseLinearValidParams {
    /// Fits the bin edges of every column of `x` (rows = training flows), in parallel over
    /// columns. NaN is ignored; a column without a non-NaN value is an error.
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<PiecewiseLinear> {
        let bins = self.0.bins;
        let percents: Vec<f64> = (0..=bins).map(|i| 100.0 * i as f64 / bins as f64).collect();
        let stats = all_column_stats(x, &percents, false)?;
        let mut edges = Vec::with_capacity(stats.len());
        for (column, s) in stats.into_iter().enumerate() {
            if s.quantiles.iter().any(|q| !q.is_finite()) {
                return Err(PreprocessError::NonFiniteStatistic {
                    column,
                    what: "bin edge",
                });
            }
            let mut e = s.quantiles;
            // Quantiles are non-decreasing; merging equal neighbours is `np.unique`.
            e.dedup();
            edges.push(e);
        }
        Ok(PiecewiseLinear { bins, edges })
    }
}

/// Fitted piecewise-linear encoding: input column `j` becomes `max(1, edges[j].len() - 1)`
/// output columns, in input order (a column constant on the training rows keeps one output
/// column, always 0, so every input feature stays visible downstream).
///
/// NaN passes through: every output column of a NaN input reads NaN.
///
/// ```
/// use ndarray::array;
/// use preprocess::PiecewiseLinearParams;
/// let train = array![[0.0f32, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]];
/// let ple = PiecewiseLinearParams::new(2).fit(train.view()).unwrap();
/// assert_eq!(ple.edges()[0], vec![0.0, 2.0, 4.0]);
/// assert_eq!(ple.n_features_out(), 3); // two bins for column 0, one (constant) for column 1
/// let out = ple.transform(array![[1.0f32, 5.0], [3.0, 7.0], [-2.0, 5.0]].view()).unwrap();
/// assert_eq!(out, array![[0.5f32, 0.0, 0.0], [1.0, 0.5, 0.0], [-1.0, 0.0, 0.0]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiecewiseLinear {
    bins: usize,
    /// Strictly increasing bin edges per input column (f64, as numpy computes them).
    edges: Vec<Vec<f64>>,
}

impl PiecewiseLinear {
    /// Bin edges per input column (strictly increasing; one edge for a constant column).
    pub fn edges(&self) -> &[Vec<f64>] {
        &self.edges
    }

    /// The bin count it was fitted with (columns with few distinct values have fewer).
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Number of input columns.
    pub fn n_features_in(&self) -> usize {
        self.edges.len()
    }

    /// Output columns of input column `j`.
    fn width(edges: &[f64]) -> usize {
        edges.len().saturating_sub(1).max(1)
    }

    /// Number of output columns.
    pub fn n_features_out(&self) -> usize {
        self.edges.iter().map(|e| Self::width(e)).sum()
    }

    /// Input column of every output column (ascending, each input column at least once).
    pub fn source_columns(&self) -> Vec<usize> {
        self.edges
            .iter()
            .enumerate()
            .flat_map(|(j, e)| std::iter::repeat_n(j, Self::width(e)))
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (j, e) in self.edges.iter().enumerate() {
            if e.is_empty()
                || e.iter().any(|v| !v.is_finite())
                || e.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(PreprocessError::InvalidPipeline(format!(
                    "piecewise-linear column {j}: edges must be finite and strictly increasing"
                )));
            }
        }
        Ok(())
    }

    /// Encodes one input row into `out` (`n_features_out` values).
    fn encode_row(&self, row: impl Iterator<Item = f32>, out: &mut [f32]) {
        let mut o = 0;
        for (e, v) in self.edges.iter().zip(row) {
            let t = e.len() - 1;
            if t == 0 {
                out[o] = if v.is_nan() { f32::NAN } else { 0.0 };
                o += 1;
                continue;
            }
            let v = f64::from(v);
            for (b, slot) in out[o..o + t].iter_mut().enumerate() {
                let mut f = (v - e[b]) / (e[b + 1] - e[b]);
                // `f64::max`/`min` would turn NaN into the bound; NaN must pass through.
                if !f.is_nan() {
                    if b > 0 {
                        f = f.max(0.0);
                    }
                    if b + 1 < t {
                        f = f.min(1.0);
                    }
                }
                *slot = f as f32;
            }
            o += t;
        }
    }

    /// Returns the encoded copy of `x` (`rows × n_features_out`), in parallel over rows.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        crate::check_cols(self.n_features_in(), x.ncols())?;
        let width = self.n_features_out();
        let mut out = Array2::<f32>::zeros((x.nrows(), width));
        if width == 0 || x.nrows() == 0 {
            return Ok(out);
        }
        let data = out
            .as_slice_mut()
            .expect("a freshly allocated array is contiguous");
        data.par_chunks_mut(width * 256)
            .enumerate()
            .for_each(|(block, chunk)| {
                for (r, dst) in chunk.chunks_exact_mut(width).enumerate() {
                    self.encode_row(x.row(block * 256 + r).iter().copied(), dst);
                }
            });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rows_of_bins_sum_to_the_bin_position() {
        // Inside the training range, the outputs of a column sum to (index of the bin) +
        // (position inside it): the encoding is a monotone, continuous, piecewise-linear curve.
        let train = Array2::from_shape_fn((101, 1), |(i, _)| (i as f32 / 10.0).powi(2));
        let ple = PiecewiseLinearParams::new(4).fit(train.view()).unwrap();
        let e = ple.edges()[0].clone();
        assert_eq!(e.len(), 5);
        let mut last = f32::NEG_INFINITY;
        for i in 0..=1000 {
            let v = i as f32 / 10.0;
            let out = ple.transform(array![[v]].view()).unwrap();
            let s: f32 = out.iter().sum();
            assert!(s >= last - 1e-6, "not monotone at {v}");
            last = s;
        }
        let at_edge = ple.transform(array![[e[2] as f32]].view()).unwrap();
        assert_eq!(at_edge.row(0).to_vec(), vec![1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn nan_passes_through_and_bad_params_are_rejected() {
        let train = array![[0.0f32, 1.0], [1.0, 1.0], [f32::NAN, 1.0], [2.0, 1.0]];
        let ple = PiecewiseLinearParams::new(2).fit(train.view()).unwrap();
        assert_eq!(ple.source_columns(), vec![0, 0, 1]);
        let out = ple.transform(array![[f32::NAN, f32::NAN]].view()).unwrap();
        assert!(out.iter().all(|v| v.is_nan()));
        assert!(PiecewiseLinearParams::new(0).check().is_err());
        assert!(matches!(
            ple.transform(array![[1.0f32]].view()),
            Err(PreprocessError::ShapeMismatch {
                expected: 2,
                got: 1
            })
        ));
        let all_nan = array![[f32::NAN], [f32::NAN]];
        assert!(matches!(
            PiecewiseLinearParams::new(2).fit(all_nan.view()),
            Err(PreprocessError::AllNanColumn { column: 0 })
        ));
    }
}
