//! Exact path-dependent TreeSHAP (Lundberg et al. 2020, Algorithm 2): the recursive
//! EXTEND/UNWIND algorithm of shap's C++ `tree_shap_recursive`, over a [`TreeEnsemble`].
//!
//! Equal to `shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")` for the same
//! trees: node values as given (for a forest: class probabilities), cover as the node weights,
//! base value = `scale · Σ_trees value(root)`.
use ndarray::{Array2, Array3, ArrayView2};
use rayon::prelude::*;

use crate::error::{Result, ShapError};
use crate::tree_arrays::{TreeArrays, TreeEnsemble};
use crate::Explanation;
#[cfg(test)]
#[derive(Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// One node packed into 32 bytes, so the recursion touches one cache line per node.
#[derive(Clone, Copy, Default)]
struct Node {
    left: i32,
    right: i32,
    feature: u32,
    threshold: f32,
    cover: f64,
    /// Leaves: range of this leaf's non-zero outputs in `PreparedTree::leaf_values`.
    leaf_start: u32,
    leaf_len: u32,
}

/// One tree, checked and laid out for the recursion.
struct PreparedTree {
    nodes: Vec<Node>,
    /// Indices of the split nodes (bit b of a decision pattern is `internal[b]`).
    internal: Vec<u32>,
    n_internal: usize,
    /// Features some split uses (the only rows of phi a tree can change), ascending.
    used_features: Vec<u32>,
    /// Non-zero `(output, value)` pairs of all leaves (pure leaves have one), so the leaf update
    /// skips the zeros shap multiplies through.
    leaf_values: Vec<(u32, f64)>,
    /// `[nodes * outputs]`.
    values: Vec<f64>,
    max_depth: usize,
}

fn prepare(t: &TreeArrays, tree: usize, outputs: usize) -> Result<PreparedTree> {
    let n = t.children_left.len();
    let bad = |msg: String| ShapError::BadTree { tree, msg };
    if n == 0 {
        return Err(bad("no nodes".into()));
    }
    if t.children_right.len() != n
        || t.feature.len() != n
        || t.threshold.len() != n
        || t.cover.len() != n
        || t.value.nrows() != n
    {
        return Err(bad(format!(
            "node arrays differ in length (left {n}, right {}, feature {}, threshold {}, cover {}, value rows {})",
            t.children_right.len(),
            t.feature.len(),
            t.threshold.len(),
            t.cover.len(),
            t.value.nrows()
        )));
    }
    if t.value.ncols() != outputs {
        return Err(bad(format!(
            "{} outputs, the first tree has {outputs}",
            t.value.ncols()
        )));
    }
    for i in 0..n {
        let (l, r) = (t.children_left[i], t.children_right[i]);
        if (l < 0) != (r < 0) {
            return Err(bad(format!("node {i} has exactly one child")));
        }
        if r >= 0 {
            if l as usize >= n || r as usize >= n || l as usize <= i || r as usize <= i {
                return Err(bad(format!(
                    "node {i} has children ({l}, {r}) out of range or not after it"
                )));
            }
            if t.cover[i].is_nan() || t.cover[i] <= 0.0 {
                return Err(bad(format!("internal node {i} has cover {}", t.cover[i])));
            }
        }
    }
    // Depth by a forward pass (children come after parents in scikit-learn's layout).
    let mut depth = vec![0usize; n];
    let mut max_depth = 0;
    for i in 0..n {
        if t.children_right[i] >= 0 {
            for c in [t.children_left[i], t.children_right[i]] {
                depth[c as usize] = depth[i] + 1;
                max_depth = max_depth.max(depth[i] + 1);
            }
        }
    }
    let values: Vec<f64> = t.value.iter().copied().collect();
    let mut leaf_values = Vec::new();
    let nodes = (0..n)
        .map(|i| {
            let leaf_start = leaf_values.len() as u32;
            if t.children_right[i] < 0 {
                leaf_values.extend(
                    (0..outputs)
                        .filter(|&k| values[i * outputs + k] != 0.0)
                        .map(|k| (k as u32, values[i * outputs + k])),
                );
            }
            Node {
                left: t.children_left[i],
                right: t.children_right[i],
                feature: t.feature[i],
                threshold: t.threshold[i],
                cover: t.cover[i],
                leaf_start,
                leaf_len: leaf_values.len() as u32 - leaf_start,
            }
        })
        .collect();
    let internal: Vec<u32> = (0..n as u32)
        .filter(|&i| t.children_right[i as usize] >= 0)
        .collect();
    let mut used_features: Vec<u32> = internal.iter().map(|&i| t.feature[i as usize]).collect();
    used_features.sort_unstable();
    used_features.dedup();
    Ok(PreparedTree {
        n_internal: internal.len(),
        internal,
        used_features,
        nodes,
        leaf_values,
        values,
        max_depth,
    })
}

/// Decision patterns explained side by side: one f64 lane each (16 lanes = two AVX-512
/// registers, which hides the latency of the leaf recurrence better than one).
const LANES: usize = 16;
type Lanes = [f64; LANES];
/// Path elements whose leaf recurrences run interleaved (see [`lane_leaf`]).
const HOT_GROUP: usize = 2;

/// The unique paths of every recursion level, structure of arrays. A path's features and zero
/// fractions do not depend on the flow (they follow the tree), so they are shared by the lanes;
/// one fractions (0 or 1: did this lane's flow take every split on this feature so far?) and
/// the permutation weights are per lane.
struct LaneArena {
    feature: Vec<i64>,
    zero: Vec<f64>,
    one: Vec<Lanes>,
    pweight: Vec<Lanes>,
}

impl LaneArena {
    fn new(len: usize) -> Self {
        Self {
            feature: vec![0; len],
            zero: vec![0.0; len],
            one: vec![[0.0; LANES]; len],
            pweight: vec![[0.0; LANES]; len],
        }
    }
}

/// One pending node of the depth-first walk (an explicit stack replaces shap's recursion).
#[derive(Clone, Copy)]
struct Frame {
    node: u32,
    /// Where the parent's path starts in the arena.
    parent_offset: u32,
    unique_depth: u32,
    feature: i64,
    zero: f64,
    one: Lanes,
}

/// EXTEND (Algorithm 2) on every lane: adds a (zero, one) fraction pair for `feature` at
/// position `ud` of the path starting at `off`. The division by `ud + 1` is a multiplication
/// by its reciprocal.
#[inline(always)]
fn lane_extend(
    a: &mut LaneArena,
    off: usize,
    ud: usize,
    zero: f64,
    one: &Lanes,
    feature: i64,
    recip: &[f64],
) {
    a.feature[off + ud] = feature;
    a.zero[off + ud] = zero;
    a.one[off + ud] = *one;
    a.pweight[off + ud] = [if ud == 0 { 1.0 } else { 0.0 }; LANES];
    let inv = recip[ud + 1];
    let zero_s = zero * inv;
    let one_s: Lanes = std::array::from_fn(|l| one[l] * inv);
    let pw = &mut a.pweight[off..off + ud + 1];
    for i in (0..ud).rev() {
        let p = pw[i];
        let c1 = (i + 1) as f64;
        let c0 = (ud - i) as f64;
        let (lo, hi) = pw.split_at_mut(i + 1);
        let (below, above) = (&mut lo[i], &mut hi[0]);
        for l in 0..LANES {
            above[l] += one_s[l] * p[l] * c1;
            below[l] = zero_s * p[l] * c0;
        }
    }
}

/// UNWIND (Algorithm 2) on every lane: removes path element `path_index`. Lanes whose one
/// fraction is 0 and lanes where it is 1 take shap's two branches; both are computed and the
/// lane's own is kept, so each lane's arithmetic is exactly its scalar recursion's.
#[inline(always)]
fn lane_unwind(a: &mut LaneArena, off: usize, ud: usize, path_index: usize) {
    let one = a.one[off + path_index];
    let zero = a.zero[off + path_index];
    let mut nop = a.pweight[off + ud];
    let ud1 = (ud + 1) as f64;
    for i in (0..ud).rev() {
        let c1 = (i + 1) as f64;
        let c0 = (ud - i) as f64;
        let p = &mut a.pweight[off + i];
        for l in 0..LANES {
            let tmp = p[l];
            let hot = nop[l] * ud1 / (c1 * one[l]);
            let cold = tmp * ud1 / (zero * c0);
            let hot_nop = tmp - hot * zero * c0 / ud1;
            let is_hot = one[l] != 0.0;
            p[l] = if is_hot { hot } else { cold };
            nop[l] = if is_hot { hot_nop } else { nop[l] };
        }
    }
    for i in off + path_index..off + ud {
        a.feature[i] = a.feature[i + 1];
        a.zero[i] = a.zero[i + 1];
        a.one[i] = a.one[i + 1];
    }
}

/// The leaf step of Algorithm 2 on every lane: for each path element, UNWOUND-SUM weight times
/// (one − zero) times the leaf value, added to `contrib[(feature · outputs + output)]`.
/// One fractions are 0 or 1 on a path-dependent walk, which gives two forms with shap's value
/// up to rounding:
/// - `one = 0`: the sum is `S0 / zero` with `S0 = Σ_i pweight_i / (d − i)` shared by all such
///   elements, so the scale `w · (0 − zero)` is `−(d + 1) · S0`;
/// - `one = 1`: shap's recurrence (skipped for an element that is 0 on every lane).
#[inline(always)]
fn lane_leaf(
    a: &LaneArena,
    off: usize,
    ud: usize,
    nz: &[(u32, f64)],
    outputs: usize,
    recip: &[f64],
    contrib: &mut [Lanes],
) {
    let ud1 = (ud + 1) as f64;
    let pw = &a.pweight[off..off + ud + 1];
    let mut s0 = [0.0; LANES];
    for i in (0..ud).rev() {
        let r = recip[ud - i];
        for l in 0..LANES {
            s0[l] += pw[i][l] * r;
        }
    }
    let cold_scale: Lanes = std::array::from_fn(|l| -ud1 * s0[l]);
    let add = |contrib: &mut [Lanes], e: usize, scale: &Lanes| {
        let base = a.feature[off + e] as usize * outputs;
        for &(c, v) in nz {
            let dst = &mut contrib[base + c as usize];
            for l in 0..LANES {
                dst[l] += scale[l] * v;
            }
        }
    };
    // The recurrence is a chain of dependent multiply-adds per element: run up to HOT_GROUP
    // elements side by side so their chains overlap.
    let mut group = [0usize; HOT_GROUP];
    let mut n_group = 0;
    for e in 1..=ud {
        if a.one[off + e].iter().any(|&o| o != 0.0) {
            group[n_group] = e;
            n_group += 1;
        } else {
            add(contrib, e, &cold_scale);
        }
        if n_group == HOT_GROUP || (e == ud && n_group > 0) {
            let mut done = 0;
            while done < n_group {
                let rest = &group[done..n_group];
                done += if rest.len() >= HOT_GROUP {
                    hot_scales::<HOT_GROUP>(a, off, ud, pw, recip, &cold_scale, rest, contrib, &add)
                } else {
                    hot_scales::<1>(a, off, ud, pw, recip, &cold_scale, rest, contrib, &add)
                };
            }
            n_group = 0;
        }
    }
}

/// The `one = 1` scales of the first `G` elements of `elements` (shap's UNWOUND-SUM
/// recurrence, `G` chains interleaved), passed to `add`; returns `G`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn hot_scales<const G: usize>(
    a: &LaneArena,
    off: usize,
    ud: usize,
    pw: &[Lanes],
    recip: &[f64],
    cold_scale: &Lanes,
    elements: &[usize],
    contrib: &mut [Lanes],
    add: &impl Fn(&mut [Lanes], usize, &Lanes),
) -> usize {
    let ud1 = (ud + 1) as f64;
    let zs: [f64; G] = std::array::from_fn(|g| a.zero[off + elements[g]]);
    let mut nop = [pw[ud]; G];
    let mut total = [[0.0; LANES]; G];
    for i in (0..ud).rev() {
        let inv = recip[i + 1];
        let c = (ud - i) as f64;
        let p = pw[i];
        // shap's `p − (nop / (i + 1)) · zero · (d − i)` with the scalar factors multiplied
        // first: a shorter dependent chain, the same value up to rounding.
        let coef: [f64; G] = std::array::from_fn(|g| inv * zs[g] * c);
        for g in 0..G {
            for l in 0..LANES {
                total[g][l] += nop[g][l] * inv;
                nop[g][l] = p[l] - nop[g][l] * coef[g];
            }
        }
    }
    for g in 0..G {
        let one = a.one[off + elements[g]];
        let scale: Lanes = std::array::from_fn(|l| {
            if one[l] != 0.0 {
                total[g][l] * ud1 * (1.0 - zs[g])
            } else {
                cold_scale[l]
            }
        });
        add(contrib, elements[g], &scale);
    }
    G
}

/// Path-dependent TreeSHAP of one tree for up to [`LANES`] flows at once (lane `l` explains
/// the flow whose split decisions are bit `l` of `go_left[node]`), added to `contrib`.
/// Children are always visited left then right, so a lane's result does not depend on the
/// other lanes.
#[inline(always)]
fn lane_tree_body(
    t: &PreparedTree,
    go_left: &[u16],
    outputs: usize,
    recip: &[f64],
    arena: &mut LaneArena,
    stack: &mut Vec<Frame>,
    contrib: &mut [Lanes],
) {
    stack.clear();
    // shap starts at node 0 with unique_depth 0 and the (empty) parent path at slot 0.
    stack.push(Frame {
        node: 0,
        parent_offset: 0,
        unique_depth: 0,
        feature: -1,
        zero: 1.0,
        one: [1.0; LANES],
    });
    while let Some(f) = stack.pop() {
        let ud = f.unique_depth as usize;
        let parent = f.parent_offset as usize;
        let off = parent + ud + 1;
        arena.feature.copy_within(parent..parent + ud, off);
        arena.zero.copy_within(parent..parent + ud, off);
        arena.one.copy_within(parent..parent + ud, off);
        arena.pweight.copy_within(parent..parent + ud, off);
        lane_extend(arena, off, ud, f.zero, &f.one, f.feature, recip);
        let nd = t.nodes[f.node as usize];
        if nd.right < 0 {
            if nd.leaf_len != 0 && ud != 0 {
                let nz =
                    &t.leaf_values[nd.leaf_start as usize..(nd.leaf_start + nd.leaf_len) as usize];
                lane_leaf(arena, off, ud, nz, outputs, recip, contrib);
            }
            continue;
        }
        let split = nd.feature as i64;
        let (l, r) = (nd.left as usize, nd.right as usize);
        let w = nd.cover;
        let mut incoming_zero = 1.0;
        let mut incoming_one = [1.0; LANES];
        let mut ud = ud;
        if let Some(pi) = arena.feature[off..=off + ud]
            .iter()
            .position(|&ft| ft == split)
        {
            incoming_zero = arena.zero[off + pi];
            incoming_one = arena.one[off + pi];
            lane_unwind(arena, off, ud, pi);
            ud -= 1;
        }
        let mask = go_left[f.node as usize];
        let left_one: Lanes = std::array::from_fn(|i| {
            if mask >> i & 1 != 0 {
                incoming_one[i]
            } else {
                0.0
            }
        });
        let right_one: Lanes = std::array::from_fn(|i| {
            if mask >> i & 1 != 0 {
                0.0
            } else {
                incoming_one[i]
            }
        });
        for (child, one) in [(r, right_one), (l, left_one)] {
            stack.push(Frame {
                node: child as u32,
                parent_offset: off as u32,
                unique_depth: (ud + 1) as u32,
                feature: split,
                zero: t.nodes[child].cover / w * incoming_zero,
                one,
            });
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn lane_tree_avx512(
    t: &PreparedTree,
    go_left: &[u16],
    outputs: usize,
    recip: &[f64],
    arena: &mut LaneArena,
    stack: &mut Vec<Frame>,
    contrib: &mut [Lanes],
) {
    lane_tree_body(t, go_left, outputs, recip, arena, stack, contrib)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lane_tree_avx2(
    t: &PreparedTree,
    go_left: &[u16],
    outputs: usize,
    recip: &[f64],
    arena: &mut LaneArena,
    stack: &mut Vec<Frame>,
    contrib: &mut [Lanes],
) {
    lane_tree_body(t, go_left, outputs, recip, arena, stack, contrib)
}

/// [`lane_tree_body`] compiled for the widest vector unit the CPU has (no FMA contraction is
/// enabled, so every variant rounds identically and the result does not depend on the CPU).
fn lane_tree(
    t: &PreparedTree,
    go_left: &[u16],
    outputs: usize,
    recip: &[f64],
    arena: &mut LaneArena,
    stack: &mut Vec<Frame>,
    contrib: &mut [Lanes],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { lane_tree_avx512(t, go_left, outputs, recip, arena, stack, contrib) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { lane_tree_avx2(t, go_left, outputs, recip, arena, stack, contrib) };
        }
    }
    lane_tree_body(t, go_left, outputs, recip, arena, stack, contrib)
}

/// EXTEND: adds a (zero, one) fraction pair for `feature` at position `unique_depth`.
/// Divisions by `unique_depth + 1` are multiplications by a reciprocal (rounding-level change).
/// The scalar reference for [`lane_extend`].
#[cfg(test)]
fn extend_path(path: &mut [PathElement], unique_depth: usize, zero: f64, one: f64, feature: i64) {
    path[unique_depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if unique_depth == 0 { 1.0 } else { 0.0 },
    };
    let inv_ud1 = 1.0 / (unique_depth + 1) as f64;
    let one_s = one * inv_ud1;
    let zero_s = zero * inv_ud1;
    for i in (0..unique_depth).rev() {
        let pw = path[i].pweight;
        path[i + 1].pweight += one_s * pw * (i + 1) as f64;
        path[i].pweight = zero_s * pw * (unique_depth - i) as f64;
    }
}

#[cfg(test)]
fn unwind_path(path: &mut [PathElement], unique_depth: usize, path_index: usize) {
    let one = path[path_index].one_fraction;
    let zero = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].pweight;
    let ud1 = (unique_depth + 1) as f64;
    for i in (0..unique_depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * ud1 / ((i + 1) as f64 * one);
            next_one_portion = tmp - path[i].pweight * zero * (unique_depth - i) as f64 / ud1;
        } else {
            path[i].pweight = path[i].pweight * ud1 / (zero * (unique_depth - i) as f64);
        }
    }
    for i in path_index..unique_depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

#[cfg(test)]
fn unwound_path_sum(path: &[PathElement], unique_depth: usize, path_index: usize) -> f64 {
    let one = path[path_index].one_fraction;
    let zero = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].pweight;
    let mut total = 0.0;
    if one != 0.0 {
        for i in (0..unique_depth).rev() {
            let tmp = next_one_portion / ((i + 1) as f64 * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * (unique_depth - i) as f64;
        }
    } else {
        for i in (0..unique_depth).rev() {
            total += path[i].pweight / (zero * (unique_depth - i) as f64);
        }
    }
    total * (unique_depth + 1) as f64
}

/// Exact TreeSHAP over an additive tree ensemble.
///
/// ```
/// use ndarray::array;
/// use shap::{TreeArrays, TreeEnsemble, TreeExplainer};
///
/// // One stump on feature 0: left leaf predicts class 0, right leaf class 1; 3:1 cover.
/// let stump = TreeArrays {
///     children_left: vec![1, -1, -1],
///     children_right: vec![2, -1, -1],
///     feature: vec![0, 0, 0],
///     threshold: vec![0.5, 0.0, 0.0],
///     value: array![[0.75, 0.25], [1.0, 0.0], [0.0, 1.0]],
///     cover: vec![4.0, 3.0, 1.0],
/// };
/// let forest = TreeEnsemble { trees: vec![stump], scale: 1.0 };
/// let explainer = TreeExplainer::new(&forest).unwrap();
/// let ex = explainer.explain(array![[1.0f32, 7.0]].view()).unwrap();
/// assert_eq!(ex.base_values, vec![0.75, 0.25]);
/// assert!((ex.values[[0, 0, 1]] - 0.75).abs() < 1e-12); // feature 0 moves class 1 from 0.25 to 1
/// assert_eq!(ex.values[[0, 1, 1]], 0.0); // feature 1 is never used
/// assert!(ex.additivity_error()[0] < 1e-12);
/// ```
pub struct TreeExplainer {
    trees: Vec<PreparedTree>,
    scale: f64,
    outputs: usize,
    max_feature: usize,
    feature_names: Option<Vec<String>>,
    class_names: Option<Vec<String>>,
}

impl TreeExplainer {
    /// Checks and prepares the ensemble.
    pub fn new(ensemble: &TreeEnsemble) -> Result<Self> {
        let first = ensemble.trees.first().ok_or(ShapError::BadTree {
            tree: 0,
            msg: "the ensemble has no trees".into(),
        })?;
        let outputs = first.value.ncols();
        if outputs == 0 {
            return Err(ShapError::BadTree {
                tree: 0,
                msg: "zero outputs".into(),
            });
        }
        if !ensemble.scale.is_finite() {
            return Err(ShapError::InvalidParam(format!(
                "ensemble scale {} is not finite",
                ensemble.scale
            )));
        }
        let trees = ensemble
            .trees
            .iter()
            .enumerate()
            .map(|(i, t)| prepare(t, i, outputs))
            .collect::<Result<Vec<_>>>()?;
        let max_feature = trees
            .iter()
            .flat_map(|t| {
                t.nodes
                    .iter()
                    .filter(|nd| nd.right >= 0)
                    .map(|nd| nd.feature as usize + 1)
            })
            .max()
            .unwrap_or(0);
        Ok(Self {
            trees,
            scale: ensemble.scale,
            outputs,
            max_feature,
            feature_names: None,
            class_names: None,
        })
    }

    /// Names the features and outputs in the produced [`Explanation`]s.
    pub fn with_names(
        mut self,
        feature_names: Vec<String>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        if class_names.len() != self.outputs {
            return Err(ShapError::NameCount {
                what: "class_names",
                got: class_names.len(),
                expected: self.outputs,
            });
        }
        self.feature_names = Some(feature_names);
        self.class_names = Some(class_names);
        Ok(self)
    }

    /// `scale · Σ_trees value(root)` per output (shap's `expected_value`).
    pub fn expected_value(&self) -> Vec<f64> {
        let mut base = vec![0.0; self.outputs];
        for t in &self.trees {
            for (k, b) in base.iter_mut().enumerate() {
                *b += t.values[k];
            }
        }
        base.iter().map(|b| b * self.scale).collect()
    }

    /// The ensemble's prediction for one row: `scale · Σ_trees value(leaf(x))`.
    fn predict_row(&self, x: &[f32], out: &mut [f64]) {
        for t in &self.trees {
            let mut node = 0usize;
            while t.nodes[node].right >= 0 {
                let nd = t.nodes[node];
                let xv = x[nd.feature as usize];
                node = if !xv.is_nan() && xv <= nd.threshold {
                    nd.left as usize
                } else {
                    nd.right as usize
                };
            }
            for (k, o) in out.iter_mut().enumerate() {
                *o += t.values[node * self.outputs + k];
            }
        }
        for o in out.iter_mut() {
            *o *= self.scale;
        }
    }

    /// SHAP values of every row of `x` (flows in parallel; the result does not depend on the
    /// thread count: each flow is summed over trees in order).
    pub fn explain(&self, x: ArrayView2<'_, f32>) -> Result<Explanation> {
        let (n, p) = x.dim();
        if p < self.max_feature {
            return Err(ShapError::FeatureCount {
                what: "explained data",
                got: p,
                expected: self.max_feature,
            });
        }
        if let Some(names) = &self.feature_names {
            if names.len() != p {
                return Err(ShapError::NameCount {
                    what: "feature_names",
                    got: names.len(),
                    expected: p,
                });
            }
        }
        let k = self.outputs;
        let max_depth = self.trees.iter().map(|t| t.max_depth).max().unwrap_or(0);
        let maxd = max_depth + 2;
        let recip: Vec<f64> = (0..=maxd + 1)
            .map(|i| if i == 0 { 0.0 } else { 1.0 / i as f64 })
            .collect();
        // Chunks of flows in parallel; within a chunk trees are the outer loop so a tree stays
        // in cache while it explains every flow of the chunk. Each flow still sums its trees in
        // order, so the result does not depend on chunking or threads.
        //
        // Within a chunk, flows that take the same branch at every split node of a tree get the
        // same contribution from it (the recursion reads x only through `x <= threshold`), so
        // each distinct decision pattern is explained once and its contribution added to every
        // flow that has it. Patterns are explained [`LANES`] at a time, one per SIMD lane; a
        // lane's arithmetic does not depend on the other lanes, and a tree's contribution is
        // always computed on its own and then added, so values do not depend on how flows are
        // grouped.
        let threads = rayon::current_num_threads().max(1);
        let chunk = n.div_ceil(threads).clamp(16, 4096);
        let starts: Vec<usize> = (0..n).step_by(chunk).collect();
        let max_nodes = self.trees.iter().map(|t| t.nodes.len()).max().unwrap_or(0);
        let per_flow: Vec<(Vec<f64>, Vec<f64>)> = starts
            .into_par_iter()
            .flat_map_iter(|start| {
                let end = (start + chunk).min(n);
                let xs: Vec<Vec<f32>> = (start..end).map(|i| x.row(i).to_vec()).collect();
                let mut phis = vec![vec![0.0f64; p * k]; end - start];
                let mut arena = LaneArena::new(maxd * (maxd + 1) / 2 + maxd);
                let mut stack = Vec::with_capacity(2 * maxd + 2);
                let mut contrib = vec![[0.0f64; LANES]; p * k];
                let mut go_left = vec![0u16; max_nodes];
                let mut patterns: std::collections::HashMap<Vec<u64>, Vec<usize>> =
                    std::collections::HashMap::new();
                for t in &self.trees {
                    patterns.clear();
                    let words = t.n_internal.div_ceil(64);
                    for (f, xi) in xs.iter().enumerate() {
                        let mut key = vec![0u64; words];
                        for (b, &node) in t.internal.iter().enumerate() {
                            let nd = t.nodes[node as usize];
                            let xv = xi[nd.feature as usize];
                            if !xv.is_nan() && xv <= nd.threshold {
                                key[b / 64] |= 1 << (b % 64);
                            }
                        }
                        patterns.entry(key).or_default().push(f);
                    }
                    // Lanes holding flows that split alike near the root share more hot path
                    // elements, whose leaf recurrence runs once for all lanes: order patterns by
                    // their decisions from the root down (bit order = preorder node order).
                    let mut sorted: Vec<(&Vec<u64>, &Vec<usize>)> = patterns.iter().collect();
                    sorted.sort_unstable_by(|a, b| {
                        a.0.iter()
                            .map(|w| w.reverse_bits())
                            .cmp(b.0.iter().map(|w| w.reverse_bits()))
                    });
                    let groups: Vec<&Vec<usize>> = sorted.into_iter().map(|(_, f)| f).collect();
                    for group in groups.chunks(LANES) {
                        go_left[..t.nodes.len()].fill(0);
                        for (lane, flows) in group.iter().enumerate() {
                            let xi = &xs[flows[0]];
                            for &node in &t.internal {
                                let nd = t.nodes[node as usize];
                                let xv = xi[nd.feature as usize];
                                // scikit-learn routing: x <= threshold goes left; NaN goes right.
                                if !xv.is_nan() && xv <= nd.threshold {
                                    go_left[node as usize] |= 1 << lane;
                                }
                            }
                        }
                        for &j in &t.used_features {
                            contrib[j as usize * k..(j as usize + 1) * k].fill([0.0; LANES]);
                        }
                        lane_tree(
                            t,
                            &go_left[..t.nodes.len()],
                            k,
                            &recip,
                            &mut arena,
                            &mut stack,
                            &mut contrib,
                        );
                        for (lane, flows) in group.iter().enumerate() {
                            for &f in flows.iter() {
                                let phi = &mut phis[f];
                                for &j in &t.used_features {
                                    let r = j as usize * k..(j as usize + 1) * k;
                                    for (a, c) in phi[r.clone()].iter_mut().zip(&contrib[r]) {
                                        *a += c[lane];
                                    }
                                }
                            }
                        }
                    }
                }
                xs.into_iter()
                    .zip(phis)
                    .map(|(xi, mut phi)| {
                        for v in phi.iter_mut() {
                            *v *= self.scale;
                        }
                        let mut out = vec![0.0f64; k];
                        self.predict_row(&xi, &mut out);
                        (phi, out)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut values = Array3::<f64>::zeros((n, p, k));
        let mut model_output = Array2::<f64>::zeros((n, k));
        for (i, (phi, out)) in per_flow.iter().enumerate() {
            for j in 0..p {
                for c in 0..k {
                    values[[i, j, c]] = phi[j * k + c];
                }
            }
            for c in 0..k {
                model_output[[i, c]] = out[c];
            }
        }
        Ok(Explanation {
            values,
            base_values: self.expected_value(),
            data: x.to_owned(),
            model_output,
            feature_names: self
                .feature_names
                .clone()
                .unwrap_or_else(|| (0..p).map(|j| format!("f{j}")).collect()),
            class_names: self
                .class_names
                .clone()
                .unwrap_or_else(|| (0..k).map(|c| format!("c{c}")).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Builds the same random path (0/1 one fractions per lane) in the lane arena and, per lane,
    /// as shap's scalar path.
    fn random_paths(
        ud: usize,
        rnd: &mut impl FnMut() -> f64,
        recip: &[f64],
    ) -> (LaneArena, Vec<Vec<PathElement>>) {
        let mut arena = LaneArena::new(ud + 1);
        let mut scalar = vec![vec![PathElement::default(); ud + 1]; LANES];
        lane_extend(&mut arena, 0, 0, 1.0, &[1.0; LANES], -1, recip);
        for s in scalar.iter_mut() {
            extend_path(s, 0, 1.0, 1.0, -1);
        }
        for d in 1..=ud {
            let zero = 0.05 + 0.9 * rnd();
            // Every third element is cold on all lanes (the leaf step's shortcut for those).
            let one: Lanes =
                std::array::from_fn(|_| if d % 3 == 0 || rnd() < 0.5 { 0.0 } else { 1.0 });
            lane_extend(&mut arena, 0, d, zero, &one, d as i64 - 1, recip);
            for (l, s) in scalar.iter_mut().enumerate() {
                extend_path(s, d, zero, one[l], d as i64 - 1);
            }
        }
        (arena, scalar)
    }

    fn recip(n: usize) -> Vec<f64> {
        (0..n + 3)
            .map(|i| if i == 0 { 0.0 } else { 1.0 / i as f64 })
            .collect()
    }

    /// Every lane of the leaf step gives shap's UNWOUND-SUM scale for its own path.
    #[test]
    fn lane_leaf_equals_unwound_path_sum() {
        let mut rnd = rng(12345);
        for ud in 1..12 {
            let recip = recip(ud);
            let (arena, scalar) = random_paths(ud, &mut rnd, &recip);
            let mut contrib = vec![[0.0; LANES]; ud];
            lane_leaf(&arena, 0, ud, &[(0, 1.0)], 1, &recip, &mut contrib);
            for (l, path) in scalar.iter().enumerate() {
                for (i, el) in path.iter().enumerate().take(ud + 1).skip(1) {
                    let want = unwound_path_sum(path, ud, i) * (el.one_fraction - el.zero_fraction);
                    let got = contrib[el.feature as usize][l];
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "ud {ud} lane {l} i {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Lane EXTEND and UNWIND round exactly as shap's scalar ones, lane by lane.
    #[test]
    fn lane_extend_unwind_equal_scalar_bitwise() {
        let mut rnd = rng(777);
        for ud in 1..12 {
            let recip = recip(ud);
            let (mut arena, mut scalar) = random_paths(ud, &mut rnd, &recip);
            for (l, s) in scalar.iter().enumerate() {
                for i in 0..=ud {
                    assert_eq!(arena.pweight[i][l].to_bits(), s[i].pweight.to_bits());
                }
            }
            let pi = 1 + (rnd() * ud as f64) as usize % ud;
            lane_unwind(&mut arena, 0, ud, pi);
            for (l, s) in scalar.iter_mut().enumerate() {
                unwind_path(s, ud, pi);
                for i in 0..ud {
                    assert_eq!(arena.pweight[i][l].to_bits(), s[i].pweight.to_bits());
                    assert_eq!(arena.feature[i], s[i].feature);
                    assert_eq!(arena.one[i][l], s[i].one_fraction);
                }
            }
        }
    }
}
