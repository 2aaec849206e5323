//! Glue that adapts one crate's type to another's (e.g. a fitted forest to shap's tree arrays).
use ndarray::Array2;
use rf_baseline::RandomForest;
use shap::{TreeArrays, TreeEnsemble};

/// A fitted [`RandomForest`] as shap's neutral [`TreeEnsemble`] (scikit-learn's `tree_` layout).
///
/// Leaves carry their class distribution; internal nodes carry the cover-weighted mean of their
/// children (the class distribution of the training weight that reached them), as TreeSHAP
/// expects. Routing is unchanged (`x <= threshold` left, NaN right), `cover` is the node's
/// training weight, and `scale = 1 / n_trees`, so
/// `scale * Σ_trees value[leaf]` equals [`RandomForest::predict_proba`] (up to f32 rounding of
/// the forest's own sum).
///
/// ```
/// use flowxai::rf_baseline::linfa::prelude::*;
/// use ndarray::{array, Array1};
/// let x = array![[0.0f32], [1.0], [2.0], [3.0]];
/// let y: Array1<usize> = array![0, 0, 1, 1];
/// let rf = rf_baseline::RandomForest::params().n_trees(3).fit(&Dataset::new(x, y)).unwrap();
/// let ens = flowxai::adapters::forest_to_tree_ensemble(&rf);
/// assert_eq!(ens.trees.len(), 3);
/// assert!((ens.scale - 1.0 / 3.0).abs() < 1e-12);
/// ```
pub fn forest_to_tree_ensemble(forest: &RandomForest) -> TreeEnsemble {
    let nc = forest.n_classes();
    let trees = forest
        .trees()
        .iter()
        .map(|t| {
            let nn = t.n_nodes();
            let mut children_left = vec![shap::tree_arrays::LEAF; nn];
            let mut children_right = vec![shap::tree_arrays::LEAF; nn];
            let mut feature = vec![0u32; nn];
            let mut threshold = vec![0f32; nn];
            let mut value = Array2::<f64>::zeros((nn, nc));
            // Children have larger indices than their parent: fill bottom-up.
            for n in (0..nn).rev() {
                match t.children(n) {
                    Some((l, r)) => {
                        children_left[n] = l as i32;
                        children_right[n] = r as i32;
                        feature[n] = t.feature[n];
                        threshold[n] = t.threshold[n];
                        let cover = t.cover[n];
                        if cover > 0.0 {
                            for j in 0..nc {
                                value[[n, j]] = (t.cover[l] * value[[l, j]]
                                    + t.cover[r] * value[[r, j]])
                                    / cover;
                            }
                        }
                    }
                    None => {
                        if let Some(dist) = t.leaf_distribution(n) {
                            for (j, &p) in dist.iter().enumerate() {
                                value[[n, j]] = p as f64;
                            }
                        }
                    }
                }
            }
            TreeArrays {
                children_left,
                children_right,
                feature,
                threshold,
                value,
                cover: t.cover.clone(),
            }
        })
        .collect();
    TreeEnsemble {
        trees,
        scale: 1.0 / forest.trees().len() as f64,
    }
}
