//! One histogram-grown classification tree: flat node arrays (struct of arrays) and the builder.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::binning::midpoint;
use crate::params::RandomForestValidParams;

/// `feature` value that marks a leaf.
pub const LEAF_FEATURE: u32 = u32::MAX;

/// A fitted tree as flat per-node arrays; node 0 is the root.
///
/// Routing: a flow goes left when `x[feature] <= threshold`, else right (NaN goes right).
/// The children of an internal node are adjacent: right = left + 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Split feature per node; [`LEAF_FEATURE`] for leaves.
    pub feature: Vec<u32>,
    /// Split threshold per node (a real feature value; 0 for leaves).
    pub threshold: Vec<f32>,
    /// Internal node: index of the left child (the right child is the next index).
    /// Leaf: row of `leaf_values` holding its class distribution.
    pub child_or_leaf: Vec<u32>,
    /// Training weight that reached each node (bootstrap counts × class weights × sample weights).
    pub cover: Vec<f64>,
    /// Number of classes = width of a `leaf_values` row.
    pub n_classes: u32,
    /// `[n_leaves × n_classes]` row-major: each leaf's normalised class distribution.
    pub leaf_values: Vec<f32>,
}

impl Tree {
    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.feature.len()
    }
    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.feature.iter().filter(|&&f| f == LEAF_FEATURE).count()
    }
    /// Whether `node` is a leaf.
    pub fn is_leaf(&self, node: usize) -> bool {
        self.feature[node] == LEAF_FEATURE
    }
    /// `(left, right)` children of an internal node, `None` for a leaf.
    pub fn children(&self, node: usize) -> Option<(usize, usize)> {
        (!self.is_leaf(node)).then(|| {
            let l = self.child_or_leaf[node] as usize;
            (l, l + 1)
        })
    }
    /// Class distribution of a leaf (sums to 1), `None` for an internal node.
    pub fn leaf_distribution(&self, node: usize) -> Option<&[f32]> {
        self.is_leaf(node).then(|| {
            let c = self.n_classes as usize;
            let r = self.child_or_leaf[node] as usize;
            &self.leaf_values[r * c..(r + 1) * c]
        })
    }
    /// Depth of the deepest leaf (a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.n_nodes()];
        let mut max = 0;
        // Children always have larger indices than their parent.
        for n in 0..self.n_nodes() {
            max = max.max(depth[n]);
            if let Some((l, r)) = self.children(n) {
                depth[l] = depth[n] + 1;
                depth[r] = depth[n] + 1;
            }
        }
        max
    }
    /// The leaf that row `x` reaches.
    pub fn leaf_of(&self, x: &[f32]) -> usize {
        let mut n = 0usize;
        while let Some((l, r)) = self.children(n) {
            let v = x[self.feature[n] as usize];
            n = if v <= self.threshold[n] { l } else { r };
        }
        n
    }
}

/// Training data shared by all trees.
pub(crate) struct TrainData<'a> {
    /// Row-major bins, `binned[i * n_features + f]`.
    pub binned: &'a [u8],
    pub n_rows: usize,
    pub n_features: usize,
    pub y: &'a [u32],
    pub n_classes: usize,
    /// Per-row base weight (class weight × sample weight).
    pub row_weight: &'a [f32],
    pub edges: &'a [Vec<f32>],
    /// Raw row-major features, to place each threshold between the node's own values.
    pub x: &'a [f32],
}

/// Nodes with at most this many distinct rows sort their bins instead of filling a histogram
/// (a 255-bin scan would dominate the deep, small nodes of fully grown trees).
const SMALL_NODE: usize = 48;

fn gini(counts: &[f64], total: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    1.0 - counts
        .iter()
        .map(|c| (c / total) * (c / total))
        .sum::<f64>()
}

/// Rows ahead whose bins are prefetched while gathering (deep nodes hold scattered rows, so
/// every row is a cache miss; prefetching overlaps them).
const PREFETCH_AHEAD: usize = 16;

/// Hint the CPU to load the cache lines of `bytes` (no effect on results).
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults; both pointers are inside `bytes`.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr() as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(bytes.len() - 1) as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// One in-bag row: its index, class and weight travel together through the partitions.
#[derive(Debug, Clone, Copy)]
struct Entry {
    row: u32,
    class: u32,
    w: f32,
}

struct Task {
    node: u32,
    start: usize,
    end: usize,
    depth: usize,
}

/// Best split found so far in a node.
struct Best {
    feature: usize,
    bin: u8,
    proxy: f64,
}

/// Per-node split search state.
struct Search<'a> {
    node_counts: &'a [f64],
    total: f64,
    n_node: usize,
    min_leaf: usize,
    best: Option<Best>,
    best_left: Vec<f64>,
}

impl Search<'_> {
    /// Consider the split "bin ≤ `bin`" with the given left-side class weights.
    #[inline]
    fn consider(&mut self, feature: usize, bin: u8, left: &[f64], w_left: f64, n_left: usize) {
        if n_left < self.min_leaf || self.n_node - n_left < self.min_leaf {
            return;
        }
        let w_right = self.total - w_left;
        if w_left <= 0.0 || w_right <= 0.0 {
            return;
        }
        let mut sq_l = 0f64;
        let mut sq_r = 0f64;
        for (l, pc) in left.iter().zip(self.node_counts) {
            sq_l += l * l;
            sq_r += (pc - l) * (pc - l);
        }
        // Maximising this proxy minimises W_L·gini_L + W_R·gini_R.
        let proxy = sq_l / w_left + sq_r / w_right;
        if self.best.as_ref().is_none_or(|b| proxy > b.proxy) {
            self.best = Some(Best {
                feature,
                bin,
                proxy,
            });
            self.best_left.copy_from_slice(left);
        }
    }
}

/// Grow tree `tree_index`; returns the tree and its unnormalised MDI (Σ weighted impurity decrease
/// per feature).
pub(crate) fn build_tree(
    d: &TrainData<'_>,
    p: &RandomForestValidParams,
    tree_index: u64,
) -> (Tree, Vec<f64>) {
    let n = d.n_rows;
    let nf = d.n_features;
    let c = d.n_classes;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    rng.set_stream(tree_index);

    // In-bag rows in ascending order, with bootstrap multiplicity folded into the weight.
    let mut entries: Vec<Entry> = Vec::with_capacity(n);
    let mut push = |i: usize, k: u32| {
        let rw = d.row_weight[i];
        if k > 0 && rw > 0.0 {
            entries.push(Entry {
                row: i as u32,
                class: d.y[i],
                w: k as f32 * rw,
            });
        }
    };
    if p.bootstrap {
        let mut counts = vec![0u32; n];
        for _ in 0..n {
            counts[rng.gen_range(0..n)] += 1;
        }
        for (i, &k) in counts.iter().enumerate() {
            push(i, k);
        }
    } else {
        for i in 0..n {
            push(i, 1);
        }
    }

    let mtry = p.max_features.resolve(nf);
    let mut feats: Vec<usize> = (0..nf).collect();
    let mut hist = vec![0f64; 256 * c];
    let mut hcount = [0u32; 256];
    let mut cand: Vec<usize> = Vec::with_capacity(mtry);
    // Bins of one batch of candidate features for the node's rows, feature-major.
    let mut gather = vec![0u8; mtry * entries.len()];
    let mut small: Vec<(u8, u32, f32)> = Vec::with_capacity(SMALL_NODE);
    let mut scratch: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut node_counts = vec![0f64; c];
    let mut left = vec![0f64; c];
    let mut importance = vec![0f64; nf];
    let mut best_left = vec![0f64; c];

    let mut tree = Tree {
        feature: vec![LEAF_FEATURE],
        threshold: vec![0.0],
        child_or_leaf: vec![0],
        cover: vec![0.0],
        n_classes: c as u32,
        leaf_values: Vec::new(),
    };
    let mut stack = vec![Task {
        node: 0,
        start: 0,
        end: entries.len(),
        depth: 0,
    }];

    while let Some(t) = stack.pop() {
        let node = &mut entries[t.start..t.end];
        let n_node = node.len();
        node_counts.iter_mut().for_each(|v| *v = 0.0);
        for e in node.iter() {
            node_counts[e.class as usize] += e.w as f64;
        }
        let total: f64 = node_counts.iter().sum();
        tree.cover[t.node as usize] = total;
        let classes_present = node_counts.iter().filter(|&&v| v > 0.0).count();

        let mut search = Search {
            node_counts: &node_counts,
            total,
            n_node,
            min_leaf: p.min_samples_leaf,
            best: None,
            best_left: std::mem::take(&mut best_left),
        };
        let splittable = n_node >= p.min_samples_split
            && n_node >= 2 * p.min_samples_leaf
            && p.max_depth.is_none_or(|m| t.depth < m)
            && classes_present > 1;
        if splittable && n_node <= SMALL_NODE {
            // Draw features without replacement until `mtry` non-constant ones were evaluated
            // (constant features do not count, as in scikit-learn). Few rows: sort their bins.
            let mut visited = 0usize;
            let mut j = 0usize;
            while j < nf && visited < mtry {
                let k = rng.gen_range(j..nf);
                feats.swap(j, k);
                let f = feats[j];
                j += 1;
                small.clear();
                if visited == 0 {
                    // First feature of the node: its rows are not in cache yet.
                    for (i, e) in node.iter().enumerate() {
                        if let Some(ahead) = node.get(i + PREFETCH_AHEAD) {
                            let r = ahead.row as usize;
                            prefetch(&d.binned[r * nf..(r + 1) * nf]);
                        }
                        small.push((d.binned[e.row as usize * nf + f], e.class, e.w));
                    }
                } else {
                    small.extend(
                        node.iter()
                            .map(|e| (d.binned[e.row as usize * nf + f], e.class, e.w)),
                    );
                }
                small.sort_unstable_by_key(|s| s.0);
                if small[0].0 == small[n_node - 1].0 {
                    continue;
                }
                visited += 1;
                left.iter_mut().for_each(|v| *v = 0.0);
                let (mut w_left, mut n_left) = (0f64, 0usize);
                for i in 0..n_node {
                    let (b, cl, w) = small[i];
                    left[cl as usize] += w as f64;
                    w_left += w as f64;
                    n_left += 1;
                    if i + 1 < n_node && small[i + 1].0 != b {
                        search.consider(f, b, &left, w_left, n_left);
                    }
                }
            }
        } else if splittable {
            // Same drawing rule, but the missing features are drawn as a batch whose bins are
            // gathered in one pass over the rows (each scattered row is fetched from memory once,
            // not once per feature); each feature's histogram then reads a dense column.
            let mut visited = 0usize;
            let mut j = 0usize;
            while j < nf && visited < mtry {
                cand.clear();
                while cand.len() < mtry - visited && j < nf {
                    let k = rng.gen_range(j..nf);
                    feats.swap(j, k);
                    cand.push(feats[j]);
                    j += 1;
                }
                let nb = cand.len();
                let gathered = &mut gather[..nb * n_node];
                for (i, e) in node.iter().enumerate() {
                    if let Some(ahead) = node.get(i + PREFETCH_AHEAD) {
                        let r = ahead.row as usize;
                        prefetch(&d.binned[r * nf..(r + 1) * nf]);
                    }
                    let row = &d.binned[e.row as usize * nf..(e.row as usize + 1) * nf];
                    for (ci, &f) in cand.iter().enumerate() {
                        gathered[ci * n_node + i] = row[f];
                    }
                }
                for (ci, &f) in cand.iter().enumerate() {
                    let bins = &gathered[ci * n_node..(ci + 1) * n_node];
                    let (mut l0, mut h0) = (255usize, 0usize);
                    for (e, &b) in node.iter().zip(bins) {
                        let b = b as usize;
                        hist[b * c + e.class as usize] += e.w as f64;
                        hcount[b] += 1;
                        l0 = l0.min(b);
                        h0 = h0.max(b);
                    }
                    if l0 == h0 {
                        hist[l0 * c..(l0 + 1) * c].iter_mut().for_each(|v| *v = 0.0);
                        hcount[l0] = 0;
                        continue;
                    }
                    visited += 1;
                    left.iter_mut().for_each(|v| *v = 0.0);
                    let (mut w_left, mut n_left) = (0f64, 0usize);
                    for b in l0..=h0 {
                        if hcount[b] == 0 {
                            continue;
                        }
                        for (l, v) in left.iter_mut().zip(&mut hist[b * c..(b + 1) * c]) {
                            *l += *v;
                            w_left += *v;
                            *v = 0.0;
                        }
                        n_left += hcount[b] as usize;
                        hcount[b] = 0;
                        if b < h0 {
                            search.consider(f, b as u8, &left, w_left, n_left);
                        }
                    }
                }
            }
        }
        let best = search.best.take();
        best_left = search.best_left;

        match best {
            None => {
                let leaf = (tree.leaf_values.len() / c) as u32;
                tree.leaf_values
                    .extend(node_counts.iter().map(|&v| (v / total) as f32));
                tree.child_or_leaf[t.node as usize] = leaf;
            }
            Some(b) => {
                let f = b.feature;
                // Stable partition keeps rows ascending in both children.
                scratch.clear();
                let mut k = 0usize;
                for i in 0..n_node {
                    if let Some(ahead) = node.get(i + PREFETCH_AHEAD) {
                        let r = ahead.row as usize;
                        prefetch(&d.binned[r * nf..(r + 1) * nf]);
                    }
                    let e = node[i];
                    if d.binned[e.row as usize * nf + f] <= b.bin {
                        node[k] = e;
                        k += 1;
                    } else {
                        scratch.push(e);
                    }
                }
                node[k..].copy_from_slice(&scratch);
                let w_left: f64 = best_left.iter().sum();
                let w_right = total - w_left;
                let right: Vec<f64> = node_counts
                    .iter()
                    .zip(best_left.iter())
                    .map(|(a, l)| a - l)
                    .collect();
                importance[f] += total * gini(&node_counts, total)
                    - w_left * gini(&best_left, w_left)
                    - w_right * gini(&right, w_right);

                // Threshold halfway between the largest left and smallest right value of this
                // node (scikit-learn's exact-splitter choice); the bin edge if the right side
                // only holds NaN. Either way it routes the node's rows like the bin split.
                let raw = |e: &Entry| d.x[e.row as usize * nf + f];
                let max_left = node[..k].iter().map(raw).fold(f32::NEG_INFINITY, f32::max);
                let min_right = node[k..]
                    .iter()
                    .map(raw)
                    .filter(|v| !v.is_nan())
                    .fold(f32::INFINITY, f32::min);
                let threshold = if max_left < min_right && min_right.is_finite() {
                    midpoint(max_left, min_right)
                } else {
                    d.edges[f][b.bin as usize]
                };
                let left_id = tree.feature.len() as u32;
                let id = t.node as usize;
                tree.feature[id] = f as u32;
                tree.threshold[id] = threshold;
                tree.child_or_leaf[id] = left_id;
                for _ in 0..2 {
                    tree.feature.push(LEAF_FEATURE);
                    tree.threshold.push(0.0);
                    tree.child_or_leaf.push(0);
                    tree.cover.push(0.0);
                }
                stack.push(Task {
                    node: left_id + 1,
                    start: t.start + k,
                    end: t.end,
                    depth: t.depth + 1,
                });
                stack.push(Task {
                    node: left_id,
                    start: t.start,
                    end: t.start + k,
                    depth: t.depth + 1,
                });
            }
        }
    }
    (tree, importance)
}
