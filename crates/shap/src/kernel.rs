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
//! 4. **Model calls.** Every coalition × background row is one synthetic row; rows equal bit for
//!    bit (within and across background rows, and with a background row or x itself) are
//!    evaluated once, the rest are sent to the model in chunks of at least
//!    [`KernelParams::batch_rows`] rows; the background-weighted mean per coalition gives
//!    `E[f(x_S, X_S̄)]`, summed in shap's order.
//! 5. **Solve** per output: optional feature selection ([`L1Reg`]: LARS `num_features(k)`,
//!    `LassoLarsIC` with AIC/BIC on the standardised augmented design, `auto` = AIC below 20 %
//!    of the coalition space evaluated, or `Lasso(alpha)`), then weighted least squares with the
//!    efficiency constraint (last selected feature eliminated), like shap.
//!
//! Where it differs from shap (by design):
//! - The random part uses `ChaCha8Rng` (stream = flow index) instead of numpy's global RNG,
//!   so results equal shap exactly only when every subset size is enumerated
//!   (e.g. `M ≤ 10` features with auto `nsamples`); otherwise they agree in distribution.
//! - If the random draws cannot fill the budget (tiny spaces), shap keeps zero rows with zero
//!   weight (and NaN under the logit link); here those rows are dropped from the regression
//!   but still counted in LARS's `n_samples`, so the selection is the same.
//! - A singular normal matrix falls back to a pseudo-inverse solve (shap: `np.linalg.lstsq`);
//!   both give the minimum-norm least-squares solution.
//! - `num_features(k)` runs scikit-learn's LARS on its Gram branch (`XᵀX` once per flow for all
//!   outputs) where shap's call takes the column branch: the same quantities up to rounding;
//!   the fixtures check the selected features against `lars_path` itself.
use std::collections::HashMap;

use ndarray::{s, Array2, Array3, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ShapError};
use crate::lars::{lars_path_gram, Method};
use crate::lasso_cd::LassoCd;
use crate::lasso_ic::{standard_scale, Criterion, LassoLarsIc};
use crate::linalg::{dot_long, gram, lu_solve, pinv_solve};
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum L1Reg {
    /// No selection: every varying feature is estimated (shap `l1_reg=False`).
    None,
    /// Keep the features LARS activates within `k` steps (shap `"num_features(k)"`, its default
    /// with `k = 10` since 0.47). Ported from scikit-learn's `lars_path`.
    NumFeatures(usize),
    /// Keep the features with a nonzero coefficient in shap's
    /// `make_pipeline(StandardScaler(with_mean=False), LassoLarsIC(criterion="aic"))`
    /// (shap `"aic"`; ported from scikit-learn 1.9.1).
    Aic,
    /// As [`L1Reg::Aic`] with the Bayes criterion (shap `"bic"`).
    Bic,
    /// shap's deprecated `"auto"`: [`L1Reg::Aic`] when less than 20 % of the coalition space is
    /// evaluated (`nsamples / (2^M − 2) < 0.2`), otherwise no selection.
    Auto,
    /// Keep the features with a nonzero coefficient in `Lasso(alpha=α)` fit on the (unscaled)
    /// augmented design (shap's float `l1_reg`; scikit-learn 1.9.1's cyclic coordinate descent,
    /// ported). `α` must be finite and ≥ 0; `Alpha(0.0)` means no selection, as in shap.
    Alpha(f64),
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
        if let L1Reg::Alpha(a) = self.l1_reg {
            if !a.is_finite() || a < 0.0 {
                return Err(ShapError::InvalidParam(format!(
                    "l1_reg alpha must be finite and ≥ 0, got {a}"
                )));
            }
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
/// let model = shap::InfallibleModel(|x: ArrayView2<f32>| -> Array2<f32> {
///     let w = array![[1.0f32, -1.0], [2.0, 0.5], [-3.0, 1.0]];
///     x.dot(&w)
/// });
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
    /// Background rows as f32 bit patterns, row-major (synthetic rows are bitwise selects).
    background_bits: Vec<u32>,
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
    /// `ids[r * coalitions + s]`: output row id of (coalition s, background row r).
    ids: Vec<u32>,
    /// (coalition, background row) of each row to evaluate, id = background rows + 1 + index.
    todo: Vec<(u32, u32)>,
}

/// The synthetic rows of one flow: row (s, r) is background row r with the varying features of
/// coalition s taken from x, built as a branch-free bitwise select (exact, vectorised).
struct SyntheticRows<'a> {
    /// Per coalition, all-ones over the features taken from x (`select[s * p + j]`).
    select: Vec<u32>,
    x_bits: Vec<u32>,
    /// Background rows as f32 bit patterns, row-major.
    bg_bits: &'a [u32],
    p: usize,
}

impl<'a> SyntheticRows<'a> {
    fn new(masks: &[Vec<bool>], varying: &[usize], x: &[f32], bg_bits: &'a [u32]) -> Self {
        let p = x.len();
        let mut select = vec![0u32; masks.len() * p];
        for (sel, mask) in select.chunks_exact_mut(p).zip(masks) {
            for (&j, &m) in varying.iter().zip(mask) {
                sel[j] = if m { !0 } else { 0 };
            }
        }
        Self {
            select,
            x_bits: x.iter().map(|v| v.to_bits()).collect(),
            bg_bits,
            p,
        }
    }

    /// Background row r's bits.
    fn background(&self, r: usize) -> &[u32] {
        &self.bg_bits[r * self.p..(r + 1) * self.p]
    }

    /// Writes the bits of row (s, r) to `out`.
    fn write(&self, s: usize, r: usize, out: &mut [u32]) {
        let sel = &self.select[s * self.p..(s + 1) * self.p];
        for (((o, &m), &xb), &bb) in out
            .iter_mut()
            .zip(sel)
            .zip(&self.x_bits)
            .zip(self.background(r))
        {
            *o = (xb & m) | (bb & !m);
        }
    }

    /// Writes row (s, r) as floats to `out`.
    fn write_f32(&self, s: usize, r: usize, out: &mut [f32]) {
        let sel = &self.select[s * self.p..(s + 1) * self.p];
        for (((o, &m), &xb), &bb) in out
            .iter_mut()
            .zip(sel)
            .zip(&self.x_bits)
            .zip(self.background(r))
        {
            *o = f32::from_bits((xb & m) | (bb & !m));
        }
    }
}

/// A multiply-xorshift hasher for the u128 coalition keys and u64 row hashes (std's SipHash is
/// needlessly slow here).
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
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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

/// splitmix64's finaliser: a well-mixed 64-bit value per (feature, value bits) for row hashes.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
        let out = model
            .predict_proba(background.data.view())
            .map_err(|e| ShapError::Model(crate::error_chain(e.as_ref())))?;
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
        let background_bits: Vec<u32> = background.data.iter().map(|v| v.to_bits()).collect();
        Ok(Self {
            model,
            background,
            params,
            fnull,
            background_output: out,
            background_bits,
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
        let out = self
            .model
            .predict_proba(rows)
            .map_err(|e| ShapError::Model(crate::error_chain(e.as_ref())))?;
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

    /// Row ids of every (coalition, background row) pair, `ids[r * coalitions + s]`: pairs whose
    /// synthetic rows are equal bit for bit share one id and one model evaluation (the [`Model`]
    /// contract says a row's output does not depend on the batch).
    ///
    /// Synthetic row (S, r) is background row r with the features of S taken from x, so it only
    /// depends on S ∩ D_r, D_r = varying features where row r differs from x: within one
    /// background row, pairs are first grouped by that projection (a u128 key). Rows of
    /// different background rows, or a background row or x itself, can also coincide (rows that
    /// agree outside S): every distinct projection gets a 64-bit additive hash of its row
    /// (updated from the background row's hash over the features of S ∩ D_r), and a hash match
    /// is accepted only after comparing the two rows feature by feature, so a collision costs a
    /// model evaluation, never a wrong value.
    ///
    /// Ids `0..nbg` are the background rows (outputs known from [`KernelExplainer::new`]), id
    /// `nbg` is x (output known from the explained batch), new rows follow. With more than 128
    /// varying features every pair gets its own id.
    fn synthetic_row_ids(
        &self,
        masks: &[Vec<bool>],
        varying: &[usize],
        rows: &SyntheticRows<'_>,
    ) -> RowIds {
        let (nbg, p) = self.background.data.dim();
        let bg = &self.background_bits;
        let m = varying.len();
        let ns = masks.len();
        let mut ids = vec![0u32; ns * nbg];
        let mut todo: Vec<(u32, u32)> = Vec::new();
        let first_new = nbg as u32 + 1;
        if m > 128 {
            for r in 0..nbg {
                for s in 0..ns {
                    ids[r * ns + s] = first_new + todo.len() as u32;
                    todo.push((s as u32, r as u32));
                }
            }
            return RowIds { ids, todo };
        }
        let x_bits = &rows.x_bits;
        let bits: Vec<u128> = masks
            .iter()
            .map(|mk| {
                mk.iter()
                    .enumerate()
                    .fold(0u128, |a, (i, &b)| if b { a | (1u128 << i) } else { a })
            })
            .collect();
        // Scratch rows for confirming hash matches.
        let mut current = vec![0u32; p];
        let mut candidate = vec![0u32; p];
        let cell = |j: usize, v: u32| mix64(((j as u64) << 32) | v as u64);
        let row_hash = |row: &[u32]| -> u64 {
            row.iter()
                .enumerate()
                .fold(0u64, |h, (j, &v)| h.wrapping_add(cell(j, v)))
        };
        let mut global: HashMap<u64, u32, BuildMix> =
            HashMap::with_capacity_and_hasher((ns * nbg / 2).min(1 << 20), BuildMix);
        global.insert(row_hash(x_bits), nbg as u32);
        let bg_hash: Vec<u64> = (0..nbg)
            .map(|r| row_hash(&bg[r * p..(r + 1) * p]))
            .collect();
        for (r, &h) in bg_hash.iter().enumerate() {
            global.entry(h).or_insert(r as u32);
        }
        // D_r as a bit set over the varying features: where background row r differs from x.
        let d_all: Vec<u128> = (0..nbg)
            .map(|r| {
                varying.iter().enumerate().fold(0u128, |a, (vi, &j)| {
                    if bg[r * p + j] != x_bits[j] {
                        a | (1u128 << vi)
                    } else {
                        a
                    }
                })
            })
            .collect();
        let mut delta = vec![0u64; m];
        let mut seen: HashMap<u128, u32, BuildMix> =
            HashMap::with_capacity_and_hasher(ns.min(1 << 16), BuildMix);
        for r in 0..nbg {
            let row = &bg[r * p..(r + 1) * p];
            let d_r = d_all[r];
            for (vi, &j) in varying.iter().enumerate() {
                // Hash change when feature j switches from the background value to x's.
                delta[vi] = cell(j, x_bits[j]).wrapping_sub(cell(j, row[j]));
            }
            seen.clear();
            seen.insert(0, r as u32);
            for (s, b) in bits.iter().enumerate() {
                let key = b & d_r;
                if let Some(&id) = seen.get(&key) {
                    ids[r * ns + s] = id;
                    continue;
                }
                let mut h = bg_hash[r];
                let mut rest = key;
                while rest != 0 {
                    let vi = rest.trailing_zeros() as usize;
                    h = h.wrapping_add(delta[vi]);
                    rest &= rest - 1;
                }
                let known = global.get(&h).copied().filter(|&id| {
                    // Confirm the match: rebuild both rows and compare them bit for bit.
                    rows.write(s, r, &mut current);
                    if id < nbg as u32 {
                        current == rows.background(id as usize)
                    } else if id == nbg as u32 {
                        current == *x_bits
                    } else {
                        let (s2, r2) = todo[(id - first_new) as usize];
                        rows.write(s2 as usize, r2 as usize, &mut candidate);
                        current == candidate
                    }
                });
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id = first_new + todo.len() as u32;
                        todo.push((s as u32, r as u32));
                        global.entry(h).or_insert(id);
                        id
                    }
                };
                seen.insert(key, id);
                ids[r * ns + s] = id;
            }
        }
        RowIds { ids, todo }
    }

    /// Evaluates the distinct synthetic rows in batches and returns `ey[s * outputs + k]`.
    fn expected_outputs(
        &self,
        rows: &RowIds,
        synth: &SyntheticRows<'_>,
        ns: usize,
        fx32: &[f32],
    ) -> Result<Vec<f64>> {
        let bg = &self.background.data;
        let (nbg, p) = bg.dim();
        let d = self.outputs();
        let first_new = nbg + 1;
        let mut outputs = vec![0.0f32; (first_new + rows.todo.len()) * d];
        for (r, o) in self.background_output.rows().into_iter().enumerate() {
            outputs[r * d..(r + 1) * d].copy_from_slice(o.as_slice().unwrap_or(&o.to_vec()));
        }
        outputs[nbg * d..(nbg + 1) * d].copy_from_slice(fx32);
        let chunk = self.params.batch_rows.max(1);
        let mut buf = Array2::<f32>::zeros((chunk.min(rows.todo.len()).max(1), p));
        for (c, pairs) in rows.todo.chunks(chunk).enumerate() {
            let flat = buf
                .as_slice_mut()
                .ok_or_else(|| ShapError::InvalidParam("internal: non-contiguous buffer".into()))?;
            for (row, &(s, r)) in flat.chunks_exact_mut(p).zip(pairs) {
                synth.write_f32(s as usize, r as usize, row);
            }
            let out = self.call_model(buf.slice(s![..pairs.len(), ..]))?;
            let base = (first_new + c * chunk) * d;
            for (t, o) in out.rows().into_iter().enumerate() {
                for (k, v) in o.iter().enumerate() {
                    outputs[base + t * d + k] = *v;
                }
            }
        }
        // ey[s] = Σ_r w_r f(row (s, r)), r ascending as in shap; r-major loops keep each
        // background row's outputs (mostly one contiguous block) in cache.
        let mut ey = vec![0.0f64; ns * d];
        for r in 0..nbg {
            let w = self.background.weights[r];
            let ids = &rows.ids[r * ns..(r + 1) * ns];
            for (acc, &id) in ey.chunks_exact_mut(d).zip(ids) {
                let id = id as usize;
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
        let synth = SyntheticRows::new(&co.masks, &varying, &x, &self.background_bits);
        let ids = self.synthetic_row_ids(&co.masks, &varying, &synth);
        let ey = self.expected_outputs(&ids, &synth, ns, &fx32)?;

        // Step 5: per output, select features, then constrained weighted least squares.
        let mut cache: HashMap<Vec<usize>, Vec<f64>> = HashMap::new();
        let mut aug: Option<AugmentedDesign> = None;
        // The standardised, centred design of LassoLarsIC (the same for every output).
        let mut ic: Option<LassoLarsIc> = None;
        // XᵀX of the augmented design for num_features(k) (the same for every output).
        let mut lars_gram: Option<Vec<f64>> = None;
        // The centred design of Lasso(alpha) (the same for every output).
        let mut lasso: Option<LassoCd> = None;
        for k in 0..d {
            let full = link.apply(fx[k]) - link.apply(self.fnull[k]);
            let ey_adj: Vec<f64> = (0..ns)
                .map(|s| link.apply(ey[s * d + k]) - link.apply(self.fnull[k]))
                .collect();
            let select = match self.params.l1_reg {
                L1Reg::Auto if co.fraction_evaluated >= 0.2 => L1Reg::None,
                L1Reg::Auto => L1Reg::Aic,
                L1Reg::Alpha(0.0) => L1Reg::None,
                other => other,
            };
            let nonzero: Vec<usize> = if select == L1Reg::None {
                (0..m).collect()
            } else {
                let (cols, sqrt_w1, sqrt_w2) = aug.get_or_insert_with(|| augmented_design(&co, m));
                // shap's augmented target: ey_adj·√(w(M−|S|)) and (ey_adj − full)·√(w|S|).
                let mut y = vec![0.0f64; 2 * co.nsamples];
                for s in 0..ns {
                    y[s] = ey_adj[s] * sqrt_w1[s];
                    y[co.nsamples + s] = (ey_adj[s] - full) * sqrt_w2[s];
                }
                match select {
                    L1Reg::NumFeatures(r) => {
                        // LARS on the Gram branch: XᵀX once per flow, Xᵀy per output.
                        let g = lars_gram.get_or_insert_with(|| gram(cols));
                        let xy: Vec<f64> = cols.iter().map(|c| dot_long(c, &y)).collect();
                        lars_path_gram(g, &xy, y.len(), r, Method::Lar).active
                    }
                    L1Reg::Alpha(a) => {
                        let cd = lasso.get_or_insert_with(|| LassoCd::new(cols));
                        let coef = cd.fit(&y, a);
                        (0..m).filter(|&j| coef[j] != 0.0).collect()
                    }
                    _ => {
                        let criterion = if select == L1Reg::Bic {
                            Criterion::Bic
                        } else {
                            Criterion::Aic
                        };
                        if ic.is_none() {
                            let mut scaled = cols.clone();
                            standard_scale(&mut scaled);
                            let design = LassoLarsIc::new(&scaled).map_err(|e| {
                                ShapError::FeatureSelection(format!(
                                    "LassoLarsIC needs more rows than features + 1: {} rows, {} features",
                                    e.samples, e.features
                                ))
                            })?;
                            ic = Some(design);
                        }
                        let fit = ic.as_ref().map(|d| d.fit(&y, criterion));
                        let coef = fit.map(|f| f.coef).unwrap_or_default();
                        (0..m)
                            .filter(|&j| coef.get(j).is_some_and(|c| *c != 0.0))
                            .collect()
                    }
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

    /// A model error stops the explanation with that error (no zeros or NaN in its place), on
    /// the background and on the explained rows alike.
    #[test]
    fn a_failing_model_stops_the_explanation_with_its_error() {
        #[derive(Debug)]
        struct Broken;
        impl std::fmt::Display for Broken {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("weights file vanished")
            }
        }
        impl std::error::Error for Broken {}
        let bg = Array2::from_shape_fn((4, 3), |(i, j)| (i + j) as f32);
        let always =
            |_: ArrayView2<f32>| -> std::result::Result<Array2<f32>, Broken> { Err(Broken) };
        let err = KernelExplainer::new(
            &always,
            Background::new(bg.clone()).unwrap(),
            KernelParams::new().check().unwrap(),
        )
        .err()
        .expect("background call fails");
        assert_eq!(err, ShapError::Model("weights file vanished".into()));
        // Fails only on rows the background does not hold (the explained rows' coalitions).
        let on_new_rows = |x: ArrayView2<f32>| -> std::result::Result<Array2<f32>, Broken> {
            if x.iter().any(|&v| v > 100.0) {
                Err(Broken)
            } else {
                Ok(x.slice(s![.., ..2]).to_owned())
            }
        };
        let explainer = KernelExplainer::new(
            &on_new_rows,
            Background::new(bg).unwrap(),
            KernelParams::new().check().unwrap(),
        )
        .unwrap();
        let err = explainer
            .explain(ndarray::array![[500.0f32, 1.0, 2.0]].view())
            .unwrap_err();
        assert_eq!(err, ShapError::Model("weights file vanished".into()));
    }

    /// Every (coalition, background row) pair maps to an id whose row equals the pair's
    /// synthetic row bit for bit, and distinct new ids are distinct rows (so the dedup is exact
    /// and complete), on data full of repeated values and duplicate background rows.
    #[test]
    fn synthetic_row_ids_share_exactly_the_equal_rows() {
        let model = crate::InfallibleModel(|x: ArrayView2<f32>| -> Array2<f32> {
            x.slice(s![.., ..2]).to_owned()
        });
        let p = 7;
        let bg = Array2::from_shape_fn((12, p), |(i, j)| ((i * 3 + j * j) % 4) as f32 * 0.5);
        let x = [0.5f32, 1.0, 0.0, 1.5, 0.5, 1.0, 0.0];
        let explainer = KernelExplainer::new(
            &model,
            Background::new(bg.clone()).unwrap(),
            KernelParams::new().check().unwrap(),
        )
        .unwrap();
        let varying: Vec<usize> = (0..p).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let co = build_coalitions(p, NSamples::Auto, &mut rng);
        let synth = SyntheticRows::new(&co.masks, &varying, &x, &explainer.background_bits);
        let rows = explainer.synthetic_row_ids(&co.masks, &varying, &synth);
        let (nbg, ns) = (bg.nrows(), co.masks.len());
        let synth = |s: usize, r: usize| -> Vec<u32> {
            (0..p)
                .map(|j| if co.masks[s][j] { x[j] } else { bg[[r, j]] }.to_bits())
                .collect()
        };
        let row_of = |id: usize| -> Vec<u32> {
            if id < nbg {
                bg.row(id).iter().map(|v| v.to_bits()).collect()
            } else if id == nbg {
                x.iter().map(|v| v.to_bits()).collect()
            } else {
                let (s, r) = rows.todo[id - nbg - 1];
                synth(s as usize, r as usize)
            }
        };
        for r in 0..nbg {
            for s in 0..ns {
                assert_eq!(
                    row_of(rows.ids[r * ns + s] as usize),
                    synth(s, r),
                    "s={s} r={r}"
                );
            }
        }
        let mut distinct = std::collections::HashSet::new();
        for id in nbg + 1..nbg + 1 + rows.todo.len() {
            assert!(distinct.insert(row_of(id)), "id {id} repeats a row");
            assert!(
                (0..=nbg).all(|k| row_of(k) != row_of(id)),
                "id {id} is a known row"
            );
        }
        // Far fewer model rows than pairs on such data.
        assert!(
            rows.todo.len() * 3 < ns * nbg,
            "{} of {}",
            rows.todo.len(),
            ns * nbg
        );
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
