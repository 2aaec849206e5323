//! `preprocess`: percentile clipping, `RobustScaler`, signed log1p, rank-based normal scores,
//! piecewise-linear encoding, constant-feature filter and class weights, fitted on training rows and equal to
//! numpy/scikit-learn/scipy on `float32` input.
//!
//! Every step follows the same pattern: a `XxxParams` value (checked by `check` into
//! `XxxValidParams`), `fit` on the training rows returning a fitted type, and
//! `transform`/`transform_inplace` for any batch. Fitting computes exact quantiles (selection,
//! not sorting) in parallel over columns; transforms run in place, in parallel over row blocks.
//! A [`Pipeline`] chains the steps and saves/loads as JSON; [`Preset`] holds the thesis'
//! pipeline and flowxai's better default.
//!
//! ```
//! use ndarray::array;
//! use preprocess::{Pipeline, Preset};
//! let train = array![[0.0f32, 1.0], [5.0, 1.0], [1e6, 1.0], [7.0, 2.0]];
//! let pipeline: Pipeline = Preset::Thesis.params().fit(train.view()).unwrap();
//! let scaled = pipeline.transform(array![[6.0f32, 1.0]].view()).unwrap();
//! assert_eq!(scaled.shape(), &[1, 2]);
//! ```
//!
//! # Numbers: what "equal to scikit-learn" means on `f32`
//! numpy's `nanpercentile` on a float32 column selects the two neighbouring order statistics,
//! takes their difference in float32 and interpolates in float64, returning float64; this crate
//! does the same, so clip bounds and `RobustScaler` scales are bit-identical to scikit-learn's
//! (stored as `f64`). `np.nanmedian` stays in float32 (`(a + b) / 2` in f32), and so does the
//! centre here. Transforms subtract in f32 like scikit-learn and scale by the f32 reciprocal
//! (≤ 1e-6 relative from scikit-learn's f64 division; the fixture tests check 1e-6).
//! NaN is ignored when fitting and passes through transforms.
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
#![warn(missing_docs)]

mod clip;
mod constant;
mod error;
mod log;
mod normal_scores;
mod piecewise;
mod pipeline;
mod quantile;
mod robust;
mod rows;
mod weights;

pub use clip::{PercentileClipper, PercentileClipperParams, PercentileClipperValidParams};
pub use constant::{ConstantFeatureFilter, ConstantFeatureFilterParams};
pub use error::{PreprocessError, Result};
pub use log::SignedLog1p;
pub use normal_scores::{
    normal_quantile, NormalScores, NormalScoresParams, NormalScoresValidParams,
};
pub use piecewise::{PiecewiseLinear, PiecewiseLinearParams, PiecewiseLinearValidParams};
pub use pipeline::{FittedStep, Pipeline, PipelineParams, Preset, StepParams, PIPELINE_FORMAT};
pub use robust::{RobustScaler, RobustScalerParams, RobustScalerValidParams, ZeroIqrScale};
pub use weights::{class_weights, ClassWeighting};

/// Checks that a matrix has the number of columns a fitted step expects.
pub(crate) fn check_cols(expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(PreprocessError::ShapeMismatch { expected, got })
    }
}
