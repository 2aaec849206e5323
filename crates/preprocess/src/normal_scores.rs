//! Rank-based inverse normal transform ("normal scores", RankGauss): every column is mapped
//! through its training distribution onto a standard normal.
//!
//! A training value `v` of a column with `n` non-NaN values gets the score
//! `Φ⁻¹((rank(v) − ½) / n)`, `rank` averaging over ties (Hazen's plotting position with
//! scipy's `rankdata(method="average")`). So a value shared by 60 % of the flows (a zero byte
//! count, say) lands at one score near the middle instead of at an extreme, the ordering of
//! the other values is kept, and every output lies within ±Φ⁻¹(1 − 1/(2n)) (±3.7 for 5,000 rows).
//! Unseen values are interpolated linearly between the neighbouring knots, values beyond the
//! training range get the score of its end (numpy's `interp`).
//!
//! Why not scikit-learn's `QuantileTransformer(output_distribution="normal")`: it sends every
//! value equal to the column's training minimum to Φ⁻¹(1e-7) = −5.2, so a feature that is zero
//! in most flows puts most flows at −5.2 and the rest near 0. On the real CIC-DDoS2019 sample
//! that cost the MLP up to 0.2 macro-F1 on some seeds; the midrank scores do not have the jump.
//!
//! Columns with more distinct training values than `max_knots` keep a subset of them as knots:
//! the first distinct value entering each of `max_knots − 2` equal slices of the (midrank)
//! cumulative distribution, plus the largest value. Values between knots are interpolated, so
//! a bundle stays small however many rows it was fitted on.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, Result};
use crate::quantile::map_columns;
use crate::rows::for_each_row;

/// Rows per parallel block of the transform (76 features: 155 KB, inside L2).
const BLOCK_ROWS: usize = 512;

/// Parameters of [`NormalScores`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalScoresParams {
    /// Most knots kept per column (≥ 2); columns with at most this many distinct training values
    /// keep them all, so their training values are transformed exactly.
    pub max_knots: usize,
}

impl Default for NormalScoresParams {
    /// 1,000 knots per column (scikit-learn's `n_quantiles` default).
    fn default() -> Self {
        Self { max_knots: 1000 }
    }
}

/// [`NormalScoresParams`] that passed [`NormalScoresParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalScoresValidParams(NormalScoresParams);

impl NormalScoresParams {
    /// Sets the largest number of knots per column.
    pub fn max_knots(mut self, max_knots: usize) -> Self {
        self.max_knots = max_knots;
        self
    }

    /// Checks `max_knots ≥ 2`.
    pub fn check(self) -> Result<NormalScoresValidParams> {
        if self.max_knots < 2 {
            return Err(PreprocessError::InvalidParameter {
                name: "max_knots",
                reason: format!("must be at least 2, got {}", self.max_knots),
            });
        }
        Ok(NormalScoresValidParams(self))
    }

    /// Checks the parameters, then fits on the training rows `x`.
    pub fn fit(self, x: ArrayView2<'_, f32>) -> Result<NormalScores> {
        self.check()?.fit(x)
    }
}

impl NormalScoresValidParams {
    /// Sorts every column (parallel over columns) and keeps its knots. NaN is ignored; a column
    /// without non-NaN values, or with an infinite value, is an error.
    pub fn fit(&self, x: ArrayView2<'_, f32>) -> Result<NormalScores> {
        let max_knots = self.0.max_knots;
        let columns = map_columns(x, |j, values| column_knots(j, values, max_knots))?;
        Ok(NormalScores { max_knots, columns })
    }
}

/// The knots of one column: increasing values and their normal scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ColumnKnots {
    values: Vec<f32>,
    scores: Vec<f64>,
}

fn column_knots(column: usize, values: &mut [f32], max_knots: usize) -> Result<ColumnKnots> {
    let kept_len = crate::quantile::non_nan_to_front(values);
    let v = &mut values[..kept_len];
    if v.is_empty() {
        return Err(PreprocessError::AllNanColumn { column });
    }
    if v.iter().any(|x| x.is_infinite()) {
        return Err(PreprocessError::NonFiniteStatistic {
            column,
            what: "normal-score knot",
        });
    }
    sort_floats(v);
    let n = v.len() as f64;
    // Runs of equal values (−0.0 == 0.0, as in numpy) as (value, start, end).
    let v = &*v;
    let runs = || {
        let mut start = 0usize;
        std::iter::from_fn(move || {
            let value = *v.get(start)?;
            let mut end = start + 1;
            while end < v.len() && v[end] == value {
                end += 1;
            }
            let run = (value, start, end);
            start = end;
            Some(run)
        })
    };
    let d = runs().count();
    // Midrank plotting position of a run: (C_{i-1} + C_i) / 2n.
    let position = |start: usize, end: usize| (start + end) as f64 / (2.0 * n);
    let slices = max_knots.saturating_sub(2) as f64;
    let slice = |u: f64| (u * slices).floor();
    let mut kept: Vec<(f32, f64)> = Vec::with_capacity(d.min(max_knots));
    let mut previous_slice = f64::NAN;
    for (i, (value, start, end)) in runs().enumerate() {
        let u = position(start, end);
        // All distinct values when they fit; else the first of each slice, and the largest.
        let keep = d <= max_knots || i == 0 || i + 1 == d || slice(u) != previous_slice;
        previous_slice = slice(u);
        if keep {
            kept.push((value, u));
        }
    }
    Ok(ColumnKnots {
        values: kept.iter().map(|&(value, _)| value).collect(),
        scores: kept.iter().map(|&(_, u)| normal_quantile(u)).collect(),
    })
}

/// Sorts finite floats ascending (−0.0 before 0.0): an LSD radix sort over order-preserving
/// integer keys, three passes of 11 bits. With a comparison sort the bench's fit (1M rows) was
/// 2.5× slower than numpy's (AVX-512) `np.unique` on the same columns; with this sort and the
/// tiled column gather it is as fast.
fn sort_floats(v: &mut [f32]) {
    const SMALL: usize = 256;
    if v.len() <= SMALL {
        v.sort_unstable_by(f32::total_cmp);
        return;
    }
    // Flip every bit of negatives and only the sign bit of the rest: unsigned order = float order.
    let key = |x: f32| {
        let b = x.to_bits();
        b ^ (((b as i32) >> 31) as u32 | 0x8000_0000)
    };
    let unkey =
        |k: u32| f32::from_bits(k ^ ((((k ^ 0x8000_0000) as i32) >> 31) as u32 | 0x8000_0000));
    let mut keys: Vec<u32> = v.iter().map(|&x| key(x)).collect();
    let mut scratch = vec![0u32; keys.len()];
    let mut counts = [[0usize; 2048]; 3];
    for &k in &keys {
        counts[0][(k & 0x7ff) as usize] += 1;
        counts[1][((k >> 11) & 0x7ff) as usize] += 1;
        counts[2][(k >> 22) as usize] += 1;
    }
    for (pass, count) in counts.iter_mut().enumerate() {
        // A pass whose digit is the same for every key would only copy: skip it.
        if count.contains(&keys.len()) {
            continue;
        }
        let mut offset = 0;
        for c in count.iter_mut() {
            let here = *c;
            *c = offset;
            offset += here;
        }
        let shift = 11 * pass;
        for &k in &keys {
            let digit = ((k >> shift) & 0x7ff) as usize;
            scratch[count[digit]] = k;
            count[digit] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    for (x, &k) in v.iter_mut().zip(&keys) {
        *x = unkey(k);
    }
}

/// Fitted normal-score transform: per column, piecewise-linear from knot values to scores.
///
/// ```
/// use ndarray::array;
/// use preprocess::NormalScoresParams;
/// // Column 0: four distinct values; column 1: three tied zeros and one 9.
/// let train = array![[1.0f32, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 9.0]];
/// let ns = NormalScoresParams::default().fit(train.view()).unwrap();
/// let out = ns.transform(train.view()).unwrap();
/// // (rank − ½) / n = 1/8, 3/8, 5/8, 7/8 → symmetric scores.
/// assert!((out[[0, 0]] + out[[3, 0]]).abs() < 1e-6 && out[[0, 0]] < -1.1);
/// // The tied zeros share rank 2 → Φ⁻¹(3/8) ≈ −0.3186; the 9 gets Φ⁻¹(7/8) ≈ 1.1503.
/// assert!((out[[0, 1]] + 0.318_639).abs() < 1e-5 && (out[[3, 1]] - 1.150_349).abs() < 1e-5);
/// // Between knots: linear; beyond the training range: the end's score.
/// let new = ns.transform(array![[2.5f32, 100.0]].view()).unwrap();
/// assert!(new[[0, 0]].abs() < 1e-6 && new[[0, 1]] == out[[3, 1]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalScores {
    max_knots: usize,
    columns: Vec<ColumnKnots>,
}

impl NormalScores {
    /// Number of columns it was fitted on.
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// The `max_knots` it was fitted with.
    pub fn max_knots(&self) -> usize {
        self.max_knots
    }

    /// Knot values of column `j` (increasing), or `None` past the last column.
    pub fn knot_values(&self, j: usize) -> Option<&[f32]> {
        self.columns.get(j).map(|c| c.values.as_slice())
    }

    /// Knot scores of column `j` (non-decreasing), or `None` past the last column.
    pub fn knot_scores(&self, j: usize) -> Option<&[f64]> {
        self.columns.get(j).map(|c| c.scores.as_slice())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (j, c) in self.columns.iter().enumerate() {
            let bad = |why: &str| {
                Err(PreprocessError::InvalidPipeline(format!(
                    "normal scores, column {j}: {why}"
                )))
            };
            if c.values.is_empty() || c.values.len() != c.scores.len() {
                return bad("knot values and scores must be non-empty and of equal length");
            }
            if c.values.len() > self.max_knots.max(1) {
                return bad("more knots than max_knots");
            }
            // Finite first, so the comparisons below are a total order.
            if c.values.iter().any(|v| !v.is_finite()) || c.values.windows(2).any(|w| w[0] >= w[1])
            {
                return bad("knot values must be finite and strictly increasing");
            }
            if c.scores.iter().any(|s| !s.is_finite()) || c.scores.windows(2).any(|w| w[0] > w[1]) {
                return bad("knot scores must be finite and non-decreasing");
            }
        }
        Ok(())
    }

    /// Transforms `x` in place (parallel over row blocks). NaN stays NaN.
    pub fn transform_inplace(&self, x: ArrayViewMut2<'_, f32>) -> Result<()> {
        crate::check_cols(self.n_features(), x.ncols())?;
        let columns = &self.columns;
        let p = columns.len();
        let mut x = x;
        if let Some(all) = x.as_slice_mut() {
            if p == 0 {
                return Ok(());
            }
            // Column by column within blocks of rows: one column's knots stay in L1 while the
            // searches of many rows, independent of each other, overlap in the pipeline.
            all.par_chunks_mut(BLOCK_ROWS * p).for_each(|block| {
                for (j, c) in columns.iter().enumerate() {
                    for v in block.iter_mut().skip(j).step_by(p) {
                        *v = interpolate(*v, &c.values, &c.scores) as f32;
                    }
                }
            });
            return Ok(());
        }
        for_each_row(x, |row| {
            for (v, c) in row.iter_mut().zip(columns) {
                *v = interpolate(*v, &c.values, &c.scores) as f32;
            }
        });
        Ok(())
    }

    /// Returns a transformed copy of `x`.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = x.to_owned();
        self.transform_inplace(out.view_mut())?;
        Ok(out)
    }
}

/// numpy's `interp(x, xp, fp)` for increasing `xp`: the ends' values outside, the same slope
/// arithmetic inside (so a knot value maps to its score exactly).
fn interpolate(x: f32, xp: &[f32], fp: &[f64]) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let last = xp.len() - 1;
    if x <= xp[0] {
        return fp[0];
    }
    if x >= xp[last] {
        return fp[last];
    }
    // The largest j with xp[j] <= x, so x < xp[j + 1] (std's binary search is branch-free).
    let j = xp.partition_point(|&t| t <= x) - 1;
    let (x0, x1) = (f64::from(xp[j]), f64::from(xp[j + 1]));
    let slope = (fp[j + 1] - fp[j]) / (x1 - x0);
    slope * (f64::from(x) - x0) + fp[j]
}

/// Φ⁻¹(p), the standard normal quantile, for 0 < p < 1: Wichura's algorithm AS 241 (PPND16),
/// relative error about 1e-16 (scipy's `ndtri` agrees to ~1e-15).
pub fn normal_quantile(p: f64) -> f64 {
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let mut r = (-tail.ln()).sqrt();
    let z = if r <= 5.0 {
        r -= 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        r -= 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 {
        -z
    } else {
        z
    }
}

/// Σ c[i]·rⁱ by Horner's rule, lowest coefficient first.
fn poly(c: &[f64; 8], r: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ci| acc * r + ci)
}

// AS 241 coefficients, lowest order first, as published (more digits than an f64 holds).
#[allow(clippy::excessive_precision)]
mod as241 {
    pub(super) const A: [f64; 8] = [
        3.387_132_872_796_366_6,
        133.141_667_891_784_38,
        1_971.590_950_306_551_4,
        13_731.693_765_509_461,
        45_921.953_931_549_87,
        67_265.770_927_008_7,
        33_430.575_583_588_13,
        2_509.080_928_730_122_7,
    ];
    pub(super) const B: [f64; 8] = [
        1.0,
        42.313_330_701_600_91,
        687.187_007_492_057_9,
        5_394.196_021_424_751,
        21_213.794_301_586_597,
        39_307.895_800_092_71,
        28_729.085_735_721_943,
        5_226.495_278_852_546,
    ];
    pub(super) const C: [f64; 8] = [
        1.423_437_110_749_683_6,
        4.630_337_846_156_545,
        5.769_497_221_460_691,
        3.647_848_324_763_204_5,
        1.270_458_252_452_368_4,
        0.241_780_725_177_450_6,
        0.022_723_844_989_269_184,
        7.745_450_142_783_414e-4,
    ];
    pub(super) const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_8,
        1.676_384_830_183_803_8,
        0.689_767_334_985_1,
        0.148_103_976_427_480_08,
        0.015_198_666_563_616_457,
        5.475_938_084_995_345e-4,
        1.050_750_071_644_416_8e-9,
    ];
    pub(super) const E: [f64; 8] = [
        6.657_904_643_501_103,
        5.463_784_911_164_114,
        1.784_826_539_917_291_3,
        0.296_560_571_828_504_9,
        0.026_532_189_526_576_124,
        0.001_242_660_947_388_078_4,
        2.711_555_568_743_487_6e-5,
        2.010_334_399_292_288_1e-7,
    ];
    pub(super) const F: [f64; 8] = [
        1.0,
        0.599_832_206_555_887_9,
        0.136_929_880_922_735_8,
        0.014_875_361_290_850_615,
        7.868_691_311_456_133e-4,
        1.846_318_317_510_054_8e-5,
        1.421_511_758_316_445_9e-7,
        2.044_263_103_389_939_7e-15,
    ];
}
use as241::{A, B, C, D, E, F};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn normal_quantile_matches_known_values() {
        // scipy.special.ndtri (scipy 1.17.1).
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.025, -1.959_963_984_540_054_5),
            (0.841_344_746_068_542_9, 1.0),
            (1e-7, -5.199_337_582_192_816_5),
            (1e-20, -9.262_340_089_798_409),
        ] {
            let got = normal_quantile(p);
            assert!(
                (got - z).abs() <= 1e-14 * z.abs().max(1.0),
                "Φ⁻¹({p}) = {got}, want {z}"
            );
        }
    }

    #[test]
    fn many_distinct_values_keep_at_most_max_knots() {
        let x = ndarray::Array2::from_shape_fn((10_000, 1), |(i, _)| (i as f32).sqrt());
        let ns = NormalScoresParams::default()
            .max_knots(50)
            .fit(x.view())
            .unwrap();
        let values = ns.knot_values(0).unwrap();
        assert!(values.len() <= 50 && values.len() >= 40, "{}", values.len());
        assert_eq!(values[0], 0.0);
        assert_eq!(*values.last().unwrap(), (9_999f32).sqrt());
        ns.validate().unwrap();
    }

    #[test]
    fn radix_sort_orders_like_total_cmp() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut v: Vec<f32> = (0..5000)
            .map(|i| {
                rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let r = (rng >> 40) as f32 / (1u64 << 24) as f32;
                match i % 5 {
                    0 => -r * 1e9,
                    1 => r * 1e-30,
                    2 => 0.0,
                    3 => -0.0,
                    _ => (r - 0.5) * 3.0,
                }
            })
            .collect();
        v.extend([f32::MAX, f32::MIN, f32::MIN_POSITIVE, -f32::MIN_POSITIVE]);
        let mut want = v.clone();
        want.sort_unstable_by(f32::total_cmp);
        sort_floats(&mut v);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn nan_passes_and_bad_input_is_refused() {
        let train = array![[1.0f32, f32::NAN], [2.0, f32::NAN]];
        assert!(matches!(
            NormalScoresParams::default().fit(train.view()),
            Err(PreprocessError::AllNanColumn { column: 1 })
        ));
        let train = array![[1.0f32], [f32::INFINITY]];
        assert!(NormalScoresParams::default().fit(train.view()).is_err());
        assert!(NormalScoresParams::default().max_knots(1).check().is_err());
        let ns = NormalScoresParams::default()
            .fit(array![[1.0f32], [f32::NAN], [3.0]].view())
            .unwrap();
        let out = ns.transform(array![[f32::NAN], [2.0]].view()).unwrap();
        assert!(out[[0, 0]].is_nan() && out[[1, 0]].abs() < 1e-7);
    }
}
