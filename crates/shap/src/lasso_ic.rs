//! shap's adaptive feature selection (`l1_reg="aic"`, `"bic"`, and `"auto"` when less than 20 %
//! of the coalitions are evaluated): `make_pipeline(StandardScaler(with_mean=False),
//! LassoLarsIC(criterion))` fit on the augmented design, keeping the features with a nonzero
//! coefficient. Ported step by step from scikit-learn 1.9.1:
//!
//! - `StandardScaler(with_mean=False)`: columns divided by their population standard deviation
//!   (corrected two-pass variance, ddof = 0); near-constant columns (scikit-learn's
//!   `_is_constant_feature`) keep scale 1.
//! - `LassoLarsIC.fit`: `_preprocess_data(fit_intercept=True)` centres X and y; `lars_path` with
//!   `method="lasso"`, `alpha_min=0`, `max_iter=500`, `eps=f64::EPSILON` and — because
//!   `precompute="auto"` and there are more rows than columns — the Gram-matrix branch
//!   (`Gram = XᵀX`, `Cov = Xᵀy`), including its variable drops (`cholesky_delete`, the covariance
//!   recomputed from the original Gram) and the early stop when α grows;
//! - the noise variance of the OLS fit (`‖y − ŷ‖² / (n − p − 1)`), the criterion
//!   `n·ln(2πσ²) + RSS_k/σ² + c·df_k` (c = 2 for AIC, ln n for BIC, df_k = number of
//!   |coef| > ε) and its first minimum (`np.argmin`).
use crate::lars::{lars_path_gram, Method};
use crate::linalg::{dot_long, gram, LstsqResidual};

/// Information criterion of `LassoLarsIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    /// Akaike: penalty 2 per nonzero coefficient.
    Aic,
    /// Bayes: penalty ln(n) per nonzero coefficient.
    Bic,
}

/// What `LassoLarsIC` keeps after `fit` (the fields the tests compare with scikit-learn).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LassoLarsIcFit {
    /// `coef_`: the path's coefficients at the best criterion.
    pub coef: Vec<f64>,
    /// `alpha_`.
    pub alpha: f64,
    /// `alphas_`: one per path step.
    pub alphas: Vec<f64>,
    /// `criterion_`: one per path step.
    pub criterion: Vec<f64>,
    /// `noise_variance_`.
    pub noise_variance: f64,
}

/// `StandardScaler(with_mean=False).fit_transform` on columns, in place.
pub(crate) fn standard_scale(cols: &mut [Vec<f64>]) {
    for col in cols.iter_mut() {
        let n = col.len() as f64;
        if col.is_empty() {
            continue;
        }
        // scikit-learn's `_incremental_mean_and_var` from zero state: corrected two-pass variance.
        let sum: f64 = col.iter().sum();
        let mean = sum / n;
        let correction: f64 = col.iter().map(|v| v - mean).sum();
        let sq: f64 = col.iter().map(|v| (v - mean) * (v - mean)).sum();
        let var = (sq - correction * correction / n) / n;
        let eps = f64::EPSILON;
        let constant = var <= n * eps * var + (n * mean * eps).powi(2);
        let scale = if constant { 1.0 } else { var.sqrt() };
        for v in col.iter_mut() {
            *v /= scale;
        }
    }
}

/// The target-independent part of `LassoLarsIC.fit` on one design: centred columns, their Gram
/// matrix and the QR factorisation for the noise-variance estimate. Fit many targets with
/// [`LassoLarsIc::fit`] (KernelSHAP fits one per model output on the same design).
pub(crate) struct LassoLarsIc {
    /// Centred columns.
    cols: Vec<Vec<f64>>,
    /// `XᵀX` of the centred columns, row-major `p × p`.
    gram: Vec<f64>,
    ols: LstsqResidual,
}

/// Why `LassoLarsIC` cannot run (scikit-learn raises `ValueError` for the same inputs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TooFewSamples {
    pub samples: usize,
    pub features: usize,
}

impl LassoLarsIc {
    /// Centres the design (`cols[j]` = column j, all of length n).
    pub(crate) fn new(cols: &[Vec<f64>]) -> Result<Self, TooFewSamples> {
        let p = cols.len();
        let n = cols.first().map_or(0, |c| c.len());
        // `_estimate_noise_variance` needs n > p + fit_intercept.
        if n <= p + 1 {
            return Err(TooFewSamples {
                samples: n,
                features: p,
            });
        }
        let cols: Vec<Vec<f64>> = cols
            .iter()
            .map(|c| {
                let mean = c.iter().sum::<f64>() / n as f64;
                c.iter().map(|v| v - mean).collect()
            })
            .collect();
        let gram = gram(&cols);
        let ols = LstsqResidual::new(&cols);
        Ok(Self { cols, gram, ols })
    }

    /// `LassoLarsIC(criterion).fit(X, y)` for this design's X.
    pub(crate) fn fit(&self, y: &[f64], criterion: Criterion) -> LassoLarsIcFit {
        let p = self.cols.len();
        let n = y.len();
        let ymean = y.iter().sum::<f64>() / n as f64;
        let yc: Vec<f64> = y.iter().map(|v| v - ymean).collect();
        let xy: Vec<f64> = self.cols.iter().map(|c| dot_long(c, &yc)).collect();
        let path = lars_path_gram(&self.gram, &xy, n, 500, Method::Lasso);
        let factor = match criterion {
            Criterion::Aic => 2.0,
            Criterion::Bic => (n as f64).ln(),
        };
        let noise_variance = self.ols.rss(&yc) / (n - p - 1) as f64;
        let mut residual = vec![0.0f64; n];
        let crit: Vec<f64> = path
            .coefs
            .iter()
            .map(|coef| {
                residual.copy_from_slice(&yc);
                let mut df = 0usize;
                for (j, &b) in coef.iter().enumerate() {
                    if b != 0.0 {
                        for (r, x) in residual.iter_mut().zip(&self.cols[j]) {
                            *r -= x * b;
                        }
                    }
                    if b.abs() > f64::EPSILON {
                        df += 1;
                    }
                }
                let rss = dot_long(&residual, &residual);
                n as f64 * (2.0 * std::f64::consts::PI * noise_variance).ln()
                    + rss / noise_variance
                    + factor * df as f64
            })
            .collect();
        // np.argmin: the first minimum, or the first NaN if there is one.
        let mut best = 0;
        for (k, &c) in crit.iter().enumerate() {
            if c.is_nan() {
                best = k;
                break;
            }
            if c < crit[best] {
                best = k;
            }
        }
        LassoLarsIcFit {
            coef: path.coefs[best].clone(),
            alpha: path.alphas[best],
            alphas: path.alphas,
            criterion: crit,
            noise_variance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const TOL: f64 = 1e-6;

    fn fixtures() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/lasso_lars_ic.json")).unwrap()
    }

    fn vec64(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    /// Columns of a row-major JSON matrix.
    fn columns(v: &Value) -> Vec<Vec<f64>> {
        let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(vec64).collect();
        (0..rows[0].len())
            .map(|j| rows.iter().map(|r| r[j]).collect())
            .collect()
    }

    fn close(a: f64, b: f64, scale: f64) -> bool {
        (a - b).abs() <= TOL * scale.max(1.0)
    }

    /// Every case of `tests/fixtures/gen_lasso_lars_ic.py` (scikit-learn 1.9.1): coef_, alpha_,
    /// alphas_, criterion_, noise_variance_ and the nonzero set to 1e-6 (relative above 1).
    #[test]
    fn lasso_lars_ic_matches_scikit_learn() {
        let fx = fixtures();
        let cases = fx["cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        let mut drops_seen = false;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let mut cols = columns(&fx["x"][case["x"].as_str().unwrap()]);
            if case["kind"] == "shap" {
                standard_scale(&mut cols);
            }
            let criterion = match case["ic"].as_str().unwrap() {
                "aic" => Criterion::Aic,
                _ => Criterion::Bic,
            };
            let ic = LassoLarsIc::new(&cols).unwrap();
            let fit = ic.fit(&vec64(&case["y"]), criterion);
            let want_alphas = vec64(&case["alphas"]);
            assert_eq!(fit.alphas.len(), want_alphas.len(), "{name}: path length");
            drops_seen |= want_alphas.len() > cols.len() + 1;
            for (a, b) in fit.alphas.iter().zip(&want_alphas) {
                assert!(close(*a, *b, b.abs()), "{name}: alphas {a} vs {b}");
            }
            let want_coef = vec64(&case["coef"]);
            for (a, b) in fit.coef.iter().zip(&want_coef) {
                assert!(close(*a, *b, b.abs()), "{name}: coef {a} vs {b}");
            }
            assert!(close(
                fit.alpha,
                case["alpha"].as_f64().unwrap(),
                fit.alpha.abs()
            ));
            let nv = case["noise_variance"].as_f64().unwrap();
            assert!(
                (fit.noise_variance - nv).abs() <= TOL * nv,
                "{name}: noise variance"
            );
            for (a, b) in fit.criterion.iter().zip(vec64(&case["criterion"])) {
                assert!(close(*a, b, b.abs()), "{name}: criterion {a} vs {b}");
            }
            let nonzero: Vec<usize> = (0..fit.coef.len())
                .filter(|&j| fit.coef[j] != 0.0)
                .collect();
            let want: Vec<usize> = case["nonzero"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(nonzero, want, "{name}: selected features");
        }
        assert!(drops_seen, "no fixture exercises a lasso drop");
    }

    #[test]
    fn scaler_matches_scikit_learn() {
        let fx = fixtures();
        for case in fx["cases"].as_array().unwrap() {
            if case["kind"] != "shap" {
                continue;
            }
            let raw = columns(&fx["x"][case["x"].as_str().unwrap()]);
            let mut scaled = raw.clone();
            standard_scale(&mut scaled);
            for (j, s) in vec64(&case["scale"]).iter().enumerate() {
                let i = raw[j].iter().position(|v| *v != 0.0).unwrap();
                let got = raw[j][i] / scaled[j][i];
                assert!((got - s).abs() <= 1e-12 * s, "scale {got} vs {s}");
            }
        }
    }

    #[test]
    fn too_few_samples_is_an_error() {
        let cols = vec![vec![1.0, 2.0, 3.0], vec![0.0, 1.0, 5.0]];
        assert!(LassoLarsIc::new(&cols).is_err());
    }
}
