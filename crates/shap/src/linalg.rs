//! Small dense linear algebra in f64 (row-major `Vec<f64>`), enough for KernelSHAP's solves.
//!
//! The matrices are at most features × features (≤ a few hundred), so simple O(n³) code is
//! fine and keeps the crate free of a LAPACK dependency.

/// Dot product of two long vectors with eight interleaved partial sums (element `i` goes to sum
/// `i mod 8`, the sums are added pairwise at the end): the loop vectorises, and the result is
/// the same on every x86-64 CPU (plain SSE2 multiply and add, no FMA).
pub(crate) fn dot_long(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[i] += x * y;
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// `XᵀX` of columns `cols` (row-major `p × p`, symmetric).
pub(crate) fn gram(cols: &[Vec<f64>]) -> Vec<f64> {
    let p = cols.len();
    let mut g = vec![0.0f64; p * p];
    for i in 0..p {
        for j in i..p {
            let v = dot_long(&cols[i], &cols[j]);
            g[i * p + j] = v;
            g[j * p + i] = v;
        }
    }
    g
}

/// Solves `a x = b` (n×n, row-major) by LU with partial pivoting, like LAPACK `gesv`
/// (which `numpy.linalg.solve` calls). Returns `None` when a pivot is exactly zero, which is
/// when numpy raises `LinAlgError`.
pub(crate) fn lu_solve(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut m = a.to_vec();
    let mut x = b.to_vec();
    for k in 0..n {
        let mut p = k;
        let mut best = m[k * n + k].abs();
        for i in k + 1..n {
            let v = m[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best == 0.0 || !best.is_finite() {
            return None;
        }
        if p != k {
            for j in 0..n {
                m.swap(k * n + j, p * n + j);
            }
            x.swap(k, p);
        }
        let piv = m[k * n + k];
        for i in k + 1..n {
            let f = m[i * n + k] / piv;
            if f != 0.0 {
                for j in k + 1..n {
                    m[i * n + j] -= f * m[k * n + j];
                }
                x[i] -= f * x[k];
            }
        }
    }
    for k in (0..n).rev() {
        let mut s = x[k];
        for j in k + 1..n {
            s -= m[k * n + j] * x[j];
        }
        x[k] = s / m[k * n + k];
    }
    Some(x)
}

/// Symmetric eigen-decomposition by cyclic Jacobi rotations: returns (eigenvalues, eigenvectors
/// as columns of a row-major n×n matrix).
fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let mut off = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                off += m[i * n + j] * m[i * n + j];
            }
        }
        if off <= 1e-300 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let mkp = m[k * n + p];
                    let mkq = m[k * n + q];
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let mpk = m[p * n + k];
                    let mqk = m[q * n + k];
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// Minimum-norm least-squares solution of the normal equations `a x = b` (a = XᵀWX symmetric
/// PSD) through a pseudo-inverse; the fallback numpy's `lstsq` provides when `solve` fails.
pub(crate) fn pinv_solve(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let (vals, vecs) = jacobi_eigen(a, n);
    let max = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // Eigenvalues of XᵀWX are squared singular values of √W·X: use lstsq's cutoff on σ.
    let cutoff = (f64::EPSILON * n as f64 * max.sqrt()).powi(2);
    let mut x = vec![0.0; n];
    for (k, &lam) in vals.iter().enumerate() {
        if lam.abs() <= cutoff {
            continue;
        }
        let mut proj = 0.0;
        for i in 0..n {
            proj += vecs[i * n + k] * b[i];
        }
        let c = proj / lam;
        for i in 0..n {
            x[i] += c * vecs[i * n + k];
        }
    }
    x
}

/// Forward substitution for a lower-triangular `l` (leading `n`×`n` block of a `stride`-wide
/// row-major matrix) applied in place to `b`.
pub(crate) fn solve_lower(l: &[f64], stride: usize, n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for j in 0..i {
            s -= l[i * stride + j] * b[j];
        }
        b[i] = s / l[i * stride + i];
    }
}

/// Solves `L Lᵀ x = b` (LAPACK `potrs` with a lower factor) in place.
pub(crate) fn cholesky_solve(l: &[f64], stride: usize, n: usize, b: &mut [f64]) {
    solve_lower(l, stride, n, b);
    for i in (0..n).rev() {
        let mut s = b[i];
        for j in i + 1..n {
            s -= l[j * stride + i] * b[j];
        }
        b[i] = s / l[i * stride + i];
    }
}

/// BLAS `drotg`: the Givens rotation `(r, c, s)` with `[c s; −s c]·[a; b] = [r; 0]`
/// (reference BLAS sign convention: `r` takes the sign of the larger of `a`, `b`).
fn rotg(a: f64, b: f64) -> (f64, f64, f64) {
    let (anorm, bnorm) = (a.abs(), b.abs());
    if bnorm == 0.0 {
        (a, 1.0, 0.0)
    } else if anorm == 0.0 {
        (b, 0.0, 1.0)
    } else {
        let scl = anorm.max(bnorm);
        let sigma = if anorm > bnorm {
            a.signum()
        } else {
            b.signum()
        };
        let r = sigma * scl * ((a / scl).powi(2) + (b / scl).powi(2)).sqrt();
        (r, a / r, b / r)
    }
}

/// scikit-learn's `arrayfuncs.cholesky_delete`: removes variable `go_out` from the lower
/// Cholesky factor held in the leading `n`×`n` block of `l` (row stride `stride`), in place.
pub(crate) fn cholesky_delete(l: &mut [f64], stride: usize, n: usize, go_out: usize) {
    // Shift the rows below `go_out` up by one (each copy takes i + 2 entries, as scikit-learn).
    for i in go_out..n.saturating_sub(1) {
        for k in 0..i + 2 {
            l[i * stride + k] = l[(i + 1) * stride + k];
        }
    }
    // Restore the lower-triangular form with Givens rotations on column pairs (i, i + 1).
    for i in go_out..n.saturating_sub(1) {
        let (mut r, mut c, mut s) = rotg(l[i * stride + i], l[i * stride + i + 1]);
        if r < 0.0 {
            // Diagonals cannot be negative.
            r = r.abs();
            c = -c;
            s = -s;
        }
        l[i * stride + i] = r;
        l[i * stride + i + 1] = 0.0;
        for row in i + 1..n - 1 {
            let x = l[row * stride + i];
            let y = l[row * stride + i + 1];
            l[row * stride + i] = c * x + s * y;
            l[row * stride + i + 1] = c * y - s * x;
        }
    }
}

/// Residual sum of squares of least-squares fits `min ‖y − X b‖²` for many targets `y` on one
/// design `X` (columns of equal length), through a column-pivoted Householder QR of `X`.
///
/// Stands in for scikit-learn's `LinearRegression(fit_intercept=False)` (`scipy.linalg.lstsq`
/// with `cond=1e-6`): columns whose pivot falls to ≤ 1e-6 of the first are treated as dependent,
/// as lstsq drops singular values below `1e-6·σ_max`. The residual is the part of `y` outside
/// the column space, whatever solution a solver picks.
pub(crate) struct LstsqResidual {
    /// Householder vectors (full length, zero above their pivot row) and their `β = 2/‖v‖²`.
    reflectors: Vec<(Vec<f64>, f64)>,
    n: usize,
}

impl LstsqResidual {
    /// Factors the design (`cols[j]` = column j).
    pub(crate) fn new(cols: &[Vec<f64>]) -> Self {
        let n = cols.first().map_or(0, |c| c.len());
        let mut a: Vec<Vec<f64>> = cols.to_vec();
        let p = a.len();
        let mut reflectors = Vec::new();
        let mut first_pivot = 0.0f64;
        for k in 0..p.min(n) {
            // Pivot: the remaining column with the largest norm below row k.
            let norm_below = |c: &Vec<f64>| dot_long(&c[k..], &c[k..]);
            let mut best = k;
            let mut best_norm = norm_below(&a[k]);
            for j in k + 1..p {
                let nj = norm_below(&a[j]);
                if nj > best_norm {
                    best = j;
                    best_norm = nj;
                }
            }
            a.swap(k, best);
            let norm = best_norm.sqrt();
            if k == 0 {
                first_pivot = norm;
            }
            if norm == 0.0 || norm <= 1e-6 * first_pivot {
                break;
            }
            let x0 = a[k][k];
            let alpha = if x0 >= 0.0 { -norm } else { norm };
            let mut v = vec![0.0f64; n];
            v[k] = x0 - alpha;
            v[k + 1..].copy_from_slice(&a[k][k + 1..]);
            // |v[k]| = |x0| + norm > 0, so vnorm2 > 0.
            let vnorm2 = dot_long(&v[k..], &v[k..]);
            let beta = 2.0 / vnorm2;
            for col in a.iter_mut().skip(k) {
                let d = dot_long(&v[k..], &col[k..]);
                let f = beta * d;
                for (c, vv) in col[k..].iter_mut().zip(&v[k..]) {
                    *c -= f * vv;
                }
            }
            reflectors.push((v, beta));
        }
        Self { reflectors, n }
    }

    /// `min_b ‖y − X b‖²`.
    pub(crate) fn rss(&self, y: &[f64]) -> f64 {
        let mut y = y.to_vec();
        for (k, (v, beta)) in self.reflectors.iter().enumerate() {
            let d = dot_long(&v[k..], &y[k..]);
            let f = beta * d;
            for (t, vv) in y[k..].iter_mut().zip(&v[k..]) {
                *t -= f * vv;
            }
        }
        let rank = self.reflectors.len().min(self.n);
        dot_long(&y[rank..], &y[rank..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_matches_known_solution() {
        let a = [4.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let x_true = [1.0, -2.0, 3.0];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x_true[j]).sum())
            .collect();
        let x = lu_solve(&a, &b, 3).unwrap();
        for i in 0..3 {
            assert!((x[i] - x_true[i]).abs() < 1e-12);
        }
        let p = pinv_solve(&a, &b, 3);
        for i in 0..3 {
            assert!((p[i] - x_true[i]).abs() < 1e-10);
        }
    }

    #[test]
    fn singular_system_is_detected_and_pinv_gives_min_norm() {
        // rank 1: [[1,1],[1,1]] x = [2,2]; min-norm solution is [1,1].
        let a = [1.0, 1.0, 1.0, 1.0];
        assert!(lu_solve(&a, &[2.0, 2.0], 2).is_none());
        let p = pinv_solve(&a, &[2.0, 2.0], 2);
        assert!((p[0] - 1.0).abs() < 1e-12 && (p[1] - 1.0).abs() < 1e-12);
    }
}
