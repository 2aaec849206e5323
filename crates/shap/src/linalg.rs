//! Small dense linear algebra in f64 (row-major `Vec<f64>`), enough for KernelSHAP's solves.
//!
//! The matrices are at most features × features (≤ a few hundred), so simple O(n³) code is
//! fine and keeps the crate free of a LAPACK dependency.

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
