//! Manual speed probe (ignored; timings are never asserted):
//! `cargo test -p mlp-core --test speed_probe -- --ignored --nocapture`.
use mlp_core::{Architecture, Init, MlpParams, Network, ServingMlp};
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
#[ignore = "manual timing probe, never asserted: cargo test -p mlp-core --test speed_probe -- --ignored --nocapture"]
fn speed_probe() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let rows = 1 << 17;
    let x = Array2::from_shape_fn((rows, 76), |_| rng.gen_range(-2.0f32..2.0));
    let y = Array1::from_shape_fn(rows, |i| i % 16);
    let p = MlpParams::optimized()
        .max_epochs(1)
        .early_stopping(None)
        .check()
        .unwrap();
    let arch = Architecture {
        n_features: 76,
        hidden: p.hidden().to_vec(),
        n_classes: 16,
    };
    let net = Network::new(arch, Init::PyTorch, &mut rng).unwrap();
    let s = ServingMlp::new(net.fold()).unwrap();
    let mut out = Array2::<f32>::zeros((8192, 16));
    for _ in 0..3 {
        let (t, c) = (std::time::Instant::now(), cpu_secs());
        for xb in x.axis_chunks_iter(Axis(0), 8192) {
            s.predict_proba_into(xb, out.view_mut());
        }
        let (w, cs) = (t.elapsed().as_secs_f64(), cpu_secs() - c);
        eprintln!(
            "infer: {:.0} flows/s wall, {:.0} flows per cpu-second",
            rows as f64 / w,
            rows as f64 / cs
        );
    }
    let (t, c) = (std::time::Instant::now(), cpu_secs());
    let xs = x.slice(ndarray::s![..32768, ..]);
    p.fit(xs, y.slice(ndarray::s![..32768]), None, Some(16))
        .unwrap();
    eprintln!(
        "train: {:.0} samples/s wall, {:.0} per cpu-second",
        32768.0 / t.elapsed().as_secs_f64(),
        32768.0 / (cpu_secs() - c)
    );
}

/// Process user+system CPU seconds (Linux /proc; 10 ms resolution).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
