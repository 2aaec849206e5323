//! Hyper-parameters: [`RandomForestParams`] (unchecked builder) → [`RandomForestValidParams`].
use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use crate::RfError;

/// How many features are drawn (without replacement) at every node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MaxFeatures {
    /// `max(1, floor(sqrt(n_features)))`, scikit-learn's `"sqrt"` (the classifier default).
    Sqrt,
    /// `max(1, floor(log2(n_features)))`.
    Log2,
    /// Every feature (plain bagged trees).
    All,
    /// A fixed count (clamped to the number of features).
    Count(usize),
    /// A fraction in (0, 1] of the features, at least one.
    Fraction(f64),
}

impl MaxFeatures {
    /// The number of features drawn per node for `n_features` columns.
    pub fn resolve(self, n_features: usize) -> usize {
        let n = match self {
            MaxFeatures::Sqrt => (n_features as f64).sqrt().floor() as usize,
            MaxFeatures::Log2 => (n_features as f64).log2().floor() as usize,
            MaxFeatures::All => n_features,
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) => (f * n_features as f64).floor() as usize,
        };
        n.clamp(1, n_features.max(1))
    }
}

/// Per-class sample weights, as scikit-learn's `class_weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassWeight {
    /// Every sample weighs 1.
    None,
    /// `n_samples / (n_classes * count(class))` over the whole training set.
    Balanced,
    /// The square root of [`ClassWeight::Balanced`] (the thesis' MLP weighting).
    BalancedSqrt,
}

/// Checked hyper-parameters of [`crate::RandomForest`]; obtain via [`RandomForestParams`].
///
/// Defaults follow scikit-learn's `RandomForestClassifier`: 100 trees, gini, √features per node,
/// bootstrap, unlimited depth, `min_samples_split = 2`, `min_samples_leaf = 1`, no class weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestValidParams {
    pub(crate) n_trees: usize,
    pub(crate) max_depth: Option<usize>,
    pub(crate) min_samples_split: usize,
    pub(crate) min_samples_leaf: usize,
    pub(crate) max_features: MaxFeatures,
    pub(crate) bootstrap: bool,
    pub(crate) class_weight: ClassWeight,
    pub(crate) seed: u64,
    pub(crate) max_bins: usize,
    pub(crate) binning_subsample: usize,
}

impl RandomForestValidParams {
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }
    /// Maximal depth (root = depth 0); `None` grows until pure or unsplittable.
    pub fn max_depth(&self) -> Option<usize> {
        self.max_depth
    }
    /// Minimal number of distinct in-bag rows a node needs to be split.
    pub fn min_samples_split(&self) -> usize {
        self.min_samples_split
    }
    /// Minimal number of distinct in-bag rows in each child.
    pub fn min_samples_leaf(&self) -> usize {
        self.min_samples_leaf
    }
    /// Features drawn per node.
    pub fn max_features(&self) -> MaxFeatures {
        self.max_features
    }
    /// Whether every tree trains on a bootstrap sample.
    pub fn bootstrap(&self) -> bool {
        self.bootstrap
    }
    /// Class weighting.
    pub fn class_weight(&self) -> ClassWeight {
        self.class_weight
    }
    /// Seed of the forest; tree `t` uses ChaCha8 stream `t` of this seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Quantile bins per feature (2..=256).
    pub fn max_bins(&self) -> usize {
        self.max_bins
    }
    /// Rows used to compute the bin edges (a seeded random subset when the data is larger).
    pub fn binning_subsample(&self) -> usize {
        self.binning_subsample
    }
}

/// Unchecked builder of a histogram Random Forest; `fit` checks it (linfa's [`ParamGuard`]).
///
/// ```
/// use linfa::prelude::*;
/// use rf_baseline::RandomForest;
/// let params = RandomForest::params().n_trees(10).seed(7);
/// assert!(params.check_ref().is_ok());
/// assert!(RandomForest::params().n_trees(0).check_ref().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RandomForestParams(pub(crate) RandomForestValidParams);

impl Default for RandomForestParams {
    fn default() -> Self {
        RandomForestParams(RandomForestValidParams {
            n_trees: 100,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Sqrt,
            bootstrap: true,
            class_weight: ClassWeight::None,
            seed: 42,
            max_bins: 255,
            binning_subsample: 200_000,
        })
    }
}

impl RandomForestParams {
    /// scikit-learn's defaults (see [`RandomForestValidParams`]), seed 42, 255 bins.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of trees (≥ 1).
    pub fn n_trees(mut self, n: usize) -> Self {
        self.0.n_trees = n;
        self
    }
    /// Maximal depth (≥ 1), `None` for unlimited.
    pub fn max_depth(mut self, d: Option<usize>) -> Self {
        self.0.max_depth = d;
        self
    }
    /// Minimal rows to split a node (≥ 2).
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.0.min_samples_split = n;
        self
    }
    /// Minimal rows per leaf (≥ 1).
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.0.min_samples_leaf = n;
        self
    }
    /// Features drawn at each node.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.0.max_features = m;
        self
    }
    /// Bootstrap sampling per tree.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.0.bootstrap = b;
        self
    }
    /// Class weighting.
    pub fn class_weight(mut self, w: ClassWeight) -> Self {
        self.0.class_weight = w;
        self
    }
    /// Seed of the forest.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }
    /// Bins per feature (2..=256).
    pub fn max_bins(mut self, b: usize) -> Self {
        self.0.max_bins = b;
        self
    }
    /// Rows used to compute bin edges (≥ 1).
    pub fn binning_subsample(mut self, n: usize) -> Self {
        self.0.binning_subsample = n;
        self
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> RfError {
    RfError::InvalidParameter {
        name,
        reason: reason.into(),
    }
}

impl ParamGuard for RandomForestParams {
    type Checked = RandomForestValidParams;
    type Error = RfError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        let p = &self.0;
        if p.n_trees == 0 {
            return Err(invalid("n_trees", "must be at least 1"));
        }
        if p.max_depth == Some(0) {
            return Err(invalid("max_depth", "must be at least 1 (or None)"));
        }
        if p.min_samples_split < 2 {
            return Err(invalid(
                "min_samples_split",
                format!("must be at least 2, got {}", p.min_samples_split),
            ));
        }
        if p.min_samples_leaf < 1 {
            return Err(invalid("min_samples_leaf", "must be at least 1"));
        }
        match p.max_features {
            MaxFeatures::Count(0) => return Err(invalid("max_features", "count must be ≥ 1")),
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(invalid(
                    "max_features",
                    format!("fraction {f} not in (0, 1]"),
                ))
            }
            _ => {}
        }
        if !(2..=256).contains(&p.max_bins) {
            return Err(invalid(
                "max_bins",
                format!("must be in 2..=256, got {}", p.max_bins),
            ));
        }
        if p.binning_subsample == 0 {
            return Err(invalid("binning_subsample", "must be at least 1"));
        }
        Ok(p)
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        self.check_ref()?;
        Ok(self.0)
    }
}
