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

/// EXTEND: adds a (zero, one) fraction pair for `feature` at position `unique_depth`.
/// Divisions by `unique_depth + 1` are multiplications by a reciprocal (rounding-level change).
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

struct Walk<'a> {
    tree: &'a PreparedTree,
    x: &'a [f32],
    outputs: usize,
    phi: &'a mut [f64],
    /// `recip[i] = 1 / i`.
    recip: &'a [f64],
    scratch_zero: Vec<f64>,
    scratch_idx: Vec<u32>,
    scratch_nop: Vec<f64>,
    scratch_total: Vec<f64>,
}

impl Walk<'_> {
    /// The leaf step of Algorithm 2: for every path element, UNWOUND-SUM weight times
    /// (one − zero) times the leaf value. One fractions are always 0 or 1 on a path-dependent
    /// walk, which gives two shortcuts with the same value as shap's loop up to rounding:
    /// - `one = 0`: the sum is `S0 / zero` with `S0 = Σ_i pweight_i / (d − i)` shared by all such
    ///   elements, so the scale `w · (0 − zero)` is `−(d + 1) · S0` for each of them;
    /// - `one = 1`: shap's recurrence, run for all such elements side by side (vectorisable).
    fn leaf(&mut self, path: &[PathElement], ud: usize, nz: &[(u32, f64)]) {
        let ud1 = (ud + 1) as f64;
        let hot = &mut self.scratch_zero;
        hot.clear();
        let hot_idx = &mut self.scratch_idx;
        hot_idx.clear();
        let mut any_cold = false;
        for (i, el) in path.iter().enumerate().take(ud + 1).skip(1) {
            if el.one_fraction != 0.0 {
                hot.push(el.zero_fraction);
                hot_idx.push(i as u32);
            } else {
                any_cold = true;
            }
        }
        let mut cold_scale = 0.0;
        if any_cold {
            let mut s0 = 0.0;
            for i in (0..ud).rev() {
                s0 += path[i].pweight * self.recip[ud - i];
            }
            cold_scale = -ud1 * s0;
        }
        let nh = hot.len();
        let nop = &mut self.scratch_nop;
        let total = &mut self.scratch_total;
        nop.clear();
        nop.resize(nh, path[ud].pweight);
        total.clear();
        total.resize(nh, 0.0);
        {
            // Plain slices so the loop over elements vectorises (no Vec reloads).
            let nop = &mut nop[..nh];
            let total = &mut total[..nh];
            let hot = &hot[..nh];
            for i in (0..ud).rev() {
                let inv = self.recip[i + 1];
                let c = (ud - i) as f64;
                let pw = path[i].pweight;
                for ((n, t), z) in nop.iter_mut().zip(total.iter_mut()).zip(hot) {
                    let tmp = *n * inv;
                    *t += tmp;
                    *n = pw - tmp * z * c;
                }
            }
        }
        let k = self.outputs;
        let mut h = 0;
        for (i, el) in path.iter().enumerate().take(ud + 1).skip(1) {
            let scale = if h < nh && hot_idx[h] as usize == i {
                let sc = total[h] * ud1 * (1.0 - hot[h]);
                h += 1;
                sc
            } else {
                cold_scale
            };
            let base = el.feature as usize * k;
            for &(c, v) in nz {
                self.phi[base + c as usize] += scale * v;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        arena: &mut [PathElement],
        parent_offset: usize,
        node: usize,
        mut unique_depth: usize,
        parent_zero: f64,
        parent_one: f64,
        parent_feature: i64,
    ) {
        // Each level owns a copy of the path right after its parent's.
        let offset = parent_offset + unique_depth + 1;
        arena.copy_within(parent_offset..parent_offset + unique_depth + 1, offset);
        let path = &mut arena[offset..];
        extend_path(path, unique_depth, parent_zero, parent_one, parent_feature);
        let t = self.tree;
        let nd = t.nodes[node];
        if nd.right < 0 {
            if nd.leaf_len == 0 || unique_depth == 0 {
                return;
            }
            let nz = &t.leaf_values[nd.leaf_start as usize..(nd.leaf_start + nd.leaf_len) as usize];
            self.leaf(path, unique_depth, nz);
            return;
        }
        let split = nd.feature as usize;
        let xv = self.x[split];
        let (l, r) = (nd.left as usize, nd.right as usize);
        // scikit-learn routing: x <= threshold goes left; NaN goes right.
        let hot = if !xv.is_nan() && xv <= nd.threshold {
            l
        } else {
            r
        };
        let cold = if hot == l { r } else { l };
        let w = nd.cover;
        let hot_zero = t.nodes[hot].cover / w;
        let cold_zero = t.nodes[cold].cover / w;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        let path = &mut arena[offset..];
        let mut path_index = 0;
        while path_index <= unique_depth {
            if path[path_index].feature == split as i64 {
                break;
            }
            path_index += 1;
        }
        if path_index != unique_depth + 1 {
            incoming_zero = path[path_index].zero_fraction;
            incoming_one = path[path_index].one_fraction;
            unwind_path(path, unique_depth, path_index);
            unique_depth -= 1;
        }
        self.recurse(
            arena,
            offset,
            hot,
            unique_depth + 1,
            hot_zero * incoming_zero,
            incoming_one,
            split as i64,
        );
        self.recurse(
            arena,
            offset,
            cold,
            unique_depth + 1,
            cold_zero * incoming_zero,
            0.0,
            split as i64,
        );
    }
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
        // flow that has it. A tree's contribution is always computed on its own and then added,
        // so values do not depend on how flows are grouped.
        let threads = rayon::current_num_threads().max(1);
        let chunk = n.div_ceil(threads).clamp(16, 4096);
        let starts: Vec<usize> = (0..n).step_by(chunk).collect();
        let per_flow: Vec<(Vec<f64>, Vec<f64>)> = starts
            .into_par_iter()
            .flat_map_iter(|start| {
                let end = (start + chunk).min(n);
                let xs: Vec<Vec<f32>> = (start..end).map(|i| x.row(i).to_vec()).collect();
                let mut phis = vec![vec![0.0f64; p * k]; end - start];
                let mut arena = vec![PathElement::default(); maxd * (maxd + 1) / 2 + maxd];
                let mut scratch = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut contrib = vec![0.0f64; p * k];
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
                    for flows in patterns.values() {
                        for &j in &t.used_features {
                            contrib[j as usize * k..(j as usize + 1) * k].fill(0.0);
                        }
                        let mut walk = Walk {
                            tree: t,
                            x: &xs[flows[0]],
                            outputs: k,
                            phi: &mut contrib,
                            recip: &recip,
                            scratch_zero: std::mem::take(&mut scratch.0),
                            scratch_idx: std::mem::take(&mut scratch.1),
                            scratch_nop: std::mem::take(&mut scratch.2),
                            scratch_total: std::mem::take(&mut scratch.3),
                        };
                        walk.recurse_root(&mut arena);
                        scratch = (
                            walk.scratch_zero,
                            walk.scratch_idx,
                            walk.scratch_nop,
                            walk.scratch_total,
                        );
                        for &f in flows {
                            let phi = &mut phis[f];
                            for &j in &t.used_features {
                                let r = j as usize * k..(j as usize + 1) * k;
                                for (a, c) in phi[r.clone()].iter_mut().zip(&contrib[r]) {
                                    *a += c;
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

impl Walk<'_> {
    fn recurse_root(&mut self, arena: &mut [PathElement]) {
        // shap calls tree_shap_recursive(node 0, unique_depth 0, parent path = arena start)
        // and the callee writes its path at parent + unique_depth + 1 = 1; we reserve slot 0
        // as the (empty) parent.
        self.recurse(arena, 0, 0, 0, 1.0, 1.0, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaf shortcuts give shap's UNWOUND-SUM scales on random paths with 0/1 one-fractions.
    #[test]
    fn leaf_shortcuts_equal_unwound_path_sum() {
        let mut state = 12345u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for ud in 1..12 {
            let mut path = vec![PathElement::default(); ud + 1];
            extend_path(&mut path, 0, 1.0, 1.0, -1);
            for d in 1..=ud {
                let one = if rnd() < 0.5 { 0.0 } else { 1.0 };
                extend_path(&mut path, d, 0.05 + 0.9 * rnd(), one, d as i64 - 1);
            }
            let tree = PreparedTree {
                nodes: vec![],
                internal: vec![],
                n_internal: 0,
                used_features: vec![],
                leaf_values: vec![],
                values: vec![],
                max_depth: ud,
            };
            let recip: Vec<f64> = (0..ud + 3)
                .map(|i| if i == 0 { 0.0 } else { 1.0 / i as f64 })
                .collect();
            let x = [0.0f32];
            let mut phi = vec![0.0; ud];
            let mut walk = Walk {
                tree: &tree,
                x: &x,
                outputs: 1,
                phi: &mut phi,
                recip: &recip,
                scratch_zero: vec![],
                scratch_idx: vec![],
                scratch_nop: vec![],
                scratch_total: vec![],
            };
            walk.leaf(&path, ud, &[(0, 1.0)]);
            for i in 1..=ud {
                let el = path[i];
                let want = unwound_path_sum(&path, ud, i) * (el.one_fraction - el.zero_fraction);
                let got = phi[el.feature as usize];
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "ud {ud} i {i}: {got} vs {want}"
                );
            }
        }
    }
}
