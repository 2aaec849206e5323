//! The fitted forest: training (`Fit`), batch inference, importances, JSON save/load.
use std::path::Path;

use linfa::dataset::{AsTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::binning::BinMapper;
use crate::params::{ClassWeight, RandomForestParams, RandomForestValidParams};
use crate::tree::{build_tree, TrainData, Tree, LEAF_FEATURE};
use crate::RfError;

/// Format tag written into every saved model.
const FORMAT: &str = "flowxai-rf-baseline/1";
/// Rows per rayon task in batch inference.
const ROW_BLOCK: usize = 256;
/// Rows walked through one tree in lock-step (hides memory latency).
const LANES: usize = 8;

/// One node of the inference layout: 12 bytes, one cache access per visited node.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PackedNode {
    threshold: f32,
    /// Split feature or [`LEAF_FEATURE`].
    feature: u32,
    /// Internal: absolute index of the left child (right = left + 1). Leaf: absolute leaf row.
    next: u32,
}

/// A fitted histogram Random Forest classifier.
///
/// Column `j` of [`RandomForest::predict_proba`] is class `j` (the label value `j` at fit time),
/// named by [`RandomForest::classes`].
///
/// ```
/// use linfa::prelude::*;
/// use ndarray::{array, Array1};
/// use rf_baseline::RandomForest;
///
/// let x = array![[0.0f32, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]];
/// let y: Array1<usize> = array![0, 0, 1, 1];
/// let forest = RandomForest::params()
///     .n_trees(5)
///     .seed(1)
///     .fit(&Dataset::new(x.clone(), y))
///     .unwrap();
/// let p = forest.predict_proba(x.view());
/// assert_eq!(p.dim(), (4, 2));
/// assert_eq!(forest.predict(&x), array![0, 0, 1, 1]);
/// ```
#[derive(Debug, Clone)]
pub struct RandomForest {
    n_features: usize,
    n_classes: usize,
    feature_names: Vec<String>,
    classes: Vec<String>,
    params: RandomForestValidParams,
    trees: Vec<Tree>,
    feature_importances: Vec<f64>,
    // Inference layout, rebuilt from `trees` (never serialised).
    packed: Vec<PackedNode>,
    roots: Vec<u32>,
    leaf_values: Vec<f32>,
}

#[derive(Serialize)]
struct ForestReprRef<'a> {
    format: &'a str,
    n_features: usize,
    n_classes: usize,
    feature_names: &'a [String],
    classes: &'a [String],
    params: &'a RandomForestValidParams,
    feature_importances: &'a [f64],
    trees: &'a [Tree],
}

#[derive(Deserialize)]
struct ForestRepr {
    format: String,
    n_features: usize,
    n_classes: usize,
    feature_names: Vec<String>,
    classes: Vec<String>,
    params: RandomForestValidParams,
    feature_importances: Vec<f64>,
    trees: Vec<Tree>,
}

impl Serialize for RandomForest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ForestReprRef {
            format: FORMAT,
            n_features: self.n_features,
            n_classes: self.n_classes,
            feature_names: &self.feature_names,
            classes: &self.classes,
            params: &self.params,
            feature_importances: &self.feature_importances,
            trees: &self.trees,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RandomForest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = ForestRepr::deserialize(d)?;
        if r.format != FORMAT {
            return Err(serde::de::Error::custom(format!(
                "format `{}`, expected `{FORMAT}`",
                r.format
            )));
        }
        RandomForest::from_parts(
            r.n_features,
            r.n_classes,
            r.feature_names,
            r.classes,
            r.params,
            r.trees,
            r.feature_importances,
        )
        .map_err(serde::de::Error::custom)
    }
}

fn invalid(msg: String) -> RfError {
    RfError::InvalidModel(msg)
}

impl RandomForest {
    /// The unchecked hyper-parameter builder (scikit-learn defaults).
    pub fn params() -> RandomForestParams {
        RandomForestParams::default()
    }

    /// Assemble and validate a forest (every index in range), then build the inference layout.
    fn from_parts(
        n_features: usize,
        n_classes: usize,
        feature_names: Vec<String>,
        classes: Vec<String>,
        params: RandomForestValidParams,
        trees: Vec<Tree>,
        feature_importances: Vec<f64>,
    ) -> Result<Self, RfError> {
        if feature_names.len() != n_features || feature_importances.len() != n_features {
            return Err(invalid(
                "feature names/importances length ≠ n_features".into(),
            ));
        }
        if classes.len() != n_classes || n_classes == 0 {
            return Err(invalid("class names length ≠ n_classes".into()));
        }
        if trees.is_empty() {
            return Err(invalid("no trees".into()));
        }
        let mut packed = Vec::new();
        let mut roots = Vec::with_capacity(trees.len());
        let mut leaf_values = Vec::new();
        for (ti, t) in trees.iter().enumerate() {
            let nn = t.feature.len();
            if nn == 0
                || t.threshold.len() != nn
                || t.child_or_leaf.len() != nn
                || t.cover.len() != nn
                || t.n_classes as usize != n_classes
                || t.leaf_values.len() % n_classes != 0
            {
                return Err(invalid(format!("tree {ti}: inconsistent array lengths")));
            }
            let n_leaves = t.leaf_values.len() / n_classes;
            let node_base = packed.len() as u32;
            let leaf_base = (leaf_values.len() / n_classes) as u32;
            roots.push(node_base);
            for n in 0..nn {
                let f = t.feature[n];
                let next = t.child_or_leaf[n];
                if f == LEAF_FEATURE {
                    if next as usize >= n_leaves {
                        return Err(invalid(format!(
                            "tree {ti} node {n}: leaf row out of range"
                        )));
                    }
                    packed.push(PackedNode {
                        threshold: 0.0,
                        feature: LEAF_FEATURE,
                        next: leaf_base + next,
                    });
                } else {
                    // Children after their parent rules out cycles.
                    if f as usize >= n_features || next as usize <= n || next as usize + 1 >= nn {
                        return Err(invalid(format!("tree {ti} node {n}: bad feature or child")));
                    }
                    packed.push(PackedNode {
                        threshold: t.threshold[n],
                        feature: f,
                        next: node_base + next,
                    });
                }
            }
            leaf_values.extend_from_slice(&t.leaf_values);
        }
        Ok(RandomForest {
            n_features,
            n_classes,
            feature_names,
            classes,
            params,
            trees,
            feature_importances,
            packed,
            roots,
            leaf_values,
        })
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// Number of classes (columns of `predict_proba`).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
    /// Class names; `classes()[j]` names column `j` of `predict_proba`.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// Feature names (from the dataset, else `feature-<i>`).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    /// The trees.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }
    /// The hyper-parameters it was trained with.
    pub fn fitted_params(&self) -> &RandomForestValidParams {
        &self.params
    }
    /// Mean-decrease-impurity importances, normalised like scikit-learn's `feature_importances_`
    /// (per tree normalised to 1, averaged over trees with a split, normalised again).
    pub fn feature_importances(&self) -> &[f64] {
        &self.feature_importances
    }

    /// Rename the classes (one name per column of `predict_proba`).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self, RfError> {
        if names.len() != self.n_classes {
            return Err(RfError::NameCount {
                what: "class",
                expected: self.n_classes,
                got: names.len(),
            });
        }
        self.classes = names;
        Ok(self)
    }

    /// Rename the features.
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Self, RfError> {
        if names.len() != self.n_features {
            return Err(RfError::NameCount {
                what: "feature",
                expected: self.n_features,
                got: names.len(),
            });
        }
        self.feature_names = names;
        Ok(self)
    }

    /// Class probabilities, `[rows, n_classes]`: the mean over trees of each reached leaf's class
    /// distribution (scikit-learn's `predict_proba`). Rows are processed in parallel blocks; the
    /// result does not depend on the thread count.
    ///
    /// # Panics
    /// When `x` does not have [`RandomForest::n_features`] columns; see
    /// [`RandomForest::try_predict_proba`].
    pub fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        match self.try_predict_proba(x) {
            Ok(p) => p,
            Err(e) => panic!("RandomForest::predict_proba: {e}"),
        }
    }

    /// [`RandomForest::predict_proba`] with a typed error for a wrong column count.
    pub fn try_predict_proba(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, RfError> {
        if x.ncols() != self.n_features {
            return Err(RfError::FeatureCount {
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout is contiguous");
        let (nf, nc) = (self.n_features, self.n_classes);
        let mut out = Array2::<f32>::zeros((x.nrows(), nc));
        let scale = 1.0 / self.trees.len() as f32;
        if let Some(os) = out.as_slice_mut() {
            os.par_chunks_mut(ROW_BLOCK * nc)
                .zip(xs.par_chunks(ROW_BLOCK * nf))
                .for_each(|(o, xb)| {
                    self.accumulate_block(xb, o);
                    o.iter_mut().for_each(|v| *v *= scale);
                });
        }
        Ok(out)
    }

    /// Adds every tree's leaf distribution to `out` for the rows of `xb` (row-major blocks).
    fn accumulate_block(&self, xb: &[f32], out: &mut [f32]) {
        let (nf, nc) = (self.n_features, self.n_classes);
        let rows = xb.len() / nf;
        let nodes = &self.packed[..];
        for &root in &self.roots {
            let mut r0 = 0;
            while r0 < rows {
                let lanes = LANES.min(rows - r0);
                let mut idx = [root; LANES];
                loop {
                    let mut active = false;
                    for (k, id) in idx.iter_mut().enumerate().take(lanes) {
                        let nd = nodes[*id as usize];
                        if nd.feature != LEAF_FEATURE {
                            let v = xb[(r0 + k) * nf + nd.feature as usize];
                            // Right unless `v <= t`, so NaN goes right.
                            let go_left = v <= nd.threshold;
                            *id = nd.next + u32::from(!go_left);
                            active = true;
                        }
                    }
                    if !active {
                        break;
                    }
                }
                for (k, id) in idx.iter().enumerate().take(lanes) {
                    let leaf = nodes[*id as usize].next as usize;
                    let src = &self.leaf_values[leaf * nc..(leaf + 1) * nc];
                    let dst = &mut out[(r0 + k) * nc..(r0 + k + 1) * nc];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += *s;
                    }
                }
                r0 += lanes;
            }
        }
    }

    /// Most probable class per row (ties → lowest class index, like numpy's argmax).
    pub fn predict_labels(&self, x: ArrayView2<'_, f32>) -> Array1<usize> {
        argmax_rows(&self.predict_proba(x))
    }

    /// Deterministic JSON bytes of the model.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, RfError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parse and validate a model saved by [`RandomForest::to_json_bytes`].
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, RfError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Write the model as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RfError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json_bytes()?).map_err(|source| RfError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Read a model written by [`RandomForest::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RfError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RfError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json_slice(&bytes)
    }
}

/// Row-wise argmax (first maximum wins).
pub(crate) fn argmax_rows(p: &Array2<f32>) -> Array1<usize> {
    p.rows()
        .into_iter()
        .map(|r| {
            let mut best = 0;
            for (j, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

impl<D: Data<Elem = f32>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for RandomForest {
    /// # Panics
    /// When `y.len() != x.nrows()` or the column count is wrong.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        assert_eq!(x.nrows(), y.len(), "one target per row");
        y.assign(&self.predict_labels(x.view()));
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

/// Per-class weights over the training labels.
fn class_weights(y: &[u32], n_classes: usize, mode: ClassWeight) -> Vec<f64> {
    let mut counts = vec![0usize; n_classes];
    for &c in y {
        counts[c as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count() as f64;
    counts
        .iter()
        .map(|&cnt| {
            let balanced = if cnt == 0 {
                0.0
            } else {
                y.len() as f64 / (present * cnt as f64)
            };
            match mode {
                ClassWeight::None => 1.0,
                ClassWeight::Balanced => balanced,
                ClassWeight::BalancedSqrt => balanced.sqrt(),
            }
        })
        .collect()
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, RfError> for RandomForestValidParams
where
    D: Data<Elem = f32>,
    T: AsTargets<Elem = usize>,
{
    type Object = RandomForest;

    /// Train the forest: quantile bins once, then every tree in parallel (rayon) from its own
    /// ChaCha8 stream, so the model does not depend on the thread count.
    fn fit(&self, ds: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<RandomForest, RfError> {
        let x = ds.records.view();
        let (rows, cols) = x.dim();
        if rows == 0 || cols == 0 {
            return Err(RfError::EmptyData { rows, cols });
        }
        let targets = ds.targets.as_targets();
        if targets.len() != rows {
            return Err(RfError::TargetShape {
                targets: targets.len(),
                rows,
            });
        }
        let labels: Vec<usize> = targets.iter().copied().collect();
        let n_classes = labels.iter().copied().max().unwrap_or(0) + 1;
        if n_classes > u32::MAX as usize / 2 {
            return Err(RfError::InvalidParameter {
                name: "targets",
                reason: format!("label {} too large", n_classes - 1),
            });
        }
        let y: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let cw = class_weights(&y, n_classes, self.class_weight);
        let sample_w = ds.weights();
        let row_weight: Vec<f32> = (0..rows)
            .map(|i| {
                let sw = sample_w.map_or(1.0, |w| w.get(i).copied().unwrap_or(1.0));
                (cw[y[i] as usize] * sw as f64) as f32
            })
            .collect();
        if !row_weight.iter().any(|&w| w > 0.0) {
            return Err(RfError::InvalidParameter {
                name: "weights",
                reason: "every sample has zero weight".into(),
            });
        }

        let mapper = BinMapper::fit(x, self.max_bins, self.binning_subsample, self.seed);
        let binned = mapper.transform(x);
        let x_std = x.as_standard_layout();
        let x_raw = x_std.as_slice().ok_or_else(|| RfError::InvalidParameter {
            name: "records",
            reason: "not contiguous".into(),
        })?;
        let data = TrainData {
            binned: &binned,
            n_rows: rows,
            n_features: cols,
            y: &y,
            n_classes,
            row_weight: &row_weight,
            edges: &mapper.edges,
            x: x_raw,
        };
        let grown: Vec<(Tree, Vec<f64>)> = (0..self.n_trees as u64)
            .into_par_iter()
            .map(|t| build_tree(&data, self, t))
            .collect();

        // scikit-learn: per-tree MDI normalised to 1, mean over trees that split, normalised.
        let mut imp = vec![0f64; cols];
        let mut used = 0usize;
        for (_, ti) in &grown {
            let s: f64 = ti.iter().sum();
            if s > 0.0 {
                used += 1;
                for (a, v) in imp.iter_mut().zip(ti) {
                    *a += v / s;
                }
            }
        }
        if used > 0 {
            let s: f64 = imp.iter().sum();
            imp.iter_mut().for_each(|v| *v /= s);
        }
        let feature_names = if ds.feature_names().len() == cols {
            ds.feature_names().to_vec()
        } else {
            (0..cols).map(|i| format!("feature-{i}")).collect()
        };
        let classes = (0..n_classes).map(|c| c.to_string()).collect();
        RandomForest::from_parts(
            cols,
            n_classes,
            feature_names,
            classes,
            self.clone(),
            grown.into_iter().map(|(t, _)| t).collect(),
            imp,
        )
    }
}
