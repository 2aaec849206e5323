//! Least Angle Regression ("lar"), ported step by step from scikit-learn's `lars_path`
//! (`_lars_path_solver` with `Gram=None`, `alpha_min=0`, `method="lar"`), returning only the
//! active set — what shap's `l1_reg="num_features(k)"` uses.
//!
//! The port keeps scikit-learn's quirks that change which features are selected: the column
//! swaps that decide `argmax` ties, rounding of the equiangular correlations to 15 decimals,
//! the early stop when `max|Xᵀr| / n_samples ≤ f32::EPSILON`, and the sign flip (without a
//! new variable in the next step) when a coefficient would cross zero.
use crate::linalg::{cholesky_solve, solve_lower};

fn min_pos(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|x| *x > 0.0).fold(f64::MAX, f64::min)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// numpy's `np.around(x, 15)`: scale, round half to even, unscale.
fn around15(x: f64) -> f64 {
    (x * 1e15).round_ties_even() / 1e15
}

/// Active variables (original column indices, in order of entry) after at most `max_iter`
/// LARS steps on columns `cols` (each of length `y.len()`).
pub(crate) fn lars_active(cols: &[Vec<f64>], y: &[f64], max_iter: usize) -> Vec<usize> {
    let n_features = cols.len();
    let n_samples = y.len() as f64;
    // scikit-learn swaps the columns of its copy of X; we swap a column permutation instead.
    let mut perm: Vec<usize> = (0..n_features).collect();
    let col = |perm: &[usize], k: usize| -> &[f64] { &cols[perm[k]] };
    let max_features = max_iter.min(n_features);
    let mut cov_full: Vec<f64> = cols.iter().map(|c| dot(c, y)).collect();
    let mut start = 0usize; // `Cov` is the view cov_full[start..]
    let mut indices: Vec<usize> = (0..n_features).collect();
    let mut active: Vec<usize> = Vec::new();
    let mut sign_active = vec![0.0f64; max_features.max(1)];
    let stride = max_features.max(1);
    let mut l = vec![0.0f64; stride * stride];
    let mut coef = vec![0.0f64; n_features];
    let (mut n_iter, mut n_active, mut drop) = (0usize, 0usize, false);
    let tiny32 = f32::MIN_POSITIVE as f64;
    let eq_tol = f32::EPSILON as f64;
    let eps = f64::EPSILON;
    loop {
        let cov = &cov_full[start..];
        let (c_idx, c_signed) = if cov.is_empty() {
            (0, 0.0)
        } else {
            let mut bi = 0;
            for (i, v) in cov.iter().enumerate() {
                if v.abs() > cov[bi].abs() {
                    bi = i;
                }
            }
            (bi, cov[bi])
        };
        let c = c_signed.abs();
        if c / n_samples <= eq_tol {
            break;
        }
        if n_iter >= max_iter || n_active >= n_features {
            break;
        }
        if !drop {
            sign_active[n_active] = if c_signed > 0.0 {
                1.0
            } else if c_signed < 0.0 {
                -1.0
            } else {
                0.0
            };
            let (m, n) = (n_active, c_idx + n_active);
            cov_full.swap(start + c_idx, start);
            indices.swap(n, m);
            start += 1;
            perm.swap(n, m);
            let new_col = col(&perm, n_active);
            let cn = dot(new_col, new_col);
            for k in 0..n_active {
                l[n_active * stride + k] = dot(new_col, col(&perm, k));
            }
            if n_active > 0 {
                let mut row: Vec<f64> = l[n_active * stride..n_active * stride + n_active].to_vec();
                solve_lower(&l, stride, n_active, &mut row);
                l[n_active * stride..n_active * stride + n_active].copy_from_slice(&row);
            }
            let row = &l[n_active * stride..n_active * stride + n_active];
            let v = dot(row, row);
            let diag = (cn - v).abs().sqrt().max(eps);
            l[n_active * stride + n_active] = diag;
            if diag < 1e-7 {
                // Degenerate regressor: scikit-learn zeroes its covariance and puts it back
                // (the column and index swaps stay, as in scikit-learn).
                start -= 1;
                cov_full[start] = 0.0;
                cov_full.swap(start + c_idx, start);
                continue;
            }
            active.push(indices[n_active]);
            n_active += 1;
        }
        let mut ls: Vec<f64> = sign_active[..n_active].to_vec();
        cholesky_solve(&l, stride, n_active, &mut ls);
        let aa;
        if ls.len() == 1 && ls[0] == 0.0 {
            ls[0] = 1.0;
            aa = 1.0;
        } else {
            let mut a = 1.0 / dot(&ls, &sign_active[..n_active]).sqrt();
            if !a.is_finite() {
                let mut i = 0;
                let mut l2 = l.clone();
                while !a.is_finite() {
                    for k in 0..n_active {
                        l2[k * stride + k] += 2f64.powi(i) * eps;
                    }
                    ls = sign_active[..n_active].to_vec();
                    cholesky_solve(&l2, stride, n_active, &mut ls);
                    let tmp = dot(&ls, &sign_active[..n_active]).max(eps);
                    a = 1.0 / tmp.sqrt();
                    i += 1;
                }
            }
            for v in ls.iter_mut() {
                *v *= a;
            }
            aa = a;
        }
        let n_rows = y.len();
        let mut eq_dir = vec![0.0f64; n_rows];
        for (k, lk) in ls.iter().enumerate() {
            for (e, xv) in eq_dir.iter_mut().zip(col(&perm, k)) {
                *e += xv * lk;
            }
        }
        let corr: Vec<f64> = perm[n_active..]
            .iter()
            .map(|&j| around15(dot(&cols[j], &eq_dir)))
            .collect();
        let cov = &cov_full[start..];
        let g1 = min_pos(
            cov.iter()
                .zip(&corr)
                .map(|(cv, cr)| (c - cv) / (aa - cr + tiny32)),
        );
        let g2 = min_pos(
            cov.iter()
                .zip(&corr)
                .map(|(cv, cr)| (c + cv) / (aa + cr + tiny32)),
        );
        let gamma = g1.min(g2).min(c / aa);
        drop = false;
        let z: Vec<f64> = active
            .iter()
            .zip(&ls)
            .map(|(&a, l)| -coef[a] / (l + tiny32))
            .collect();
        let z_pos = min_pos(z.iter().copied());
        if z_pos < gamma {
            for (k, zv) in z.iter().enumerate() {
                if *zv == z_pos {
                    sign_active[k] = -sign_active[k];
                }
            }
            drop = true;
        }
        n_iter += 1;
        for (&a, l) in active.iter().zip(&ls) {
            coef[a] += gamma * l;
        }
        for (cv, cr) in cov_full[start..].iter_mut().zip(&corr) {
            *cv -= gamma * cr;
        }
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_most_correlated_columns_first() {
        // y = 3*c0 + 0.5*c2; columns orthogonal → order c0, c2, and c1 never enters.
        let c0 = vec![1.0, 0.0, 0.0, 0.0];
        let c1 = vec![0.0, 1.0, 0.0, 0.0];
        let c2 = vec![0.0, 0.0, 1.0, 0.0];
        let y = vec![3.0, 0.0, 0.5, 0.0];
        let act = lars_active(&[c0.clone(), c1.clone(), c2.clone()], &y, 1);
        assert_eq!(act, vec![0]);
        let act = lars_active(&[c0, c1, c2], &y, 3);
        assert_eq!(&act[..2], &[0, 2]);
    }
}
