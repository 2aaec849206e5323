//! Drops columns that are constant on the training rows.

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, Result};
use crate::quantile::all_column_stats;

/// Parameters of a [`ConstantFeatureFilter`] (none: a column is constant when its non-NaN
/// training values are all equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConstantFeatureFilterParams;

impl ConstantFeatureFilterParams {
    /// Finds the constant columns of `x`, in parallel over columns.
    ///
    /// Equals scikit-learn's `VarianceThreshold(threshold=0)`, which keeps a column only if its
    /// peak-to-peak range is non-zero.
    pub fn fit(self, x: ArrayView2<'_, f32>) -> Result<ConstantFeatureFilter> {
        let stats = all_column_stats(x, &[], false)?;
        let keep = stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.max > s.min)
            .map(|(j, _)| j)
            .collect();
        Ok(ConstantFeatureFilter {
            n_features_in: x.ncols(),
            keep,
        })
    }
}

/// Fitted filter: keeps the columns listed in [`ConstantFeatureFilter::kept`].
///
/// ```
/// use ndarray::array;
/// use preprocess::ConstantFeatureFilterParams;
/// let train = array![[1.0f32, 0.0, 3.0], [2.0, 0.0, 3.0]];
/// let f = ConstantFeatureFilterParams.fit(train.view()).unwrap();
/// assert_eq!(f.kept(), &[0]);
/// assert_eq!(f.transform(train.view()).unwrap(), array![[1.0f32], [2.0]]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstantFeatureFilter {
    n_features_in: usize,
    keep: Vec<usize>,
}

impl ConstantFeatureFilter {
    /// Indices of the kept input columns, ascending.
    pub fn kept(&self) -> &[usize] {
        &self.keep
    }

    /// Indices of the dropped (constant) input columns, ascending.
    pub fn dropped(&self) -> Vec<usize> {
        (0..self.n_features_in)
            .filter(|j| self.keep.binary_search(j).is_err())
            .collect()
    }

    /// Number of input columns.
    pub fn n_features_in(&self) -> usize {
        self.n_features_in
    }

    /// Number of output columns.
    pub fn n_features_out(&self) -> usize {
        self.keep.len()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ascending = self.keep.windows(2).all(|w| w[0] < w[1]);
        if !ascending || self.keep.last().is_some_and(|&j| j >= self.n_features_in) {
            return Err(PreprocessError::InvalidPipeline(
                "constant filter: kept columns must be ascending and in range".into(),
            ));
        }
        Ok(())
    }

    /// Returns the kept columns of `x` (one allocation for the whole output).
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        crate::check_cols(self.n_features_in, x.ncols())?;
        Ok(x.select(Axis(1), &self.keep))
    }
}
