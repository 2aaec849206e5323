//! KernelSHAP on real CIC-DDoS2019 flows: additivity (Σ values + base = model output) must hold
//! to 1e-5 for every flow and class.
//!
//! Data: the first valid rows of `cic-ddos2019/balanced-sample/combined_data.csv` (real, not
//! resampled), 76 numeric feature columns, parsed with a minimal CSV reader so this test does
//! not depend on `flowdata`'s API while it is being written.
use mlp_core::inference::{Activation, DenseLayer, ServingMlp};
use ndarray::{Array1, Array2, ArrayView2};
use shap::{Background, KernelExplainer, KernelParams, L1Reg, Link, NSamples};

const N_FEATURES: usize = 76;
const N_CLASSES: usize = 5;

/// Reads up to `max_rows` rows whose 76 feature columns (after Source Port, Destination Port,
/// Protocol, Timestamp) are all finite.
fn load_rows(max_rows: usize) -> Array2<f32> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut rows = Vec::new();
    // The file is grouped by label; take every 20th line to see several classes.
    for line in text.lines().skip(1).step_by(20) {
        let fields: Vec<&str> = line.split(',').collect();
        let vals: Option<Vec<f32>> = fields[4..4 + N_FEATURES]
            .iter()
            .map(|f| f.trim().parse::<f32>().ok().filter(|v| v.is_finite()))
            .collect();
        if let Some(v) = vals {
            rows.extend(v);
            if rows.len() / N_FEATURES == max_rows {
                break;
            }
        }
    }
    let n = rows.len() / N_FEATURES;
    Array2::from_shape_vec((n, N_FEATURES), rows).unwrap()
}

/// A fixed random linear-softmax over standardised features.
fn linear_softmax(data: &Array2<f32>) -> impl Fn(ArrayView2<f32>) -> Array2<f32> + Sync {
    let mean = data.mean_axis(ndarray::Axis(0)).unwrap();
    let sd: Array1<f32> = data
        .std_axis(ndarray::Axis(0), 0.0)
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    // xorshift weights in [-0.5, 0.5): fixed, no RNG dependency needed.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let w = Array2::from_shape_simple_fn((N_FEATURES, N_CLASSES), || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    });
    move |x: ArrayView2<f32>| {
        let z = (&x - &mean) / &sd;
        let mut logits = z.dot(&w);
        for mut r in logits.rows_mut() {
            let m = r.fold(f32::MIN, |a, &b| a.max(b));
            r.mapv_inplace(|v| (v - m).exp());
            let s = r.sum();
            r.mapv_inplace(|v| v / s);
        }
        logits
    }
}

#[test]
fn kernel_shap_additivity_on_real_flows() {
    let data = load_rows(300);
    assert!(data.nrows() >= 200, "only {} valid rows", data.nrows());
    let model = shap::InfallibleModel(linear_softmax(&data));
    let explained = data.slice(ndarray::s![..12, ..]).to_owned();
    for (name, background) in [
        ("sample", Background::sample(data.view(), 40, 1).unwrap()),
        ("kmeans", Background::kmeans(data.view(), 10, 1).unwrap()),
    ] {
        for link in [Link::Identity, Link::Logit] {
            let params = KernelParams::new()
                .link(link)
                .l1_reg(L1Reg::None)
                .nsamples(NSamples::Auto)
                .seed(42)
                .check()
                .unwrap();
            let ex = KernelExplainer::new(&model, background.clone(), params)
                .unwrap()
                .explain(explained.view())
                .unwrap();
            let worst = ex.additivity_error().into_iter().fold(0.0, f64::max);
            eprintln!("{name} {link:?}: worst additivity error {worst:e}");
            assert!(worst <= 1e-5, "{name} {link:?}: additivity error {worst:e}");
            assert!(ex.values.iter().any(|v| *v != 0.0));
        }
    }
}

#[test]
fn kernel_shap_default_lars_keeps_at_most_ten_features() {
    let data = load_rows(300);
    let model = shap::InfallibleModel(linear_softmax(&data));
    let explained = data.slice(ndarray::s![..4, ..]).to_owned();
    let background = Background::sample(data.view(), 30, 3).unwrap();
    let params = KernelParams::new().seed(5).check().unwrap(); // num_features(10)
    let ex = KernelExplainer::new(&model, background, params)
        .unwrap()
        .explain(explained.view())
        .unwrap();
    let mut selected = 0;
    let mut worst: f64 = 0.0;
    for i in 0..ex.values.dim().0 {
        for k in 0..N_CLASSES {
            let nonzero = (0..N_FEATURES)
                .filter(|&j| ex.values[[i, j, k]] != 0.0)
                .count();
            assert!(
                nonzero <= 10,
                "flow {i} class {k}: {nonzero} non-zero values"
            );
            if nonzero == 0 {
                // shap returns all zeros for an output whose correlations LARS finds below
                // its tolerance; such an output is not additive by construction.
                continue;
            }
            selected += 1;
            let sum: f64 = (0..N_FEATURES).map(|j| ex.values[[i, j, k]]).sum();
            let error = (sum + ex.base_values[k] - ex.model_output[[i, k]]).abs();
            worst = worst.max(error);
        }
    }
    eprintln!("num_features(10): {selected} outputs with features, worst additivity {worst:e}");
    // Most outputs keep features (the values are not all zero), and every output that does is
    // additive within the tolerance of the other tests.
    assert!(
        selected * 2 > ex.values.dim().0 * N_CLASSES,
        "only {selected} outputs kept a feature"
    );
    assert!(worst <= 1e-5, "additivity error {worst:e}");
}

/// mlp-core's serving model of the `optimized` shape (76→128→256→128→64→k, ReLU/ELU), fixed
/// xorshift weights scaled He-style, over standardised inputs (the standardisation is a first
/// layer folded by hand: W·diag(1/sd), b − W·(mean/sd)).
fn serving_mlp(data: &Array2<f32>, classes: usize) -> ServingMlp {
    let mean = data.mean_axis(ndarray::Axis(0)).unwrap();
    let sd: Array1<f32> = data
        .std_axis(ndarray::Axis(0), 0.0)
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let sizes = [N_FEATURES, 128, 256, 128, 64, classes];
    let acts = [
        Activation::Relu,
        Activation::Elu,
        Activation::Relu,
        Activation::Elu,
        Activation::Identity,
    ];
    let layers = (0..5)
        .map(|l| {
            let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
            let scale = (24.0 / fan_in as f32).sqrt(); // uniform(−½, ½)·√(24/n): variance 2/n
            let mut weight = Array2::from_shape_simple_fn((fan_out, fan_in), || uniform() * scale);
            let mut bias = Array1::from_shape_simple_fn(fan_out, || uniform() * 0.1);
            if l == 0 {
                for o in 0..fan_out {
                    let mut shift = 0.0f32;
                    for j in 0..fan_in {
                        weight[[o, j]] /= sd[j];
                        shift += weight[[o, j]] * mean[j];
                    }
                    bias[o] -= shift;
                }
            }
            DenseLayer {
                weight,
                bias,
                activation: acts[l],
            }
        })
        .collect();
    ServingMlp::new(layers).unwrap()
}

/// KernelSHAP evaluates each distinct synthetic row once and reuses the background rows'
/// outputs, which is only valid if a row's output does not depend on the rest of the batch.
/// mlp-core's serving path (256-row parallel blocks, 8-row AVX-512 / 6-row AVX2 register tiles
/// with smaller tiles for the remainder) must therefore give bit-identical outputs for a row
/// whatever its batch, position and neighbours.
#[test]
fn serving_mlp_outputs_do_not_depend_on_the_batch() {
    let data = load_rows(600);
    let model = serving_mlp(&data, 17);
    let full = model.predict_proba(data.view());
    // Every row alone.
    for i in 0..data.nrows() {
        let one = model.predict_proba(data.slice(ndarray::s![i..i + 1, ..]));
        assert_eq!(one.row(0), full.row(i), "row {i} alone");
    }
    // Shifted and reversed batches put rows at other tile and block offsets.
    let n = data.nrows();
    for start in [1usize, 3, 7, 255, 257] {
        let part = model.predict_proba(data.slice(ndarray::s![start.., ..]));
        assert_eq!(part, full.slice(ndarray::s![start.., ..]), "offset {start}");
    }
    let order: Vec<usize> = (0..n).rev().collect();
    let reversed = model.predict_proba(data.select(ndarray::Axis(0), &order).view());
    for (k, &i) in order.iter().enumerate() {
        assert_eq!(reversed.row(k), full.row(i), "row {i} in a reversed batch");
    }
}

/// The bench's setting on real flows with mlp-core's model: AIC (shap "aic"), BIC and "auto"
/// (M ≈ 50+ varying features, 2M + 2048 coalitions ≪ 20 % of 2^M: auto = AIC) keep a strict
/// subset of the features for most outputs, and the values stay additive wherever a feature is
/// kept.
#[test]
fn kernel_shap_aic_bic_on_real_flows_with_the_serving_mlp() {
    let data = load_rows(300);
    let model = serving_mlp(&data, N_CLASSES);
    let predict = shap::InfallibleModel(|x: ArrayView2<f32>| model.predict_proba(x));
    let explained = data.slice(ndarray::s![..2, ..]).to_owned();
    let background = Background::sample(data.view(), 20, 7).unwrap();
    let run = |l1: L1Reg| {
        let params = KernelParams::new().l1_reg(l1).seed(11).check().unwrap();
        KernelExplainer::new(&predict, background.clone(), params)
            .unwrap()
            .explain(explained.view())
            .unwrap()
    };
    let aic = run(L1Reg::Aic);
    assert_eq!(aic.values, run(L1Reg::Auto).values, "auto must be AIC here");
    let bic = run(L1Reg::Bic);
    let none = run(L1Reg::None);
    let kept = |ex: &shap::Explanation| -> Vec<usize> {
        let mut kept = Vec::new();
        for i in 0..ex.values.dim().0 {
            for k in 0..N_CLASSES {
                let n = (0..N_FEATURES)
                    .filter(|&j| ex.values[[i, j, k]] != 0.0)
                    .count();
                kept.push(n);
            }
        }
        kept
    };
    let all = kept(&none);
    eprintln!("none: features with a value per (flow, class): {all:?}");
    for (name, ex) in [("aic", &aic), ("bic", &bic)] {
        let kept = kept(ex);
        eprintln!("{name}: features kept per (flow, class): {kept:?}");
        assert!(
            kept.iter().all(|&n| n > 0),
            "{name}: an output kept nothing"
        );
        assert!(
            kept.iter().zip(&all).all(|(a, n)| a < n),
            "{name} must drop features: {kept:?} vs {all:?}"
        );
        let errs = ex.additivity_error();
        for (i, e) in errs.iter().enumerate() {
            assert!(*e <= 1e-5, "{name}: flow {i} additivity {e:e}");
        }
    }
}
