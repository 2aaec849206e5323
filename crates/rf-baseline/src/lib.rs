//! `rf-baseline`: a histogram Random Forest on linfa traits with TreeSHAP-ready nodes, and the
//! `linfa-trees` decision-tree figure.
//!
//! * [`RandomForest`]: quantile bins (≤ 255 per feature, computed once from the training data),
//!   scikit-learn defaults ([`RandomForestParams`], checked by linfa's `ParamGuard` into
//!   [`RandomForestValidParams`]): 100 trees, gini, √features re-drawn at every node, bootstrap,
//!   unlimited depth; class weights none/balanced/balanced_sqrt. Trees grow in parallel with
//!   rayon, tree `t` from ChaCha8 stream `t` of the seed, so the model bytes do not depend on the
//!   thread count. A split's threshold is the real midpoint between the node's largest left and
//!   smallest right value (scikit-learn's choice), so trees run on raw `f32` input and, where a
//!   feature has ≤ 255 distinct values, the splits equal scikit-learn's exhaustive ones.
//! * Every node keeps its cover (training weight), every leaf its class distribution ([`Tree`],
//!   flat per-node arrays); mean-decrease-impurity importances normalised like scikit-learn's.
//! * Batch inference ([`RandomForest::predict_proba`]): the trees are packed into one 8-byte-node
//!   array, each tree depth-first with the larger-cover child next to its parent, one-class leaves
//!   (all leaves of fully grown trees) coded inline as their class; rows are split into
//!   16,384-row blocks over the rayon pool, and within a block every tree in turn walks the rows
//!   sixteen at a time (branch-free child select), so a tree's nodes are fetched once per block;
//!   no per-row allocation, the per-row sum runs over trees in a fixed order.
//! * Save/load as JSON with deterministic bytes, validated on load.
//! * [`fit_tree_figure`]: a shallow `linfa-trees` gini tree as plain data ([`TreeFigure`]) and
//!   Graphviz DOT, for the thesis' tree figure and as a cross-check.
//!
//! ```
//! use rf_baseline::linfa::prelude::*;
//! use rf_baseline::{ClassWeight, RandomForest};
//! use ndarray::{array, Array1};
//!
//! let x = array![[0.0f32, 3.0], [0.2, 2.0], [1.0, 0.5], [0.9, 0.0]];
//! let y: Array1<usize> = array![0, 0, 1, 1];
//! let forest = RandomForest::params()
//!     .n_trees(20)
//!     .class_weight(ClassWeight::Balanced)
//!     .seed(42)
//!     .fit(&Dataset::new(x.clone(), y))?;
//! let proba = forest.predict_proba(x.view());
//! assert!((proba.row(0).sum() - 1.0).abs() < 1e-6);
//! let bytes = forest.to_json_bytes()?;
//! assert_eq!(RandomForest::from_json_slice(&bytes)?.to_json_bytes()?, bytes);
//! # Ok::<(), rf_baseline::RfError>(())
//! ```
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
mod binning;
mod error;
mod figure;
mod forest;
mod params;
mod tree;

/// linfa, re-exported so users can call `fit`/`predict` without naming it as a dependency.
pub use linfa;

pub use error::RfError;
pub use figure::{fit_tree_figure, FigureNode, TreeFigure, MAX_FIGURE_DEPTH};
pub use forest::RandomForest;
pub use params::{ClassWeight, MaxFeatures, RandomForestParams, RandomForestValidParams};
pub use tree::{Tree, LEAF_FEATURE};
