//! Least Angle Regression, ported step by step from scikit-learn 1.9.1's `lars_path`
//! (`_lars_path_solver` on its Gram-matrix branch, `alpha_min=0`): `method="lar"` gives the
//! active set of shap's `l1_reg="num_features(k)"`, `method="lasso"` the path `LassoLarsIC`
//! chooses from.
//!
//! shap calls `lars_path(mask_aug, eyAdj_aug, max_iter=k)` with `Gram=None`; the Gram branch
//! computes the same quantities (`XᵀX` entries instead of dot products of columns, equal up to
//! rounding) and lets KernelSHAP factor the design once per flow for all model outputs. The port
//! keeps scikit-learn's quirks that change which features are selected: the column swaps that
//! decide `argmax` ties, rounding of the equiangular correlations to 15 decimals, the early stop
//! when `max|Xᵀr| / n_samples ≤ f32::EPSILON`, the degenerate-regressor skip, and the sign flip
//! (LAR: without a new variable in the next step) when a coefficient would cross zero.
use crate::linalg::{cholesky_delete, cholesky_solve, solve_lower};

/// scikit-learn's `arrayfuncs.min_pos`: the smallest positive value, `f64::MAX` if none.
pub(crate) fn min_pos(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|x| *x > 0.0).fold(f64::MAX, f64::min)
}

/// numpy's `np.around(x, 15)`: scale, round half to even, unscale.
pub(crate) fn around15(x: f64) -> f64 {
    (x * 1e15).round_ties_even() / 1e15
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `lars_path`'s `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Least angle regression: a coefficient that would cross zero only flips its sign.
    Lar,
    /// The lasso modification: such a coefficient leaves the active set.
    Lasso,
}

/// The regularisation path of `lars_path(alpha_min=0)` on the Gram branch.
pub(crate) struct LarsPath {
    /// `alphas[k]` = max |correlation| / n at step k.
    pub alphas: Vec<f64>,
    /// `coefs[k]`: coefficients at step k (original column order).
    pub coefs: Vec<Vec<f64>>,
    /// Active variables at the end, in order of entry (`lars_path(...)[1]`).
    pub active: Vec<usize>,
}

/// scikit-learn's `_lars_path_solver` with `Gram` given, `positive=False`, `alpha_min=0`,
/// `return_path=True`: `gram0 = XᵀX` (`p × p`), `cov0 = Xᵀy`, `n_samples = y.size`.
pub(crate) fn lars_path_gram(
    gram0: &[f64],
    cov0: &[f64],
    n_samples: usize,
    max_iter: usize,
    method: Method,
) -> LarsPath {
    let p = cov0.len();
    let mut gram = gram0.to_vec();
    // `Cov` in scikit-learn: the covariances of the inactive variables, front = next position.
    let mut cov: Vec<f64> = cov0.to_vec();
    let max_features = max_iter.min(p);
    let stride = max_features.max(1);
    let mut l = vec![0.0f64; stride * stride];
    let mut indices: Vec<usize> = (0..p).collect();
    let mut active: Vec<usize> = Vec::new();
    let mut sign_active = vec![0.0f64; stride];
    let mut alphas: Vec<f64> = Vec::new();
    let mut coefs: Vec<Vec<f64>> = vec![vec![0.0; p]];
    let (mut n_iter, mut n_active, mut drop) = (0usize, 0usize, false);
    let tiny32 = f32::MIN_POSITIVE as f64;
    let eq_tol = f32::EPSILON as f64;
    let eps = f64::EPSILON;
    let n_samples = n_samples as f64;
    let swap_rows_cols = |g: &mut [f64], a: usize, b: usize| {
        if a == b {
            return;
        }
        for j in 0..p {
            g.swap(a * p + j, b * p + j);
        }
        for i in 0..p {
            g.swap(i * p + a, i * p + b);
        }
    };
    loop {
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
        let alpha = c / n_samples;
        if alphas.len() == n_iter {
            alphas.push(alpha);
        } else {
            alphas[n_iter] = alpha;
        }
        if alpha <= eq_tol {
            // Early stop (alpha_min = 0: no interpolation, since alpha ≥ 0).
            break;
        }
        if n_iter >= max_iter || n_active >= p {
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
            cov.swap(c_idx, 0);
            indices.swap(n, m);
            let cov_not_shortened = cov.clone();
            cov.remove(0);
            swap_rows_cols(&mut gram, m, n);
            let cn = gram[n_active * p + n_active];
            for k in 0..n_active {
                l[n_active * stride + k] = gram[n_active * p + k];
            }
            if n_active > 0 {
                let mut row: Vec<f64> = l[n_active * stride..n_active * stride + n_active].to_vec();
                solve_lower(&l, stride, n_active, &mut row);
                l[n_active * stride..n_active * stride + n_active].copy_from_slice(&row);
            }
            let row = &l[n_active * stride..n_active * stride + n_active];
            let v: f64 = row.iter().map(|t| t * t).sum();
            let diag = (cn - v).abs().sqrt().max(eps);
            l[n_active * stride + n_active] = diag;
            if diag < 1e-7 {
                // Degenerate regressor: scikit-learn zeroes its covariance and puts it back.
                cov = cov_not_shortened;
                cov[0] = 0.0;
                cov.swap(c_idx, 0);
                continue;
            }
            active.push(indices[n_active]);
            n_active += 1;
        }
        if method == Method::Lasso && n_iter > 0 && alphas[n_iter - 1] < alpha {
            // α grows: numerical error dominates the remaining correlation (scikit-learn warns).
            break;
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
        // corr_eq_dir = Gram[:n_active, n_active:]ᵀ · least_squares, rounded to 15 decimals.
        let corr: Vec<f64> = (n_active..p)
            .map(|j| {
                let s: f64 = (0..n_active).map(|i| gram[i * p + j] * ls[i]).sum();
                around15(s)
            })
            .collect();
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
        let mut gamma = g1.min(g2).min(c / aa);
        drop = false;
        let coef = &coefs[n_iter];
        let z: Vec<f64> = active
            .iter()
            .zip(&ls)
            .map(|(&a, l)| -coef[a] / (l + tiny32))
            .collect();
        let z_pos = min_pos(z.iter().copied());
        let mut idx: Vec<usize> = Vec::new();
        if z_pos < gamma {
            // Some coefficients change sign (np.where(...)[0][::-1]): LAR flips their sign, the
            // lasso stops at the crossing and drops them.
            idx = (0..z.len()).rev().filter(|&k| z[k] == z_pos).collect();
            for &k in &idx {
                sign_active[k] = -sign_active[k];
            }
            if method == Method::Lasso {
                gamma = z_pos;
            }
            drop = true;
        }
        n_iter += 1;
        let mut next = vec![0.0f64; p];
        {
            let prev = &coefs[n_iter - 1];
            for (&a, l) in active.iter().zip(&ls) {
                next[a] = prev[a] + gamma * l;
            }
        }
        coefs.push(next);
        for (cv, cr) in cov.iter_mut().zip(&corr) {
            *cv -= gamma * cr;
        }
        if drop && method == Method::Lasso {
            for &ii in &idx {
                cholesky_delete(&mut l, stride, n_active, ii);
            }
            n_active -= 1;
            let drop_idx: Vec<usize> = idx.iter().map(|&ii| active.remove(ii)).collect();
            for &ii in &idx {
                for i in ii..n_active {
                    indices.swap(i, i + 1);
                    swap_rows_cols(&mut gram, i, i + 1);
                }
            }
            let coef = &coefs[n_iter];
            let temp: Vec<f64> = drop_idx
                .iter()
                .map(|&d| cov0[d] - dot(&gram0[d * p..(d + 1) * p], coef))
                .collect();
            cov.splice(0..0, temp);
            // np.delete(sign_active, idx) then append 0 to keep the length.
            let mut kept: Vec<f64> = sign_active
                .iter()
                .enumerate()
                .filter(|(k, _)| !idx.contains(k))
                .map(|(_, s)| *s)
                .collect();
            kept.resize(stride, 0.0);
            sign_active = kept;
        }
    }
    alphas.truncate(n_iter + 1);
    coefs.truncate(n_iter + 1);
    LarsPath {
        alphas,
        coefs,
        active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{dot_long, gram};

    fn active(cols: &[Vec<f64>], y: &[f64], max_iter: usize) -> Vec<usize> {
        let xy: Vec<f64> = cols.iter().map(|c| dot_long(c, y)).collect();
        lars_path_gram(&gram(cols), &xy, y.len(), max_iter, Method::Lar).active
    }

    /// `lars_path(X, y, max_iter=k)[1]` from scikit-learn 1.9.1 (X path, Gram=None) on the
    /// cases of `tests/fixtures/gen_lasso_lars_ic.py`, including shap's augmented designs: the
    /// Gram-branch port selects the same features in the same order.
    #[test]
    fn lar_active_sets_match_scikit_learn() {
        let fx: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/lasso_lars_ic.json")).unwrap();
        let mut checked = 0;
        for case in fx["cases"].as_array().unwrap() {
            let rows: Vec<Vec<f64>> =
                serde_json::from_value(fx["x"][case["x"].as_str().unwrap()].clone()).unwrap();
            let y: Vec<f64> = serde_json::from_value(case["y"].clone()).unwrap();
            let cols: Vec<Vec<f64>> = (0..rows[0].len())
                .map(|j| rows.iter().map(|r| r[j]).collect())
                .collect();
            for (k, want) in case["lar_active"].as_object().unwrap() {
                let want: Vec<usize> = serde_json::from_value(want.clone()).unwrap();
                let got = active(&cols, &y, k.parse().unwrap());
                assert_eq!(got, want, "{} k={k}", case["name"]);
                checked += 1;
            }
        }
        assert!(checked >= 50);
    }

    #[test]
    fn picks_the_most_correlated_columns_first() {
        // y = 3*c0 + 0.5*c2; columns orthogonal → order c0, c2, and c1 never enters.
        let c0 = vec![1.0, 0.0, 0.0, 0.0];
        let c1 = vec![0.0, 1.0, 0.0, 0.0];
        let c2 = vec![0.0, 0.0, 1.0, 0.0];
        let y = vec![3.0, 0.0, 0.5, 0.0];
        let cols = [c0, c1, c2];
        assert_eq!(active(&cols, &y, 1), vec![0]);
        assert_eq!(&active(&cols, &y, 3)[..2], &[0, 2]);
    }
}
