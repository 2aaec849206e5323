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
/// Rows per rayon task in batch inference. Trees are the inner loop over a block, so a tree's
/// nodes are fetched from memory once per block and then hit cache for the block's other rows;
/// the block's rows (≈ 300 B each, 5 MB) and outputs stay in L3 meanwhile. Measured on 1M rows
/// and the bench's 100 fully grown trees (`tests/predict_probe.rs`): 16,384 was ≈ 10 % faster
/// than 8,192 in 5 of 6 paired runs; 24,576–65,536 were 14–30 % slower.
const ROW_BLOCK: usize = 16_384;
/// Leaf code flag: the leaf's distribution is one class with probability exactly 1 (the usual
/// case for fully grown trees), stored in the low bits; the leaf needs no table lookup.
const PURE_LEAF: u32 = 1 << 31;
/// Rows walked through one tree at once (independent loads hide memory latency); a lane that
/// reaches a leaf takes the block's next row, so no lane idles while others finish deep paths.
const LANES: usize = 16;

/// The node word: an unsigned integer holding feature, hot-child flag and far-child offset.
trait Word: Copy + Send + Sync + std::fmt::Debug {
    const BITS: u32;
    fn from_u64(v: u64) -> Self;
    fn to_u64(self) -> u64;
}
impl Word for u32 {
    const BITS: u32 = 32;
    fn from_u64(v: u64) -> Self {
        v as u32
    }
    #[inline(always)]
    fn to_u64(self) -> u64 {
        u64::from(self)
    }
}
impl Word for u64 {
    const BITS: u32 = 64;
    fn from_u64(v: u64) -> Self {
        v
    }
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self
    }
}

/// One node of the inference layout (8 bytes with a `u32` word).
///
/// Each tree is laid out depth-first with the child of larger cover (the one more rows take)
/// right after its parent, so the hot path through a tree reads consecutive memory.
/// * Internal: `threshold`; `word` = `far << (fb + 1) | adjacent_is_left << fb | feature`, where
///   `far` is the other child's index relative to the tree's root.
/// * Leaf: `word`'s low `fb` bits are all ones (never a feature index); `threshold` holds the
///   leaf code as raw bits: [`PURE_LEAF`]` | class` for a one-class leaf, else the row of the
///   forest's table of mixed leaf distributions.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Node<W> {
    threshold: f32,
    word: W,
}

/// All trees' nodes: 8-byte nodes when every offset fits in 32 bits, else 16-byte ones.
#[derive(Debug, Clone)]
enum Nodes {
    Narrow(Vec<Node<u32>>),
    Wide(Vec<Node<u64>>),
}

/// Hint the CPU to load `nodes[i]` into cache (no effect on results; out of range does nothing).
#[inline(always)]
fn prefetch<T>(nodes: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(n) = nodes.get(i) {
        // SAFETY: prefetching is a hint that never faults; the pointer is inside `nodes`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(n as *const T as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (nodes, i);
}

/// A tree re-ordered depth-first, hot child first: per new node, (original node, far child's new
/// index relative to the root or `None`, adjacent child is the left one).
type Reordered = Vec<(usize, Option<usize>, bool)>;

/// Re-order one validated tree (children after parents) hot-child-first; rejects a node reached
/// twice (not a tree).
fn reorder_hot_first(t: &Tree, ti: usize) -> Result<Reordered, RfError> {
    let nn = t.feature.len();
    let mut seen = vec![false; nn];
    let mut order: Reordered = Vec::with_capacity(nn);
    // (original node, new index of the parent whose far child it is)
    let mut stack: Vec<(usize, Option<usize>)> = vec![(0, None)];
    while let Some((n, far_of)) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            return Err(invalid(format!("tree {ti} node {n}: reached twice")));
        }
        let id = order.len();
        if let Some(p) = far_of {
            order[p].1 = Some(id);
        }
        match t.children(n) {
            None => order.push((n, None, false)),
            Some((l, r)) => {
                // Ties keep the left child adjacent.
                let left_hot = t.cover[l] >= t.cover[r];
                let (hot, cold) = if left_hot { (l, r) } else { (r, l) };
                order.push((n, None, left_hot));
                stack.push((cold, Some(id)));
                stack.push((hot, None));
            }
        }
    }
    Ok(order)
}

/// The class of a leaf distribution that is exactly 1 for one class and ±0 elsewhere. Adding such
/// a row to a non-negative sum changes only that class's entry, so a one-class leaf can be
/// stored as its class.
fn one_class(d: &[f32]) -> Option<usize> {
    let k = d.iter().position(|&v| v == 1.0)?;
    d.iter()
        .enumerate()
        .all(|(j, &v)| j == k || v == 0.0)
        .then_some(k)
}

/// Pack re-ordered trees into words of type `W`; `None` if an offset does not fit.
fn pack<W: Word>(
    trees: &[Tree],
    orders: &[Reordered],
    leaf_codes: &[Vec<u32>],
    feature_bits: u32,
) -> Option<Vec<Node<W>>> {
    let offset_bits = W::BITS.checked_sub(feature_bits + 1)?;
    if orders
        .iter()
        .any(|o| offset_bits < 64 && o.len() as u64 > 1u64 << offset_bits)
    {
        return None;
    }
    let marker = (1u64 << feature_bits) - 1;
    let mut out = Vec::with_capacity(orders.iter().map(Vec::len).sum());
    for ((t, order), codes) in trees.iter().zip(orders).zip(leaf_codes) {
        for &(n, far, adjacent_left) in order {
            out.push(match far {
                None => Node {
                    threshold: f32::from_bits(codes[t.child_or_leaf[n] as usize]),
                    word: W::from_u64(marker),
                },
                Some(far) => Node {
                    threshold: t.threshold[n],
                    word: W::from_u64(
                        (far as u64) << (feature_bits + 1)
                            | u64::from(adjacent_left) << feature_bits
                            | u64::from(t.feature[n]),
                    ),
                },
            });
        }
    }
    Some(out)
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
    nodes: Nodes,
    /// Bits of a node word holding the feature index (all ones = leaf).
    feature_bits: u32,
    roots: Vec<usize>,
    /// `[mixed leaves × n_classes]`: distributions of the leaves that are not one-class.
    mixed_leaves: Vec<f32>,
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
        if n_classes >= PURE_LEAF as usize {
            return Err(invalid(format!("{n_classes} classes (at most 2^31 - 1)")));
        }
        if trees.is_empty() {
            return Err(invalid("no trees".into()));
        }
        let mut roots = Vec::with_capacity(trees.len());
        let mut leaf_codes = Vec::with_capacity(trees.len());
        let mut orders = Vec::with_capacity(trees.len());
        let mut mixed_leaves = Vec::new();
        let mut total_nodes = 0usize;
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
            for n in 0..nn {
                let f = t.feature[n];
                let next = t.child_or_leaf[n];
                if f == LEAF_FEATURE {
                    if next as usize >= n_leaves {
                        return Err(invalid(format!(
                            "tree {ti} node {n}: leaf row out of range"
                        )));
                    }
                } else if f as usize >= n_features || next as usize <= n || next as usize + 1 >= nn
                {
                    // Children after their parent rules out cycles.
                    return Err(invalid(format!("tree {ti} node {n}: bad feature or child")));
                }
            }
            let order = reorder_hot_first(t, ti)?;
            roots.push(total_nodes);
            total_nodes += order.len();
            orders.push(order);
            let codes = t
                .leaf_values
                .chunks(n_classes)
                .map(|d| match one_class(d) {
                    Some(k) => PURE_LEAF | k as u32,
                    None => {
                        let row = (mixed_leaves.len() / n_classes) as u32;
                        mixed_leaves.extend_from_slice(d);
                        row
                    }
                })
                .collect();
            leaf_codes.push(codes);
            if mixed_leaves.len() / n_classes >= PURE_LEAF as usize {
                return Err(invalid("more than 2^31 mixed leaves".into()));
            }
        }
        // Smallest width whose all-ones value is not a feature index.
        let feature_bits = usize::BITS - n_features.leading_zeros();
        let nodes = match pack::<u32>(&trees, &orders, &leaf_codes, feature_bits) {
            Some(v) => Nodes::Narrow(v),
            None => Nodes::Wide(
                pack::<u64>(&trees, &orders, &leaf_codes, feature_bits)
                    .ok_or_else(|| invalid("trees too large to index".into()))?,
            ),
        };
        drop(orders);
        Ok(RandomForest {
            n_features,
            n_classes,
            feature_names,
            classes,
            params,
            trees,
            feature_importances,
            nodes,
            feature_bits,
            roots,
            mixed_leaves,
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
        Ok(self.predict_proba_row_block(x, ROW_BLOCK))
    }

    /// [`RandomForest::try_predict_proba`] with `block` rows per parallel task (speed probes;
    /// the result does not depend on `block`). `x` must have `n_features` columns.
    #[doc(hidden)]
    pub fn predict_proba_row_block(&self, x: ArrayView2<'_, f32>, block: usize) -> Array2<f32> {
        let block = block.max(1);
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout is contiguous");
        let (nf, nc) = (self.n_features, self.n_classes);
        let mut out = Array2::<f32>::zeros((x.nrows(), nc));
        let scale = 1.0 / self.trees.len() as f32;
        if let Some(os) = out.as_slice_mut() {
            os.par_chunks_mut(block * nc)
                .zip(xs.par_chunks(block * nf))
                .for_each(|(o, xb)| {
                    match &self.nodes {
                        Nodes::Narrow(n) => self.accumulate_block(n, xb, o),
                        Nodes::Wide(n) => self.accumulate_block(n, xb, o),
                    }
                    o.iter_mut().for_each(|v| *v *= scale);
                });
        }
        out
    }

    /// Adds every tree's leaf distribution to `out` for the rows of `xb` (row-major blocks).
    /// Trees are the outer loop, so each row sums its trees in forest order (the bits do not
    /// depend on the lane schedule).
    fn accumulate_block<W: Word>(&self, nodes: &[Node<W>], xb: &[f32], out: &mut [f32]) {
        let (nf, nc) = (self.n_features, self.n_classes);
        let rows = xb.len() / nf;
        let fb = self.feature_bits;
        let marker = (1u64 << fb) - 1;
        for &root in &self.roots {
            let mut lane_row = [0usize; LANES];
            let mut lane_node = [root; LANES];
            let mut alive = [false; LANES];
            let mut started = LANES.min(rows);
            for k in 0..started {
                lane_row[k] = k;
                alive[k] = true;
            }
            let mut live = started;
            while live > 0 {
                for k in 0..LANES {
                    if !alive[k] {
                        continue;
                    }
                    debug_assert!(lane_node[k] < nodes.len());
                    // SAFETY: `from_parts` checked every tree: roots and far offsets stay inside
                    // `nodes`, and an internal node's adjacent child exists (it is its hot child).
                    let nd = unsafe { *nodes.get_unchecked(lane_node[k]) };
                    let w = nd.word.to_u64();
                    let f = w & marker;
                    let row = lane_row[k];
                    if f == marker {
                        let code = nd.threshold.to_bits();
                        let dst = &mut out[row * nc..(row + 1) * nc];
                        if code & PURE_LEAF != 0 {
                            // Adding the one-hot row would add exact zeros elsewhere: same bits.
                            dst[(code & !PURE_LEAF) as usize] += 1.0;
                        } else {
                            let leaf = code as usize;
                            let src = &self.mixed_leaves[leaf * nc..(leaf + 1) * nc];
                            for (d, s) in dst.iter_mut().zip(src) {
                                *d += *s;
                            }
                        }
                        if started < rows {
                            lane_row[k] = started;
                            lane_node[k] = root;
                            started += 1;
                        } else {
                            alive[k] = false;
                            live -= 1;
                        }
                    } else {
                        debug_assert!(row < rows && (f as usize) < nf);
                        // SAFETY: `row < rows = xb.len() / nf` and `from_parts` checked
                        // `feature < n_features` for every internal node.
                        let v = unsafe { *xb.get_unchecked(row * nf + f as usize) };
                        // Right unless `v <= t`, so NaN goes right.
                        let go_left = v <= nd.threshold;
                        let adjacent_left = (w >> fb) & 1 == 1;
                        // Branch-free select: a mispredicted branch here would flush the
                        // other lanes' outstanding loads.
                        let stay = usize::from(go_left == adjacent_left).wrapping_neg();
                        let next = ((lane_node[k] + 1) & stay)
                            | ((root + (w >> (fb + 1)) as usize) & !stay);
                        // Start the next node's load now; the other lanes run meanwhile.
                        prefetch(nodes, next);
                        lane_node[k] = next;
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::Dataset;
    use ndarray::Array2;

    /// The 16-byte fallback layout (used when a tree has too many nodes for 32-bit words), with
    /// every leaf read from the mixed-leaf table, gives the same bits as the 8-byte layout with
    /// one-class leaves coded inline.
    #[test]
    fn wide_nodes_match_narrow_nodes() {
        let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f32 - 8.0);
        let y: Array1<usize> = (0..300).map(|i| (i * 5 % 11) % 3).collect();
        let mut forest = RandomForest::params()
            .n_trees(4)
            .seed(3)
            .fit(&Dataset::new(x.clone(), y))
            .unwrap();
        assert!(matches!(forest.nodes, Nodes::Narrow(_)));
        let narrow = forest.predict_proba(x.view());
        let orders: Vec<Reordered> = forest
            .trees
            .iter()
            .enumerate()
            .map(|(ti, t)| reorder_hot_first(t, ti).unwrap())
            .collect();
        // Only mixed leaves: every leaf through the table.
        let mut leaf_codes = Vec::new();
        let mut mixed = Vec::new();
        for t in &forest.trees {
            let nc = forest.n_classes;
            leaf_codes.push(
                (0..t.leaf_values.len() / nc)
                    .map(|r| (mixed.len() / nc + r) as u32)
                    .collect::<Vec<_>>(),
            );
            mixed.extend_from_slice(&t.leaf_values);
        }
        let wide = pack::<u64>(&forest.trees, &orders, &leaf_codes, forest.feature_bits).unwrap();
        forest.mixed_leaves = mixed;
        forest.nodes = Nodes::Wide(wide);
        let got = forest.predict_proba(x.view());
        assert!(narrow
            .iter()
            .zip(got.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(pack::<u32>(&forest.trees, &orders, &leaf_codes, 31).is_none());
    }
}
