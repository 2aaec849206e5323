//! A model-neutral description of decision trees for TreeSHAP (scikit-learn's `tree_` layout).
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Sentinel child index of a leaf.
pub const LEAF: i32 = -1;

/// One binary tree as flat node arrays. Node 0 is the root.
///
/// Routing: a flow goes to `children_left[n]` when `x[feature[n]] <= threshold[n]`, else right
/// (scikit-learn's convention). NaN goes right.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TreeArrays {
    /// Left child per node, [`LEAF`] for leaves.
    pub children_left: Vec<i32>,
    /// Right child per node, [`LEAF`] for leaves.
    pub children_right: Vec<i32>,
    /// Split feature per node (ignored for leaves).
    pub feature: Vec<u32>,
    /// Split threshold per node (ignored for leaves). Converting a float64 threshold (as
    /// scikit-learn stores them), use [`threshold_from_f64`]: rounding to nearest would route
    /// an f32 value lying between the f64 threshold and its rounding to the wrong side.
    pub threshold: Vec<f32>,
    /// `[nodes, outputs]`: the node's prediction (for a forest: class probabilities), set for
    /// internal nodes too.
    pub value: Array2<f64>,
    /// Training weight (sample count or weighted count) that reached each node.
    pub cover: Vec<f64>,
}

/// An additive ensemble: the model output is `scale * Σ_trees value(leaf)`
/// (a Random Forest's `predict_proba` uses `scale = 1 / n_trees`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TreeEnsemble {
    /// The trees; all have the same number of outputs.
    pub trees: Vec<TreeArrays>,
    /// Multiplier applied to the summed tree outputs.
    pub scale: f64,
}

/// The f32 threshold that routes every f32 value exactly as `x <= t` does with the float64
/// threshold `t` (scikit-learn compares float32 inputs against float64 thresholds): the largest
/// f32 not above `t` (round toward −∞).
pub fn threshold_from_f64(t: f64) -> f32 {
    let r = t as f32; // nearest
    if (r as f64) <= t || r.is_nan() {
        r
    } else {
        // r is one ulp above t: step down to the next f32 (toward −∞).
        let bits = r.to_bits();
        let down = if r > 0.0 {
            bits - 1
        } else if r == 0.0 {
            0x8000_0001 // −(smallest subnormal)
        } else {
            bits + 1
        };
        f32::from_bits(down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_rounds_down_and_routes_like_f64() {
        let a = 0.1f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let mid = (a as f64 + b as f64) / 2.0; // the threshold scikit-learn would store
        let t = threshold_from_f64(mid);
        for x in [a, b] {
            assert_eq!((x as f64) <= mid, x <= t, "x = {x}");
        }
        assert_eq!(t, a);
        assert_eq!(threshold_from_f64(1.5), 1.5);
        let na = -0.1f32;
        let nb = f32::from_bits(na.to_bits() - 1); // closer to zero
        let mid = (na as f64 + nb as f64) / 2.0;
        let t = threshold_from_f64(mid);
        for x in [na, nb] {
            assert_eq!((x as f64) <= mid, x <= t, "x = {x}");
        }
        assert!(threshold_from_f64(-1e-50) < 0.0);
        assert_eq!(threshold_from_f64(1e-50), 0.0);
    }
}
