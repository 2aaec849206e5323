//! Quantile binning computed once from the training data.
//!
//! Bin `b` of a feature holds the values `edges[b-1] < x <= edges[b]`; the last bin also holds NaN.
//! A split "bin ≤ b" is therefore exactly the real-valued split `x <= edges[b]`, so trees store
//! real thresholds and run on raw `f32` input.
use ndarray::ArrayView2;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Bin edges of every feature.
#[derive(Debug, Clone)]
pub(crate) struct BinMapper {
    /// `edges[f]` is strictly increasing; feature `f` has `edges[f].len() + 1` bins.
    pub edges: Vec<Vec<f32>>,
}

/// A threshold between two values `a < b` with `a <= t < b`: the largest f32 not above the
/// f64 midpoint, so `x <= t` agrees with scikit-learn's `x <= (a + b) / 2` (f64) for every f32 `x`.
pub(crate) fn midpoint(a: f32, b: f32) -> f32 {
    let m = (a as f64 + b as f64) / 2.0;
    if !m.is_finite() {
        return a;
    }
    let mut t = m as f32;
    if t as f64 > m {
        // Round toward -inf (f32::next_down needs Rust 1.86).
        t = if t > 0.0 {
            f32::from_bits(t.to_bits() - 1)
        } else if t == 0.0 {
            -f32::from_bits(1)
        } else {
            f32::from_bits(t.to_bits() + 1)
        };
    }
    if t < a || t >= b {
        a
    } else {
        t
    }
}

/// Edges for one feature from its (sorted, NaN-free) sample values.
fn feature_edges(sorted: &[f32], max_bins: usize) -> Vec<f32> {
    let mut distinct: Vec<f32> = Vec::new();
    for &v in sorted {
        if distinct.last() != Some(&v) {
            distinct.push(v);
        }
    }
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| midpoint(w[0], w[1])).collect();
    }
    // Quantile cut points: the boundary between the k-th and (k+1)-th of `max_bins` equal-count
    // groups; ties collapse, so heavy values keep one bin of their own.
    let n = sorted.len();
    let mut edges: Vec<f32> = Vec::with_capacity(max_bins - 1);
    for k in 1..max_bins {
        let pos = (k * n / max_bins).clamp(1, n - 1);
        let (a, b) = (sorted[pos - 1], sorted[pos]);
        let e = if a < b { midpoint(a, b) } else { a };
        // Never cut above the largest value: that bin would be empty.
        if e < sorted[n - 1] && edges.last().is_none_or(|&l| e > l) {
            edges.push(e);
        }
    }
    edges
}

impl BinMapper {
    /// Compute edges from `x` (rows = samples); uses a seeded subset of `subsample` rows when larger.
    pub fn fit(x: ArrayView2<'_, f32>, max_bins: usize, subsample: usize, seed: u64) -> Self {
        let n = x.nrows();
        let rows: Option<Vec<usize>> = (n > subsample).then(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB1A5_B1A5_B1A5_B1A5);
            let mut r = sample(&mut rng, n, subsample).into_vec();
            r.sort_unstable();
            r
        });
        let edges = (0..x.ncols())
            .into_par_iter()
            .map(|f| {
                let col = x.column(f);
                let mut v: Vec<f32> = match &rows {
                    Some(r) => r.iter().map(|&i| col[i]).filter(|v| !v.is_nan()).collect(),
                    None => col.iter().copied().filter(|v| !v.is_nan()).collect(),
                };
                v.sort_unstable_by(|a, b| a.total_cmp(b));
                // total_cmp orders -0.0 before 0.0; they compare equal, so fold them together.
                for e in v.iter_mut() {
                    if *e == 0.0 {
                        *e = 0.0;
                    }
                }
                feature_edges(&v, max_bins)
            })
            .collect();
        BinMapper { edges }
    }

    /// Bin of `v` for feature `f` (NaN → last bin, i.e. right of every split).
    #[inline]
    pub fn bin(&self, f: usize, v: f32) -> u8 {
        let e = &self.edges[f];
        if v.is_nan() {
            e.len() as u8
        } else {
            e.partition_point(|&t| t < v) as u8
        }
    }

    /// Row-major binned matrix: `out[i * n_features + f]` is the bin of `x[[i, f]]` (a row's bins
    /// share one or two cache lines, which is what deep nodes with scattered rows need).
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Vec<u8> {
        let nf = x.ncols();
        let mut out = vec![0u8; x.nrows() * nf];
        if out.is_empty() {
            return out;
        }
        const ROWS_PER_TASK: usize = 4096;
        out.par_chunks_mut(ROWS_PER_TASK * nf)
            .enumerate()
            .for_each(|(chunk, dst)| {
                let r0 = chunk * ROWS_PER_TASK;
                for (k, row) in dst.chunks_mut(nf).enumerate() {
                    let xr = x.row(r0 + k);
                    for (f, (d, &v)) in row.iter_mut().zip(xr.iter()).enumerate() {
                        *d = self.bin(f, v);
                    }
                }
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn few_distinct_values_get_midpoints() {
        let x = array![[1.0f32], [2.0], [2.0], [4.0]];
        let m = BinMapper::fit(x.view(), 255, 1000, 0);
        assert_eq!(m.edges[0], vec![1.5, 3.0]);
        assert_eq!(m.bin(0, 1.0), 0);
        assert_eq!(m.bin(0, 1.5), 0);
        assert_eq!(m.bin(0, 1.6), 1);
        assert_eq!(m.bin(0, 4.0), 2);
        assert_eq!(m.bin(0, f32::NAN), 2);
    }

    #[test]
    fn many_values_are_capped_at_max_bins() {
        let x = ndarray::Array2::from_shape_fn((10_000, 1), |(i, _)| (i % 1000) as f32);
        let m = BinMapper::fit(x.view(), 16, 100_000, 0);
        assert!(m.edges[0].len() <= 15 && m.edges[0].len() >= 14);
        assert!(m.edges[0].windows(2).all(|w| w[0] < w[1]));
    }
}
