//! `rf-baseline`: a histogram Random Forest on linfa traits with TreeSHAP-ready nodes, and the
//! `linfa-trees` decision-tree figure.
//!
//! * [`RandomForest`]: quantile-binned (≤ 255 bins per feature, computed once), scikit-learn
//!   defaults ([`RandomForestParams`]), trees grown in parallel with rayon, each from its own
//!   ChaCha8 stream of the seed, so the model is the same for any thread count. Every node keeps
//!   its cover, every leaf its class distribution ([`Tree`]); thresholds are real feature values.
//! * Batch inference over row blocks on all cores, no per-row allocation.
//! * [`fit_tree_figure`]: a shallow gini tree as plain data ([`TreeFigure`]) and Graphviz DOT.
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
