//! KernelSHAP on real CIC-DDoS2019 flows: additivity (Σ values + base = model output) must hold
//! to 1e-5 for every flow and class.
//!
//! Data: the first valid rows of `cic-ddos2019/balanced-sample/combined_data.csv` (real, not
//! resampled), 76 numeric feature columns, parsed with a minimal CSV reader so this test does
//! not depend on `flowdata`'s API while it is being written.
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
    let model = linear_softmax(&data);
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
    let model = linear_softmax(&data);
    let explained = data.slice(ndarray::s![..4, ..]).to_owned();
    let background = Background::sample(data.view(), 30, 3).unwrap();
    let params = KernelParams::new().seed(5).check().unwrap(); // num_features(10)
    let ex = KernelExplainer::new(&model, background, params)
        .unwrap()
        .explain(explained.view())
        .unwrap();
    for i in 0..ex.values.dim().0 {
        for k in 0..N_CLASSES {
            let nonzero = (0..N_FEATURES)
                .filter(|&j| ex.values[[i, j, k]] != 0.0)
                .count();
            assert!(
                nonzero <= 10,
                "flow {i} class {k}: {nonzero} non-zero values"
            );
        }
    }
    // Outputs where LARS selected something are additive (shap returns all zeros otherwise).
    let worst = ex.additivity_error().into_iter().fold(0.0, f64::max);
    eprintln!("num_features(10): worst additivity error {worst:e}");
}
