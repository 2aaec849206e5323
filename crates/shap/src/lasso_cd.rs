//! shap's fixed-strength feature selection (`l1_reg=<float α>`): `Lasso(alpha=α)` fit on the
//! augmented design (no scaling), keeping the features with a nonzero coefficient. Ported step
//! by step from scikit-learn 1.9.1 (`Lasso.fit` → `enet_path` → `cd_fast.enet_coordinate_descent`
//! with `precompute=False`, `selection="cyclic"`, `max_iter=1000`, `tol=1e-4`, `positive=False`,
//! gap-safe screening on):
//!
//! - X and y centred (`fit_intercept=True`), the L1 strength scaled to `α · n_samples`;
//! - cyclic coordinate descent over the screened active set with the soft-threshold update and an
//!   incrementally updated residual;
//! - after a sweep whose largest coefficient change is ≤ `tol` relative to the largest
//!   coefficient (or the last sweep), the duality gap (formulation A) is checked against
//!   `tol · ‖y‖²`, and the gap-safe screening rule removes features that cannot be active.
use crate::linalg::dot_long;

/// The target-independent part of `Lasso.fit` on one design: centred columns and their squared
/// norms (KernelSHAP fits one target per model output on the same design).
pub(crate) struct LassoCd {
    cols: Vec<Vec<f64>>,
    norm2: Vec<f64>,
}

/// scikit-learn's `fsign`: 0 at 0, else ±1.
fn fsign(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else if v > 0.0 {
        1.0
    } else {
        -1.0
    }
}

impl LassoCd {
    /// Centres the design (`cols[j]` = column j, all of equal length).
    pub(crate) fn new(cols: &[Vec<f64>]) -> Self {
        let cols: Vec<Vec<f64>> = cols
            .iter()
            .map(|c| {
                let mean = c.iter().sum::<f64>() / c.len().max(1) as f64;
                c.iter().map(|v| v - mean).collect()
            })
            .collect();
        let norm2 = cols.iter().map(|c| dot_long(c, c)).collect();
        Self { cols, norm2 }
    }

    /// `Lasso(alpha).fit(X, y).coef_` for this design's X (`alpha > 0`).
    pub(crate) fn fit(&self, y: &[f64], alpha: f64) -> Vec<f64> {
        const MAX_ITER: usize = 1000;
        const TOL: f64 = 1e-4;
        let p = self.cols.len();
        let n = y.len();
        let ymean = y.iter().sum::<f64>() / n.max(1) as f64;
        let y: Vec<f64> = y.iter().map(|v| v - ymean).collect();
        let alpha = alpha * n as f64; // enet_path: l1_reg = alpha · l1_ratio · n_samples
        let mut w = vec![0.0f64; p];
        let mut r = y.clone(); // R = y − X·w with w = 0
        let tol = TOL * dot_long(&y, &y);
        let d_w_tol = TOL;
        let mut xta = vec![0.0f64; p];
        let (mut gap, mut dual_norm) = self.gap(&w, alpha, &y, &r, &mut xta);
        if gap <= tol {
            return w;
        }
        let mut excluded = vec![false; p];
        let mut active: Vec<usize> = Vec::with_capacity(p);
        // Gap-safe screening (https://arxiv.org/abs/1802.07481, Eq. 11); `first` also drops
        // all-zero columns, later passes skip features already excluded.
        let screen = |first: bool,
                      w: &mut [f64],
                      r: &mut [f64],
                      excluded: &mut [bool],
                      active: &mut Vec<usize>,
                      xta: &[f64],
                      gap: f64,
                      dual_norm: f64| {
            active.clear();
            for j in 0..p {
                if first && self.norm2[j] == 0.0 {
                    w[j] = 0.0;
                    excluded[j] = true;
                    continue;
                }
                if !first && excluded[j] {
                    continue;
                }
                let xj_theta = xta[j] / alpha.max(dual_norm);
                let d_j = (1.0 - xj_theta.abs()) / self.norm2[j].sqrt();
                if d_j <= (2.0 * gap).sqrt() / alpha {
                    active.push(j);
                    excluded[j] = false;
                } else {
                    if w[j] != 0.0 {
                        for (ri, xi) in r.iter_mut().zip(&self.cols[j]) {
                            *ri += w[j] * xi;
                        }
                        w[j] = 0.0;
                    }
                    excluded[j] = true;
                }
            }
        };
        screen(
            true,
            &mut w,
            &mut r,
            &mut excluded,
            &mut active,
            &xta,
            gap,
            dual_norm,
        );
        for n_iter in 0..MAX_ITER {
            let mut w_max = 0.0f64;
            let mut d_w_max = 0.0f64;
            for &j in &active {
                if self.norm2[j] == 0.0 {
                    continue;
                }
                let w_j = w[j];
                let tmp = dot_long(&self.cols[j], &r) + w_j * self.norm2[j];
                w[j] = fsign(tmp) * (tmp.abs() - alpha).max(0.0) / self.norm2[j];
                if w[j] != w_j {
                    let step = w_j - w[j];
                    for (ri, xi) in r.iter_mut().zip(&self.cols[j]) {
                        *ri += step * xi;
                    }
                }
                d_w_max = d_w_max.max((w[j] - w_j).abs());
                w_max = w_max.max(w[j].abs());
            }
            if w_max == 0.0 || d_w_max / w_max <= d_w_tol || n_iter == MAX_ITER - 1 {
                (gap, dual_norm) = self.gap(&w, alpha, &y, &r, &mut xta);
                if gap <= tol {
                    break;
                }
                screen(
                    false,
                    &mut w,
                    &mut r,
                    &mut excluded,
                    &mut active,
                    &xta,
                    gap,
                    dual_norm,
                );
            }
        }
        w
    }

    /// `gap_enet` for β = 0: (duality gap of formulation A, ‖XᵀR‖_∞), writing `XᵀR` to `xta`.
    fn gap(&self, w: &[f64], alpha: f64, y: &[f64], r: &[f64], xta: &mut [f64]) -> (f64, f64) {
        let r_norm2 = dot_long(r, r);
        let ry = dot_long(r, y);
        for (x, c) in xta.iter_mut().zip(&self.cols) {
            *x = dot_long(c, r);
        }
        let dual_norm = xta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let w_l1: f64 = w.iter().map(|v| v.abs()).sum();
        let primal = 0.5 * r_norm2 + alpha * w_l1;
        let scale = if dual_norm > alpha {
            alpha / dual_norm
        } else {
            1.0
        };
        let dual = -0.5 * scale * scale * r_norm2 + scale * ry;
        (primal - dual, dual_norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vec64(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn columns(v: &Value) -> Vec<Vec<f64>> {
        let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(vec64).collect();
        (0..rows[0].len())
            .map(|j| rows.iter().map(|r| r[j]).collect())
            .collect()
    }

    /// The `lasso` cases of `tests/fixtures/gen_lasso_lars_ic.py` (scikit-learn 1.9.1
    /// `Lasso(alpha)`): coef_ to 1e-6 (relative above 1) and the same nonzero set.
    #[test]
    fn lasso_matches_scikit_learn() {
        let fx: Value =
            serde_json::from_str(include_str!("../tests/fixtures/lasso_lars_ic.json")).unwrap();
        let cases = fx["lasso"].as_array().unwrap();
        assert!(cases.len() >= 6);
        let mut partial = 0;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let cd = LassoCd::new(&columns(&fx["x"][case["x"].as_str().unwrap()]));
            let coef = cd.fit(&vec64(&case["y"]), case["alpha"].as_f64().unwrap());
            let want = vec64(&case["coef"]);
            for (a, b) in coef.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{name}: coef {a} vs {b}"
                );
            }
            let nz: Vec<bool> = coef.iter().map(|c| *c != 0.0).collect();
            let want_nz: Vec<bool> = want.iter().map(|c| *c != 0.0).collect();
            assert_eq!(nz, want_nz, "{name}: selected features");
            partial += usize::from(want_nz.iter().any(|b| *b) && want_nz.iter().any(|b| !*b));
        }
        assert!(partial >= 3, "too few cases select a strict subset");
    }
}
