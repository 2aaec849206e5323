//! KernelSHAP, following shap's `KernelExplainer` (shap 0.51 `explainers/_kernel.py`) step by step.
//!
//! Per explained flow:
//! 1. **Varying features.** Only features whose value differs from some background row
//!    (numpy `allclose`: `|bg − x| > 1e-8 + 1e-5·|bg|`) are explained; the others get 0.
//!    With no varying feature all values are 0; with one it takes the whole difference.
//! 2. **Budget.** `nsamples` (auto = `2M + 2048`) capped at `2^M − 2` for `M ≤ 30`.
//! 3. **Coalitions.** Shapley kernel weights per subset size; subset sizes (and their
//!    complements) whose expected count fits the remaining budget are enumerated completely,
//!    the rest of the budget is drawn at random in complementary pairs, repeated draws adding
//!    weight to the first copy; random weights are rescaled to the weight left.
//! 4. **Model calls.** Every coalition × background row is one synthetic row; rows are sent to the
//!    model in chunks of at least [`KernelParams::batch_rows`] rows; the background-weighted mean
//!    per coalition gives `E[f(x_S, X_S̄)]`.
//! 5. **Solve** per output: optional feature selection ([`L1Reg`]), then weighted least squares
//!    with the efficiency constraint (last selected feature eliminated), like shap.
//!
//! Where it differs from shap (by design):
//! - The random part uses `ChaCha8Rng` (stream = flow index) instead of numpy's global RNG,
//!   so results equal shap exactly only when every subset size is enumerated
//!   (e.g. `M ≤ 10` features with auto `nsamples`); otherwise they agree in distribution.
//! - `L1Reg::Auto` (deprecated in shap ≥ 0.47) uses no regularisation when ≥ 20 % of the
//!   coalition space is evaluated, like shap; below 20 % shap runs `LassoLarsIC(criterion="aic")`,
//!   which is not ported: this crate falls back to `NumFeatures(10)` (shap's current default) there
//!   and says so in the docs of [`L1Reg::Auto`].
//! - If the random draws cannot fill the budget (tiny spaces), shap keeps zero rows with zero
//!   weight (and NaN under the logit link); here those rows are dropped from the regression
//!   but still counted in LARS's `n_samples`, so the selection is the same.
//! - A singular normal matrix falls back to a pseudo-inverse solve (shap: `np.linalg.lstsq`);
//!   both give the minimum-norm least-squares solution.
use std::collections::HashMap;

use ndarray::{s, Array2, Array3, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ShapError};
use crate::lars::lars_active;
use crate::linalg::{lu_solve, pinv_solve};
use crate::{Explanation, Model};

/// Link between model output and the space the SHAP values add up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Link {
    /// Values explain the output itself.
    #[default]
    Identity,
    /// Values explain `log(p / (1 − p))` (shap's `link="logit"`).
    Logit,
}

impl Link {
    /// Applies the link.
    pub fn apply(self, p: f64) -> f64 {
        match self {
            Link::Identity => p,
            Link::Logit => (p / (1.0 - p)).ln(),
        }
    }
}

/// Feature selection before the regression (shap's `l1_reg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum L1Reg {
    /// No selection: every varying feature is estimated (shap `l1_reg=False`).
    None,
    /// Keep the features LARS activates within `k` steps (shap `"num_features(k)"`, its default
    /// with `k = 10` since 0.47). Ported from scikit-learn's `lars_path`.
    NumFeatures(usize),
    /// shap's deprecated `"auto"`: no selection when ≥ 20 % of the coalition space is
    /// evaluated; otherwise shap uses AIC (`LassoLarsIC`), which is **not** ported —
    /// this falls back to `NumFeatures(10)` there.
    Auto,
}

/// How many coalitions to evaluate per flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NSamples {
    /// `2 * M + 2048`, `M` = varying features (shap's `"auto"`).
    Auto,
    /// A fixed budget.
    Fixed(usize),
}

/// Reference data the absent features are drawn from: rows and their weights (normalised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// `[rows, features]`.
    pub data: Array2<f32>,
    /// One weight per row, summing to 1.
    pub weights: Vec<f64>,
}

impl Background {
    /// All rows, equal weights (shap passes a plain matrix this way).
    pub fn new(data: Array2<f32>) -> Result<Self> {
        let n = data.nrows();
        Self::weighted(data, vec![1.0; n])
    }

    /// Rows with weights; the weights are normalised to sum to 1 (like shap's `DenseData`).
    pub fn weighted(data: Array2<f32>, weights: Vec<f64>) -> Result<Self> {
        if data.nrows() == 0 {
            return Err(ShapError::EmptyBackground);
        }
        if weights.len() != data.nrows() {
            return Err(ShapError::BadWeights(format!(
                "{} weights for {} rows",
                weights.len(),
                data.nrows()
            )));
        }
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(ShapError::BadWeights(
                "weights must be finite and ≥ 0".into(),
            ));
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return Err(ShapError::BadWeights("weights sum to zero".into()));
        }
        let weights = weights.iter().map(|w| w / total).collect();
        Ok(Self { data, weights })
    }

    /// `k` rows drawn without replacement (shap's `shap.sample`; all rows if `k ≥ rows`),
    /// deterministic for `seed`.
    pub fn sample(data: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<Self> {
        if data.nrows() == 0 || k == 0 {
            return Err(ShapError::EmptyBackground);
        }
        if k >= data.nrows() {
            return Self::new(data.to_owned());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx = rand::seq::index::sample(&mut rng, data.nrows(), k).into_vec();
        idx.sort_unstable();
        Self::new(data.select(Axis(0), &idx))
    }

    /// A weighted k-means summary like `shap.kmeans(X, k)`: centres from smartcore's KMeans,
    /// each centre coordinate snapped to the nearest value of that feature in `data`
    /// (`round_values=True`), weights = cluster sizes. Empty clusters are dropped.
    ///
    /// The clustering itself is smartcore's (k-means++ seeding, its own RNG), so centres differ
    /// from scikit-learn's `KMeans(random_state=0, n_init=10)`; the summary's role is the same.
    pub fn kmeans(data: ArrayView2<'_, f32>, k: usize, seed: u64) -> Result<Self> {
        use smartcore::cluster::kmeans::{KMeans, KMeansParameters};
        use smartcore::linalg::basic::matrix::DenseMatrix;
        let (n, m) = data.dim();
        if n == 0 || k == 0 {
            return Err(ShapError::EmptyBackground);
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(ShapError::KMeans(
                "data contains NaN or infinity; impute first".into(),
            ));
        }
        let k = k.min(n);
        let rows: Vec<Vec<f64>> = data
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        let dm = DenseMatrix::from_2d_vec(&rows).map_err(|e| ShapError::KMeans(e.to_string()))?;
        let mut params = KMeansParameters::default().with_k(k).with_max_iter(300);
        params.seed = Some(seed);
        let model = KMeans::<f64, usize, DenseMatrix<f64>, Vec<usize>>::fit(&dm, params)
            .map_err(|e| ShapError::KMeans(e.to_string()))?;
        let labels: Vec<usize> = model
            .predict(&dm)
            .map_err(|e| ShapError::KMeans(e.to_string()))?;
        let mut counts = vec![0usize; k];
        let mut sums = vec![vec![0.0f64; m]; k];
        for (i, &c) in labels.iter().enumerate() {
            if c < k {
                counts[c] += 1;
                for j in 0..m {
                    sums[c][j] += rows[i][j];
                }
            }
        }
        let mut centres = Vec::new();
        let mut weights = Vec::new();
        for c in 0..k {
            if counts[c] == 0 {
                continue;
            }
            let mut centre = Vec::with_capacity(m);
            for j in 0..m {
                let mean = sums[c][j] / counts[c] as f64;
                // Snap to the nearest observed value (first one on ties, like np.argmin).
                let mut best = data[[0, j]];
                let mut best_d = (best as f64 - mean).abs();
                for i in 1..n {
                    let d = (data[[i, j]] as f64 - mean).abs();
                    if d < best_d {
                        best_d = d;
                        best = data[[i, j]];
                    }
                }
                centre.push(best);
            }
            centres.extend(centre);
            weights.push(counts[c] as f64);
        }
        let kk = weights.len();
        let arr = Array2::from_shape_vec((kk, m), centres)
            .map_err(|e| ShapError::KMeans(e.to_string()))?;
        Self::weighted(arr, weights)
    }

    /// Number of background rows.
    pub fn len(&self) -> usize {
        self.data.nrows()
    }

    /// Whether there are no rows (never true for a constructed background).
    pub fn is_empty(&self) -> bool {
        self.data.nrows() == 0
    }
}

/// Settings of [`KernelExplainer`] (builder; checked by [`KernelParams::check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelParams {
    /// Link function (default identity).
    pub link: Link,
    /// Feature selection (default `NumFeatures(10)`, shap ≥ 0.47's default).
    pub l1_reg: L1Reg,
    /// Coalition budget per flow (default auto).
    pub nsamples: NSamples,
    /// Seed of the random coalitions; flow `i` uses ChaCha8 stream `i`.
    pub seed: u64,
    /// Minimum synthetic rows per model call (default 8192).
    pub batch_rows: usize,
    /// Feature names (default `f0, f1, …`).
    pub feature_names: Option<Vec<String>>,
    /// Output names (default `c0, c1, …`).
    pub class_names: Option<Vec<String>>,
}

impl Default for KernelParams {
    fn default() -> Self {
        Self {
            link: Link::Identity,
            l1_reg: L1Reg::NumFeatures(10),
            nsamples: NSamples::Auto,
            seed: 0,
            batch_rows: 8192,
            feature_names: None,
            class_names: None,
        }
    }
}

/// [`KernelParams`] that passed [`KernelParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct KernelValidParams(KernelParams);

impl KernelValidParams {
    /// The checked settings.
    pub fn params(&self) -> &KernelParams {
        &self.0
    }
}

impl KernelParams {
    /// Default settings.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the link.
    pub fn link(mut self, link: Link) -> Self {
        self.link = link;
        self
    }
    /// Sets the feature selection.
    pub fn l1_reg(mut self, l1: L1Reg) -> Self {
        self.l1_reg = l1;
        self
    }
    /// Sets the coalition budget.
    pub fn nsamples(mut self, n: NSamples) -> Self {
        self.nsamples = n;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets the minimum rows per model call.
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows;
        self
    }
    /// Sets feature names.
    pub fn feature_names(mut self, names: Vec<String>) -> Self {
        self.feature_names = Some(names);
        self
    }
    /// Sets output (class) names.
    pub fn class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }
    /// Validates the settings.
    pub fn check(self) -> Result<KernelValidParams> {
        if self.batch_rows == 0 {
            return Err(ShapError::InvalidParam("batch_rows must be ≥ 1".into()));
        }
        if let NSamples::Fixed(n) = self.nsamples {
            if n < 2 {
                return Err(ShapError::InvalidParam("nsamples must be ≥ 2".into()));
            }
        }
        if let L1Reg::NumFeatures(0) = self.l1_reg {
            return Err(ShapError::InvalidParam(
                "num_features(k) needs k ≥ 1".into(),
            ));
        }
        Ok(KernelValidParams(self))
    }
}

/// Model-agnostic SHAP values by weighted linear regression over feature coalitions.
///
/// ```
/// use ndarray::{array, Array2, ArrayView2};
/// use shap::kernel::{Background, KernelExplainer, KernelParams, L1Reg};
///
/// // A linear model with two outputs: SHAP values are w_j * (x_j - E[x_j]).
/// let model = |x: ArrayView2<f32>| -> Array2<f32> {
///     let w = array![[1.0f32, -1.0], [2.0, 0.5], [-3.0, 1.0]];
///     x.dot(&w)
/// };
/// let background = Background::new(array![[0.0f32, 0.0, 0.0], [1.0, 2.0, 3.0]]).unwrap();
/// let params = KernelParams::new().l1_reg(L1Reg::None).check().unwrap();
/// let explainer = KernelExplainer::new(&model, background, params).unwrap();
/// let ex = explainer.explain(array![[1.0f32, 1.0, 1.0]].view()).unwrap();
/// // feature 2, output 0: -3 * (1 - 1.5) = 1.5
/// assert!((ex.values[[0, 2, 0]] - 1.5).abs() < 1e-5);
/// assert!(ex.additivity_error()[0] < 1e-5);
/// ```
pub struct KernelExplainer<'m, M: Model + ?Sized> {
    model: &'m M,
    background: Background,
    params: KernelParams,
    /// Background-weighted mean model output per output (probability space), shap's `fnull`.
    fnull: Vec<f64>,
    /// Model output on each background row (reused for coalitions that equal a background row).
    background_output: Array2<f32>,
}

/// shap's augmented LARS design, the same for every output of a flow: columns
/// `√(w(M−|S|))·mask` over `√(w|S|)·(mask − 1)` (padded with zero rows to `2·nsamples`), and the
/// two row scalings.
type AugmentedDesign = (Vec<Vec<f64>>, Vec<f64>, Vec<f64>);

fn augmented_design(co: &Coalitions, m: usize) -> AugmentedDesign {
    let ns = co.masks.len();
    let nrow = 2 * co.nsamples;
    let mut cols = vec![vec![0.0f64; nrow]; m];
    let mut sqrt_w1 = vec![0.0f64; ns];
    let mut sqrt_w2 = vec![0.0f64; ns];
    for s in 0..ns {
        let size = co.masks[s].iter().filter(|b| **b).count() as f64;
        let w1 = (co.weights[s] * (m as f64 - size)).sqrt();
        let w2 = (co.weights[s] * size).sqrt();
        sqrt_w1[s] = w1;
        sqrt_w2[s] = w2;
        for (j, col) in cols.iter_mut().enumerate() {
            let mv = if co.masks[s][j] { 1.0 } else { 0.0 };
            col[s] = w1 * mv;
            col[co.nsamples + s] = w2 * (mv - 1.0);
        }
    }
    (cols, sqrt_w1, sqrt_w2)
}

/// Distinct synthetic rows of one flow (see `KernelExplainer::synthetic_row_ids`).
struct RowIds {
    /// `[coalitions * background rows]` → output row id.
    ids: Vec<u32>,
    /// (coalition, background row) of each row to evaluate, id = background rows + 1 + index.
    todo: Vec<(u32, u32)>,
}

/// A multiply-xorshift hasher for the u128 coalition keys (std's SipHash is needlessly slow here).
#[derive(Default, Clone, Copy)]
struct BuildMix;

struct MixHasher(u64);

impl std::hash::BuildHasher for BuildMix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

impl std::hash::Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let lo = v as u64;
        let hi = (v >> 64) as u64;
        self.0 = (lo ^ hi.rotate_left(31) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// Coalitions of one flow: masks over the varying features and their kernel weights.
struct Coalitions {
    masks: Vec<Vec<bool>>,
    weights: Vec<f64>,
    /// Rows shap allocates (`nsamples`), LARS's `n_samples / 2`.
    nsamples: usize,
    /// `nsamples / max_samples`, for `L1Reg::Auto`.
    fraction_evaluated: f64,
}

fn binom(n: usize, k: usize) -> f64 {
    let mut r = 1.0f64;
    for i in 1..=k {
        r *= (n - k + i) as f64 / i as f64;
    }
    r.round()
}

/// Visits every k-subset of 0..n in lexicographic order (itertools.combinations).
fn for_each_combination(n: usize, k: usize, mut f: impl FnMut(&[usize])) {
    if k > n {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(&idx);
        let mut i = k;
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            if idx[i] != i + n - k {
                break;
            }
            if i == 0 {
                return;
            }
        }
        if idx[i] == i + n - k {
            return;
        }
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// Step 2–3: the coalition design of shap's `explain` for `m ≥ 2` varying features.
fn build_coalitions(m: usize, nsamples: NSamples, rng: &mut ChaCha8Rng) -> Coalitions {
    let mut nsamples = match nsamples {
        NSamples::Auto => 2 * m + 2048,
        NSamples::Fixed(n) => n,
    };
    let mut max_samples = (1u64 << 30) as f64;
    if m <= 30 {
        max_samples = ((1u64 << m) - 2) as f64;
        if nsamples as f64 > max_samples {
            nsamples = max_samples as usize;
        }
    }
    let num_subset_sizes = (m - 1).div_ceil(2);
    let num_paired = (m - 1) / 2;
    let mut weight_vector: Vec<f64> = (1..=num_subset_sizes)
        .map(|i| (m as f64 - 1.0) / (i as f64 * (m - i) as f64))
        .collect();
    for w in weight_vector.iter_mut().take(num_paired) {
        *w *= 2.0;
    }
    let total: f64 = weight_vector.iter().sum();
    for w in weight_vector.iter_mut() {
        *w /= total;
    }

    let mut masks: Vec<Vec<bool>> = Vec::with_capacity(nsamples);
    let mut weights: Vec<f64> = Vec::with_capacity(nsamples);
    let mut num_full_subsets = 0;
    let mut num_samples_left = nsamples as f64;
    let mut remaining = weight_vector.clone();
    for subset_size in 1..=num_subset_sizes {
        let mut nsubsets = binom(m, subset_size);
        let paired = subset_size <= num_paired;
        if paired {
            nsubsets *= 2.0;
        }
        if num_samples_left * remaining[subset_size - 1] / nsubsets >= 1.0 - 1e-8 {
            num_full_subsets += 1;
            num_samples_left -= nsubsets;
            if remaining[subset_size - 1] < 1.0 {
                let d = 1.0 - remaining[subset_size - 1];
                for r in remaining.iter_mut() {
                    *r /= d;
                }
            }
            let mut w = weight_vector[subset_size - 1] / binom(m, subset_size);
            if paired {
                w /= 2.0;
            }
            for_each_combination(m, subset_size, |inds| {
                let mut mask = vec![false; m];
                for &i in inds {
                    mask[i] = true;
                }
                if paired {
                    let comp: Vec<bool> = mask.iter().map(|b| !b).collect();
                    masks.push(mask);
                    weights.push(w);
                    masks.push(comp);
                    weights.push(w);
                } else {
                    masks.push(mask);
                    weights.push(w);
                }
            });
        } else {
            break;
        }
    }

    let nfixed = masks.len();
    let mut samples_left = nsamples.saturating_sub(nfixed);
    if num_full_subsets != num_subset_sizes {
        let mut rem = weight_vector.clone();
        for r in rem.iter_mut().take(num_paired) {
            *r /= 2.0;
        }
        let rem: Vec<f64> = rem[num_full_subsets..].to_vec();
        // WeightedIndex normalises internally, as np.random.choice's p must sum to 1.
        if let Ok(dist) = WeightedIndex::new(&rem) {
            let words = m.div_ceil(64);
            let mut used: HashMap<Vec<u64>, usize> = HashMap::new();
            let draws = 4 * samples_left;
            let mut pos = 0;
            while samples_left > 0 && pos < draws {
                let ind = dist.sample(rng);
                pos += 1;
                let subset_size = ind + num_full_subsets + 1;
                let chosen = rand::seq::index::sample(rng, m, subset_size);
                let mut mask = vec![false; m];
                let mut key = vec![0u64; words];
                for i in chosen.iter() {
                    mask[i] = true;
                    key[i / 64] |= 1 << (i % 64);
                }
                let new_sample;
                let first;
                match used.get(&key) {
                    Some(&at) => {
                        new_sample = false;
                        first = at;
                        weights[at] += 1.0;
                    }
                    None => {
                        new_sample = true;
                        first = masks.len();
                        used.insert(key, first);
                        samples_left -= 1;
                        masks.push(mask.clone());
                        weights.push(1.0);
                    }
                }
                if samples_left > 0 && subset_size <= num_paired {
                    if new_sample {
                        samples_left -= 1;
                        masks.push(mask.iter().map(|b| !b).collect());
                        weights.push(1.0);
                    } else {
                        weights[first + 1] += 1.0;
                    }
                }
            }
            let weight_left: f64 = weight_vector[num_full_subsets..].iter().sum();
            let s: f64 = weights[nfixed..].iter().sum();
            if s > 0.0 {
                for w in weights[nfixed..].iter_mut() {
                    *w *= weight_left / s;
                }
            }
        }
    }
    Coalitions {
        masks,
        weights,
        nsamples,
        fraction_evaluated: nsamples as f64 / max_samples,
    }
}

impl<'m, M: Model + ?Sized> KernelExplainer<'m, M> {
    /// Evaluates the model on the background (`fnull` = weighted mean output).
    pub fn new(model: &'m M, background: Background, params: KernelValidParams) -> Result<Self> {
        if background.is_empty() {
            return Err(ShapError::EmptyBackground);
        }
        let params = params.0;
        let out = model.predict_proba(background.data.view());
        if out.nrows() != background.len() || out.ncols() == 0 {
            return Err(ShapError::ModelShape {
                rows: background.len(),
                got_rows: out.nrows(),
                got_cols: out.ncols(),
                expected_cols: out.ncols().max(1),
            });
        }
        let d = out.ncols();
        let mut fnull = vec![0.0f64; d];
        for (r, row) in out.rows().into_iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                fnull[k] += *v as f64 * background.weights[r];
            }
        }
        if let Some(names) = &params.class_names {
            if names.len() != d {
                return Err(ShapError::NameCount {
                    what: "class_names",
                    got: names.len(),
                    expected: d,
                });
            }
        }
        if let Some(names) = &params.feature_names {
            if names.len() != background.data.ncols() {
                return Err(ShapError::NameCount {
                    what: "feature_names",
                    got: names.len(),
                    expected: background.data.ncols(),
                });
            }
        }
        Ok(Self {
            model,
            background,
            params,
            fnull,
            background_output: out,
        })
    }

    /// `link(E[f(X)])` per output: the base value every explanation starts from.
    pub fn expected_value(&self) -> Vec<f64> {
        self.fnull
            .iter()
            .map(|&v| self.params.link.apply(v))
            .collect()
    }

    /// The background in use.
    pub fn background(&self) -> &Background {
        &self.background
    }

    fn outputs(&self) -> usize {
        self.fnull.len()
    }

    fn call_model(&self, rows: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let out = self.model.predict_proba(rows);
        if out.dim() != (rows.nrows(), self.outputs()) {
            return Err(ShapError::ModelShape {
                rows: rows.nrows(),
                got_rows: out.nrows(),
                got_cols: out.ncols(),
                expected_cols: self.outputs(),
            });
        }
        Ok(out)
    }

    /// Explains every row of `x` (flows in parallel, deterministic for the seed).
    pub fn explain(&self, x: ArrayView2<'_, f32>) -> Result<Explanation> {
        let p = self.background.data.ncols();
        if x.ncols() != p {
            return Err(ShapError::FeatureCount {
                what: "explained data",
                got: x.ncols(),
                expected: p,
            });
        }
        let n = x.nrows();
        let d = self.outputs();
        let fx = if n > 0 {
            self.call_model(x)?
        } else {
            Array2::zeros((0, d))
        };
        let per_flow: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let fxi = fx.row(i).to_vec();
                self.explain_one(x.row(i).to_vec(), fxi, i as u64)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut values = Array3::<f64>::zeros((n, p, d));
        for (i, phi) in per_flow.iter().enumerate() {
            for j in 0..p {
                for k in 0..d {
                    values[[i, j, k]] = phi[j * d + k];
                }
            }
        }
        let link = self.params.link;
        let model_output = fx.mapv(|v| link.apply(v as f64));
        Ok(Explanation {
            values,
            base_values: self.expected_value(),
            data: x.to_owned(),
            model_output,
            feature_names: self
                .params
                .feature_names
                .clone()
                .unwrap_or_else(|| (0..p).map(|j| format!("f{j}")).collect()),
            class_names: self
                .params
                .class_names
                .clone()
                .unwrap_or_else(|| (0..d).map(|k| format!("c{k}")).collect()),
        })
    }

    /// Row ids of every (coalition, background row) pair, `ids[s * nbg + r]`.
    ///
    /// Synthetic row (S, r) is background row r with the features of S taken from x, so it only
    /// depends on S ∩ D_r, D_r = varying features where row r differs from x. Pairs with the same
    /// projection share one id and one model evaluation (the [`Model`] contract says outputs do
    /// not depend on the batch). Ids `0..nbg` are the background rows themselves (S ∩ D_r = ∅),
    /// whose outputs are known from [`KernelExplainer::new`]; id `nbg` is x itself (S ⊇ D_r, when
    /// row r equals x bit for bit outside the varying features); new rows follow.
    /// With more than 128 varying features every pair gets its own id.
    fn synthetic_row_ids(&self, masks: &[Vec<bool>], varying: &[usize], x: &[f32]) -> RowIds {
        let bg = &self.background.data;
        let nbg = bg.nrows();
        let m = varying.len();
        let ns = masks.len();
        let mut ids = vec![0u32; ns * nbg];
        let mut todo: Vec<(u32, u32)> = Vec::new();
        let first_new = nbg as u32 + 1;
        if m > 128 {
            for s in 0..ns {
                for r in 0..nbg {
                    ids[s * nbg + r] = first_new + todo.len() as u32;
                    todo.push((s as u32, r as u32));
                }
            }
            return RowIds { ids, todo };
        }
        let bits: Vec<u128> = masks
            .iter()
            .map(|mk| {
                mk.iter()
                    .enumerate()
                    .fold(0u128, |a, (i, &b)| if b { a | (1u128 << i) } else { a })
            })
            .collect();
        let varying_set: Vec<bool> = {
            let mut v = vec![false; x.len()];
            for &j in varying {
                v[j] = true;
            }
            v
        };
        for r in 0..nbg {
            let row = bg.row(r);
            let mut d_r = 0u128;
            for (vi, &j) in varying.iter().enumerate() {
                if row[j].to_bits() != x[j].to_bits() {
                    d_r |= 1u128 << vi;
                }
            }
            let equals_x_elsewhere =
                (0..x.len()).all(|j| varying_set[j] || row[j].to_bits() == x[j].to_bits());
            let mut seen: HashMap<u128, u32, BuildMix> = HashMap::with_hasher(BuildMix);
            seen.insert(0, r as u32);
            if equals_x_elsewhere && d_r != 0 {
                seen.insert(d_r, nbg as u32);
            }
            for (s, b) in bits.iter().enumerate() {
                let key = b & d_r;
                let id = *seen.entry(key).or_insert_with(|| {
                    todo.push((s as u32, r as u32));
                    first_new + todo.len() as u32 - 1
                });
                ids[s * nbg + r] = id;
            }
        }
        RowIds { ids, todo }
    }

    /// Evaluates the distinct synthetic rows in batches and returns `ey[s * outputs + k]`.
    fn expected_outputs(
        &self,
        rows: &RowIds,
        masks: &[Vec<bool>],
        varying: &[usize],
        x: &[f32],
        fx32: &[f32],
    ) -> Result<Vec<f64>> {
        let bg = &self.background.data;
        let (nbg, p) = bg.dim();
        let d = self.outputs();
        let ns = masks.len();
        let first_new = nbg + 1;
        let mut outputs = vec![0.0f32; (first_new + rows.todo.len()) * d];
        for (r, o) in self.background_output.rows().into_iter().enumerate() {
            outputs[r * d..(r + 1) * d].copy_from_slice(o.as_slice().unwrap_or(&o.to_vec()));
        }
        outputs[nbg * d..(nbg + 1) * d].copy_from_slice(fx32);
        let chunk = self.params.batch_rows.max(1);
        let mut buf = Array2::<f32>::zeros((chunk.min(rows.todo.len()).max(1), p));
        for (c, pairs) in rows.todo.chunks(chunk).enumerate() {
            for (t, &(s, r)) in pairs.iter().enumerate() {
                let mut row = buf.row_mut(t);
                row.assign(&bg.row(r as usize));
                let mask = &masks[s as usize];
                for (vi, &j) in varying.iter().enumerate() {
                    if mask[vi] {
                        row[j] = x[j];
                    }
                }
            }
            let out = self.call_model(buf.slice(s![..pairs.len(), ..]))?;
            let base = (first_new + c * chunk) * d;
            for (t, o) in out.rows().into_iter().enumerate() {
                for (k, v) in o.iter().enumerate() {
                    outputs[base + t * d + k] = *v;
                }
            }
        }
        let mut ey = vec![0.0f64; ns * d];
        for s in 0..ns {
            let acc = &mut ey[s * d..(s + 1) * d];
            for r in 0..nbg {
                let w = self.background.weights[r];
                let id = rows.ids[s * nbg + r] as usize;
                for (a, v) in acc.iter_mut().zip(&outputs[id * d..(id + 1) * d]) {
                    *a += *v as f64 * w;
                }
            }
        }
        Ok(ey)
    }

    /// SHAP values of one flow, `[features * outputs]` row-major.
    fn explain_one(&self, x: Vec<f32>, fx32: Vec<f32>, flow: u64) -> Result<Vec<f64>> {
        let fx: Vec<f64> = fx32.iter().map(|&v| v as f64).collect();
        let bg = &self.background.data;
        let p = bg.ncols();
        let d = self.outputs();
        let link = self.params.link;
        let mut phi = vec![0.0f64; p * d];
        // Step 1: varying features (numpy allclose per column, NaN == NaN).
        let varying: Vec<usize> = (0..p)
            .filter(|&j| {
                let xj = x[j] as f64;
                bg.column(j).iter().any(|&b| {
                    let b = b as f64;
                    if xj.is_nan() || b.is_nan() {
                        !(xj.is_nan() && b.is_nan())
                    } else if xj.is_infinite() || b.is_infinite() {
                        xj != b
                    } else {
                        (xj - b).abs() > 1e-8 + 1e-5 * b.abs()
                    }
                })
            })
            .collect();
        let m = varying.len();
        if m == 0 {
            return Ok(phi);
        }
        if m == 1 {
            for k in 0..d {
                phi[varying[0] * d + k] = link.apply(fx[k]) - link.apply(self.fnull[k]);
            }
            return Ok(phi);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
        rng.set_stream(flow);
        let co = build_coalitions(m, self.params.nsamples, &mut rng);
        let ns = co.masks.len();

        // Step 4: batched model calls; ey[s, k] = Σ_r w_r f(synthetic row (s, r))_k.
        let ids = self.synthetic_row_ids(&co.masks, &varying, &x);
        let ey = self.expected_outputs(&ids, &co.masks, &varying, &x, &fx32)?;

        // Step 5: per output, select features, then constrained weighted least squares.
        let mut cache: HashMap<Vec<usize>, Vec<f64>> = HashMap::new();
        let mut aug: Option<AugmentedDesign> = None;
        for k in 0..d {
            let full = link.apply(fx[k]) - link.apply(self.fnull[k]);
            let ey_adj: Vec<f64> = (0..ns)
                .map(|s| link.apply(ey[s * d + k]) - link.apply(self.fnull[k]))
                .collect();
            let select = match self.params.l1_reg {
                L1Reg::None => None,
                L1Reg::NumFeatures(r) => Some(r),
                L1Reg::Auto => (co.fraction_evaluated < 0.2).then_some(10),
            };
            let nonzero: Vec<usize> = match select {
                None => (0..m).collect(),
                Some(r) => {
                    let (cols, sqrt_w1, sqrt_w2) =
                        aug.get_or_insert_with(|| augmented_design(&co, m));
                    // shap's augmented target: ey_adj·√(w(M−|S|)) and (ey_adj − full)·√(w|S|).
                    let mut y = vec![0.0f64; 2 * co.nsamples];
                    for s in 0..ns {
                        y[s] = ey_adj[s] * sqrt_w1[s];
                        y[co.nsamples + s] = (ey_adj[s] - full) * sqrt_w2[s];
                    }
                    lars_active(cols, &y, r)
                }
            };
            if nonzero.is_empty() {
                continue;
            }
            let last = *nonzero.last().unwrap_or(&0);
            let others = &nonzero[..nonzero.len() - 1];
            let q = others.len();
            // Normal matrix XᵀWX with X = mask[:, others] − mask[:, last]; cached per selection.
            let xtwx = cache.entry(nonzero.clone()).or_insert_with(|| {
                let mut a = vec![0.0f64; q * q];
                let mut xrow = vec![0.0f64; q];
                for s in 0..ns {
                    let ml = if co.masks[s][last] { 1.0 } else { 0.0 };
                    for (t, &j) in others.iter().enumerate() {
                        xrow[t] = (if co.masks[s][j] { 1.0 } else { 0.0 }) - ml;
                    }
                    let w = co.weights[s];
                    for a_ in 0..q {
                        let wa = w * xrow[a_];
                        if wa == 0.0 {
                            continue;
                        }
                        for b_ in 0..q {
                            a[a_ * q + b_] += wa * xrow[b_];
                        }
                    }
                }
                a
            });
            let mut rhs = vec![0.0f64; q];
            for s in 0..ns {
                let ml = if co.masks[s][last] { 1.0 } else { 0.0 };
                let y2 = ey_adj[s] - ml * full;
                let wy = co.weights[s] * y2;
                for (t, &j) in others.iter().enumerate() {
                    let xv = (if co.masks[s][j] { 1.0 } else { 0.0 }) - ml;
                    rhs[t] += xv * wy;
                }
            }
            let w = if q == 0 {
                Vec::new()
            } else {
                lu_solve(xtwx, &rhs, q).unwrap_or_else(|| pinv_solve(xtwx, &rhs, q))
            };
            let mut vphi = vec![0.0f64; m];
            for (t, &j) in others.iter().enumerate() {
                vphi[j] = w[t];
            }
            vphi[last] = full - w.iter().sum::<f64>();
            for (vi, &j) in varying.iter().enumerate() {
                let v = vphi[vi];
                phi[j * d + k] = if v.abs() < 1e-10 { 0.0 } else { v };
            }
        }
        Ok(phi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_lexicographic_and_complete() {
        let mut all = Vec::new();
        for_each_combination(5, 2, |c| all.push(c.to_vec()));
        assert_eq!(all.len(), 10);
        assert_eq!(all[0], vec![0, 1]);
        assert_eq!(all[1], vec![0, 2]);
        assert_eq!(all[9], vec![3, 4]);
        let mut n = 0;
        for_each_combination(4, 4, |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn full_enumeration_covers_every_proper_subset_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for m in 2..=9 {
            let co = build_coalitions(m, NSamples::Auto, &mut rng);
            assert_eq!(co.masks.len(), (1 << m) - 2, "m={m}");
            let mut seen = std::collections::HashSet::new();
            for mk in &co.masks {
                assert!(seen.insert(mk.clone()));
            }
            let total: f64 = co.weights.iter().sum();
            assert!((total - 1.0).abs() < 1e-12, "m={m} total={total}");
        }
    }

    #[test]
    fn sampled_design_fills_the_budget_and_is_seeded() {
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = ChaCha8Rng::seed_from_u64(3);
        let ca = build_coalitions(40, NSamples::Auto, &mut a);
        let cb = build_coalitions(40, NSamples::Auto, &mut b);
        assert_eq!(ca.masks.len(), 2 * 40 + 2048);
        assert_eq!(ca.masks, cb.masks);
        assert_eq!(ca.weights, cb.weights);
        let total: f64 = ca.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
