//! Per-class loss weights for imbalanced training sets.

use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, Result};

/// How [`class_weights`] weighs classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeighting {
    /// Every class 1.
    #[default]
    Uniform,
    /// scikit-learn's `compute_class_weight("balanced")`: `n / (k * count[c])`.
    Balanced,
    /// Square root of `Balanced`, normalised to mean 1 over the present classes (the thesis'
    /// `balanced_sqrt`): milder than `Balanced` for very rare classes.
    BalancedSqrt,
}

/// Weight per class index `0..n_classes` for the training labels `labels`.
///
/// `k` is the number of classes that occur in `labels`; a class that does not occur gets weight 0
/// (scikit-learn refuses such a class; a weight of 0 is harmless because no sample carries it).
///
/// ```
/// use preprocess::{class_weights, ClassWeighting};
/// let y = [0, 0, 0, 1];
/// let w = class_weights(&y, 2, ClassWeighting::Balanced).unwrap();
/// assert_eq!(w, vec![4.0 / 6.0, 2.0]);
/// let s = class_weights(&y, 2, ClassWeighting::BalancedSqrt).unwrap();
/// assert!(((s[0] + s[1]) / 2.0 - 1.0).abs() < 1e-6);
/// ```
pub fn class_weights(
    labels: &[usize],
    n_classes: usize,
    weighting: ClassWeighting,
) -> Result<Vec<f32>> {
    if labels.is_empty() {
        return Err(PreprocessError::EmptyInput { rows: 0, cols: 1 });
    }
    let mut counts = vec![0u64; n_classes];
    for (position, &label) in labels.iter().enumerate() {
        match counts.get_mut(label) {
            Some(c) => *c += 1,
            None => {
                return Err(PreprocessError::LabelOutOfRange {
                    label,
                    position,
                    n_classes,
                })
            }
        }
    }
    let n = labels.len() as f64;
    let present = counts.iter().filter(|&&c| c > 0).count() as f64;
    let balanced: Vec<f64> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                n / (present * c as f64)
            }
        })
        .collect();
    let weights: Vec<f64> = match weighting {
        ClassWeighting::Uniform => vec![1.0; n_classes],
        ClassWeighting::Balanced => balanced,
        ClassWeighting::BalancedSqrt => {
            let roots: Vec<f64> = balanced.iter().map(|w| w.sqrt()).collect();
            let mean = roots.iter().sum::<f64>() / present;
            roots.iter().map(|r| r / mean).collect()
        }
    };
    Ok(weights.into_iter().map(|w| w as f32).collect())
}
