//! Exact order statistics of a column, with numpy's `linear` quantile interpolation.
//!
//! numpy/scikit-learn on `float32` input (`np.nanpercentile`, which `RobustScaler` and a
//! percentile clip use) select the two neighbouring order statistics in `float32`, then compute
//! the virtual index `(n - 1) * q`, its fractional part `gamma` and the interpolation
//! in `float64`, returning `float64`. `np.nanmedian` instead stays in `float32`: the mean of the two
//! middle values is `(a + b) / 2` rounded to `float32`. This module reproduces both bit for bit.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{PreprocessError, Result};

/// Order statistics requested from one column.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnStats {
    /// Quantiles in the order of the requested percentiles (numpy `linear`, f64).
    pub quantiles: Vec<f64>,
    /// Median as `np.nanmedian` returns it for float32 input (only if requested).
    pub median: f32,
    /// Smallest non-NaN value.
    pub min: f32,
    /// Largest non-NaN value.
    pub max: f32,
}

/// Index pair and weight numpy uses for percentile `p` (in 0..=100) of `n` sorted values.
fn virtual_index(n: usize, percent: f64) -> (usize, usize, f64) {
    // numpy: q = true_divide(p, 100); virtual = (n - 1) * q; both in f64.
    let q = percent / 100.0;
    let last = n - 1;
    let virtual_idx = last as f64 * q;
    let floor = virtual_idx.floor();
    if virtual_idx >= last as f64 {
        return (last, last, virtual_idx - floor);
    }
    let prev = if floor < 0.0 { 0 } else { floor as usize };
    (prev, (prev + 1).min(last), virtual_idx - floor)
}

/// numpy's `_lerp` on float32 neighbours: `b - a` is taken in float32 (both operands are
/// float32 arrays there), the rest in f64; written two ways so that the result is exact at both
/// ends.
fn lerp(a: f32, b: f32, t: f64) -> f64 {
    let diff = f64::from(b - a);
    let (a, b) = (f64::from(a), f64::from(b));
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Selects the order statistics at the sorted, deduplicated `ranks` of `values` (reordered in
/// place) without a full sort: the middle rank is selected first, then the ranks left and right
/// of it inside their own parts, so k ranks cost about `n log2(k)` comparisons instead of `n k`.
/// A rank next to an already selected one is the extreme of its part (one linear scan).
fn order_statistics(values: &mut [f32], ranks: &[usize]) -> Vec<f32> {
    let mut out = vec![0f32; ranks.len()];
    select_ranks(values, 0, ranks, &mut out);
    out
}

/// `values` is the part of the column holding ranks `offset..offset + values.len()`.
fn select_ranks(values: &mut [f32], offset: usize, ranks: &[usize], out: &mut [f32]) {
    if ranks.is_empty() || values.is_empty() {
        return;
    }
    let len = values.len();
    let mid = ranks.len() / 2;
    let local = ranks[mid] - offset;
    if local == 0 {
        let pos = argmin(values);
        values.swap(0, pos);
    } else if local == len - 1 {
        let pos = argmax(values);
        values.swap(len - 1, pos);
    } else {
        values.select_nth_unstable_by(local, |a, b| a.total_cmp(b));
    }
    out[mid] = values[local];
    let (left, right) = values.split_at_mut(local);
    select_ranks(left, offset, &ranks[..mid], &mut out[..mid]);
    select_ranks(
        &mut right[1..],
        ranks[mid] + 1,
        &ranks[mid + 1..],
        &mut out[mid + 1..],
    );
}

fn argmin(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if v.total_cmp(&values[best]).is_lt() {
            best = i;
        }
    }
    best
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if v.total_cmp(&values[best]).is_gt() {
            best = i;
        }
    }
    best
}

/// Moves the non-NaN values of `values` to its front, in order, and returns how many there are
/// (what lies behind them is left unspecified).
pub(crate) fn non_nan_to_front(values: &mut [f32]) -> usize {
    let mut n = 0;
    for i in 0..values.len() {
        if !values[i].is_nan() {
            values[n] = values[i];
            n += 1;
        }
    }
    n
}

/// Statistics of the non-NaN values of one column (`values` is reordered).
pub(crate) fn column_stats(
    values: &mut [f32],
    percents: &[f64],
    want_median: bool,
    column: usize,
) -> Result<ColumnStats> {
    // numpy's nan* functions ignore NaN.
    let n = non_nan_to_front(values);
    let values = &mut values[..n];
    if n == 0 {
        return Err(PreprocessError::AllNanColumn { column });
    }
    let mut ranks: Vec<usize> = vec![0, n - 1];
    let pairs: Vec<(usize, usize, f64)> = percents.iter().map(|&p| virtual_index(n, p)).collect();
    for &(a, b, _) in &pairs {
        ranks.push(a);
        ranks.push(b);
    }
    if want_median {
        ranks.push((n - 1) / 2);
        ranks.push(n / 2);
    }
    ranks.sort_unstable();
    ranks.dedup();
    let stats = order_statistics(values, &ranks);
    let at = |rank: usize| stats[ranks.binary_search(&rank).unwrap_or(0)];
    let quantiles = pairs
        .iter()
        .map(|&(a, b, t)| lerp(at(a), at(b), t))
        .collect();
    let median = if want_median {
        let (lo, hi) = (at((n - 1) / 2), at(n / 2));
        if n % 2 == 1 {
            lo
        } else {
            // float32 arithmetic, like numpy's mean of the two middle values.
            (lo + hi) / 2.0
        }
    } else {
        f32::NAN
    };
    Ok(ColumnStats {
        quantiles,
        median,
        min: at(0),
        max: at(n - 1),
    })
}

/// Column buffers are filled for a group of columns at a time, at most this many bytes, so
/// memory stays bounded for tens of millions of rows while each row is read once per group.
const GROUP_BYTES: usize = 64 << 20;
/// Rows per transposition tile (1024 rows x up to 76 columns ≈ 300 KB, L2-sized).
const TILE_ROWS: usize = 1024;

/// Copies `x` (n x g) into `buf` column-major (`buf[j * n + i] = x[i, j]`), in parallel over
/// row tiles: reading row-major tiles touches every cache line of `x` once, unlike a strided
/// column-by-column copy.
fn transpose_into(x: ArrayView2<'_, f32>, buf: &mut [f32]) {
    let n = x.nrows();
    let n_tiles = n.div_ceil(TILE_ROWS);
    let mut tiles: Vec<Vec<&mut [f32]>> = (0..n_tiles).map(|_| Vec::new()).collect();
    for col in buf.chunks_mut(n) {
        for (t, piece) in col.chunks_mut(TILE_ROWS).enumerate() {
            tiles[t].push(piece);
        }
    }
    tiles
        .into_par_iter()
        .enumerate()
        .for_each(|(t, mut pieces)| {
            let r0 = t * TILE_ROWS;
            let rows = x.slice(ndarray::s![r0..(r0 + TILE_ROWS).min(n), ..]);
            for (i, row) in rows.rows().into_iter().enumerate() {
                for (piece, &v) in pieces.iter_mut().zip(row.iter()) {
                    piece[i] = v;
                }
            }
        });
}

/// `f(column index, column values)` for every column of `x`, in column order: columns are copied
/// a group at a time into a column-major buffer (at most [`GROUP_BYTES`]), then `f` runs in
/// parallel over the group's columns. `f` may reorder the values it is given.
pub(crate) fn map_columns<T: Send>(
    x: ArrayView2<'_, f32>,
    f: impl Fn(usize, &mut [f32]) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let (n, m) = x.dim();
    if n == 0 || m == 0 {
        return Err(PreprocessError::EmptyInput { rows: n, cols: m });
    }
    let group = (GROUP_BYTES / (n * std::mem::size_of::<f32>())).clamp(1, m);
    let mut buf = vec![0f32; n * group];
    let mut out = Vec::with_capacity(m);
    for g0 in (0..m).step_by(group) {
        let g1 = (g0 + group).min(m);
        let cols = &mut buf[..n * (g1 - g0)];
        transpose_into(x.slice(ndarray::s![.., g0..g1]), cols);
        let results: Vec<Result<T>> = cols
            .par_chunks_mut(n)
            .enumerate()
            .map(|(k, col)| f(g0 + k, col))
            .collect();
        for r in results {
            out.push(r?);
        }
    }
    Ok(out)
}

/// [`column_stats`] for every column of `x` (exact, so the result does not depend on the
/// number of threads).
pub(crate) fn all_column_stats(
    x: ArrayView2<'_, f32>,
    percents: &[f64],
    want_median: bool,
) -> Result<Vec<ColumnStats>> {
    map_columns(x, |j, col| column_stats(col, percents, want_median, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: sort, then numpy's formula.
    fn reference(values: &[f32], p: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let (a, b, t) = virtual_index(v.len(), p);
        lerp(v[a], v[b], t)
    }

    #[test]
    fn selection_equals_full_sort() {
        let mut state = 12345u64;
        for n in [1usize, 2, 3, 4, 5, 10, 101, 1000] {
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // many ties: values on a coarse grid
                    ((state >> 40) % 17) as f32 - 8.0
                })
                .collect();
            let percents = [0.0, 1.0, 25.0, 50.0, 75.0, 99.0, 99.9, 100.0];
            let mut buf = values.clone();
            let s = column_stats(&mut buf, &percents, true, 0).unwrap();
            for (k, &p) in percents.iter().enumerate() {
                assert_eq!(s.quantiles[k], reference(&values, p), "n={n} p={p}");
            }
            assert_eq!(
                f64::from(s.median),
                reference(&values, 50.0),
                "median n={n}"
            );
        }
    }

    #[test]
    fn nan_is_ignored_and_all_nan_is_an_error() {
        let mut v = vec![f32::NAN, 3.0, 1.0, f32::NAN, 2.0];
        let s = column_stats(&mut v, &[50.0], true, 0).unwrap();
        assert_eq!(s.quantiles[0], 2.0);
        assert_eq!((s.min, s.max), (1.0, 3.0));
        let mut v = vec![f32::NAN];
        assert!(matches!(
            column_stats(&mut v, &[50.0], true, 7),
            Err(PreprocessError::AllNanColumn { column: 7 })
        ));
    }
}
