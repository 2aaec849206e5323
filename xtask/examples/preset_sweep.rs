//! Which preprocessing suits the `optimized` MLP: test macro-F1 per preset and seed on the real
//! CIC-DDoS2019 rows that `cargo xtask reproduce` uses (balanced sample ∪ raw heads, WebDDoS
//! excluded, 500 rows per class, stratified 70/15/15; the seed drives the cap, the split and
//! training, as in `reproduce --seed`).
//!
//! ```text
//! cargo run --release -p xtask --example preset_sweep -- log-robust default sklearn-quantile default:forest
//! cargo run --release -p xtask --example preset_sweep -- default piecewise-linear default:forest
//! SEEDS=42,1,2 cargo run --release -p xtask --example preset_sweep -- default
//! ```
//! Arguments are presets (`thesis`, `log-robust`, `default`, `piecewise-linear`) or `sklearn-quantile` (a
//! re-implementation of scikit-learn 1.9's `QuantileTransformer(output_distribution="normal")`
//! transform, to show why the default does not use it); `:forest` fits the Random Forest
//! instead of the MLP; `+no-dropout` (e.g. `default+no-dropout`) trains the MLP without the
//! thesis' dropout, to measure what that regularisation costs here. Seeds default to 42, 1, …, 7.
use std::path::PathBuf;

use anyhow::{bail, Result};
use flowxai::flowdata::{self, LabelLevel, ReadOptions, SplitFractions};
use flowxai::mlp_core::MlpParams;
use flowxai::preprocess::{normal_quantile, Preset};
use flowxai::report::metrics::ConfusionMatrix;
use flowxai::rf_baseline::linfa::traits::Fit;
use flowxai::rf_baseline::RandomForest;
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// numpy's `interp` (right-most knot among equal ones, as its binary search).
fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if x < xp[0] {
        return fp[0];
    }
    let j = xp.partition_point(|&t| t <= x);
    if j >= n {
        return fp[n - 1];
    }
    let i = j - 1;
    if xp[j] == xp[i] {
        return fp[i];
    }
    (fp[j] - fp[i]) / (xp[j] - xp[i]) * (x - xp[i]) + fp[i]
}

/// scikit-learn's `QuantileTransformer(n_quantiles=1000, output_distribution="normal")`:
/// 1,000 `np.percentile` references per column; values within 1e-7 of the training minimum
/// (maximum) map to Φ⁻¹(1e-7) (Φ⁻¹(1 − 1e-7)); others average the forward and backward
/// `interp`, clipped to [1e-7, 1 − 1e-7] before Φ⁻¹.
fn sklearn_quantile(train: ArrayView2<f32>, parts: &[ArrayView2<f32>]) -> Vec<Array2<f32>> {
    let n = train.nrows();
    let nq = 1000.min(n);
    let refs: Vec<f64> = (0..nq).map(|i| i as f64 / (nq - 1) as f64).collect();
    let neg_refs: Vec<f64> = refs.iter().rev().map(|r| -r).collect();
    let columns: Vec<(Vec<f64>, Vec<f64>)> = (0..train.ncols())
        .map(|j| {
            let mut c: Vec<f32> = train.column(j).to_vec();
            c.sort_by(f32::total_cmp);
            let mut q: Vec<f64> = refs
                .iter()
                .map(|&r| {
                    let v = (n - 1) as f64 * r;
                    let lo = v.floor() as usize;
                    let hi = (lo + 1).min(n - 1);
                    let (a, b) = (c[lo] as f64, c[hi] as f64);
                    a + (b - a) * (v - lo as f64)
                })
                .collect();
            for i in 1..q.len() {
                q[i] = q[i].max(q[i - 1]);
            }
            let neg_q = q.iter().rev().map(|v| -v).collect();
            (q, neg_q)
        })
        .collect();
    parts
        .iter()
        .map(|x| {
            Array2::from_shape_fn(x.dim(), |(i, j)| {
                let (q, neg_q) = &columns[j];
                let v = x[[i, j]] as f64;
                let u = if v - 1e-7 < q[0] {
                    0.0
                } else if v + 1e-7 > q[q.len() - 1] {
                    1.0
                } else {
                    0.5 * (interp(v, q, &refs) - interp(-v, neg_q, &neg_refs))
                };
                normal_quantile(u.clamp(1e-7, 1.0 - 1e-7)) as f32
            })
        })
        .collect()
}

/// The `optimized` recipe without its dropout (0.3/0.4/0.2 → 0): a diagnostic of how much the
/// thesis' regularisation costs on a training set of a few thousand rows, not a protocol option.
fn without_dropout(p: MlpParams) -> MlpParams {
    use flowxai::mlp_core::{Activation::*, HiddenSpec};
    p.hidden(vec![
        HiddenSpec::new(128, true, Relu, 0.0),
        HiddenSpec::new(256, true, Relu, 0.0),
        HiddenSpec::new(128, true, Elu, 0.0),
        HiddenSpec::new(64, false, Relu, 0.0),
    ])
}

fn main() -> Result<()> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/cic-ddos2019");
    let inputs = [
        data.join("balanced-sample/combined_data.csv"),
        data.join("raw-heads"),
    ];
    let (frame, _) = flowdata::read_csv(&inputs, &ReadOptions::default())?;
    let frame = frame.task_rows();
    let seeds: Vec<u64> = match std::env::var("SEEDS") {
        Ok(s) => s
            .split(',')
            .map(|v| v.trim().parse())
            .collect::<Result<_, _>>()?,
        Err(_) => vec![42, 1, 2, 3, 4, 5, 6, 7],
    };
    let variants: Vec<String> = std::env::args().skip(1).collect();
    if variants.is_empty() {
        bail!("name presets to compare, e.g. `log-robust default default:forest`");
    }
    let split_fractions = SplitFractions {
        train: 0.70,
        test: 0.15,
        valid: 0.15,
    };
    for variant in &variants {
        let (prep, forest) = match variant.strip_suffix(":forest") {
            Some(p) => (p, true),
            None => (variant.as_str(), false),
        };
        let (prep, no_dropout) = match prep.strip_suffix("+no-dropout") {
            Some(p) => (p, true),
            None => (prep, false),
        };
        let mut scores = Vec::new();
        let mut widths = Vec::new();
        for &seed in &seeds {
            let y = frame.targets(LabelLevel::Fine).y;
            let capped = frame.select(&flowdata::cap_per_class(&y, 500, &[], seed));
            let t = capped.targets(LabelLevel::Fine);
            let split = flowdata::stratified_split(&t.y, split_fractions, seed)?;
            let part = |rows: &[usize]| {
                let y: Vec<usize> = rows.iter().map(|&i| t.y[i] as usize).collect();
                (capped.x.select(Axis(0), rows), Array1::from(y))
            };
            let (x_train, y_train) = part(&split.train);
            let (x_valid, y_valid) = part(&split.valid);
            let (x_test, y_test) = part(&split.test);
            let [train, valid, test]: [Array2<f32>; 3] = if prep == "sklearn-quantile" {
                let out = sklearn_quantile(
                    x_train.view(),
                    &[x_train.view(), x_valid.view(), x_test.view()],
                );
                out.try_into().map_err(|_| anyhow::anyhow!("three parts"))?
            } else {
                let pipeline = prep.parse::<Preset>()?.params().fit(x_train.view())?;
                [
                    pipeline.transform(x_train.view())?,
                    pipeline.transform(x_valid.view())?,
                    pipeline.transform(x_test.view())?,
                ]
            };
            widths.push(train.ncols());
            let pred: Vec<usize> = if forest {
                let ds = flowxai::rf_baseline::linfa::Dataset::new(train, y_train);
                let f = RandomForest::params().n_trees(100).seed(seed).fit(&ds)?;
                flowxai::bundle::argmax_rows(f.predict_proba(test.view()).view())
            } else {
                let k = t.classes.len();
                let params = if no_dropout {
                    without_dropout(MlpParams::optimized())
                } else {
                    MlpParams::optimized()
                };
                params
                    .seed(seed)
                    .check()?
                    .fit(
                        train.view(),
                        y_train.view(),
                        Some((valid.view(), y_valid.view())),
                        Some(k),
                    )?
                    .predict(test.view())
                    .to_vec()
            };
            let truth = y_test.to_vec();
            let report = ConfusionMatrix::from_indices(&truth, &pred, &t.classes)?.report();
            scores.push(report.macro_avg.f1);
        }
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let each: Vec<String> = seeds
            .iter()
            .zip(&scores)
            .map(|(s, f)| format!("{s}: {f:.4}"))
            .collect();
        widths.dedup();
        let widths: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
        println!(
            "{variant:24} macro-F1 mean {mean:.4}  ({}); input columns {}",
            each.join(", "),
            widths.join("/")
        );
    }
    Ok(())
}
