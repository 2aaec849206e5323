//! `preprocess`: percentile clipping, `RobustScaler`, signed log1p, constant-feature filter and
//! class weights, fitted on training rows and equal to numpy/scikit-learn on `float32` input.
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
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
#![warn(missing_docs)]

mod clip;
mod constant;
mod error;
mod log;
mod pipeline;
mod quantile;
mod robust;
mod rows;
mod weights;

pub use clip::{PercentileClipper, PercentileClipperParams, PercentileClipperValidParams};
pub use constant::{ConstantFeatureFilter, ConstantFeatureFilterParams};
pub use error::{PreprocessError, Result};
pub use log::SignedLog1p;
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
