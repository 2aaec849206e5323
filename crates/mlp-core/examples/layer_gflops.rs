//! GFLOP/s of the serving kernel (`PackedDense::forward`) per layer of the `optimized` shape,
//! on one thread, 256-row blocks (`INFER_BLOCK`) of synthetic inputs, then of the whole
//! `ServingMlp::predict_proba_into` on all rayon threads (8,192-row calls, best of 5 × 100):
//! where the serving path loses against the FMA peak (the KernelSHAP bench prints that peak).
//!
//!     cargo run --release -p mlp-core --example layer_gflops
use mlp_core::cpu::PackedDense;
use mlp_core::inference::{Activation, DenseLayer, ServingMlp, INFER_BLOCK};
use ndarray::{Array1, Array2};
use std::time::Instant;

fn main() {
    // (inputs, outputs, activation) of the shap bench's model 76→128→256→128→64→17.
    let shapes = [
        (76usize, 128usize, Activation::Relu),
        (128, 256, Activation::Elu),
        (256, 128, Activation::Relu),
        (128, 64, Activation::Elu),
        (64, 17, Activation::Identity),
    ];
    let rows = INFER_BLOCK;
    let (mut total_s, mut total_flop) = (0.0, 0.0);
    let weight = |n: usize, k: usize| -> Vec<f32> {
        (0..n * k)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.2)
            .collect()
    };
    let bias = |n: usize| -> Vec<f32> { (0..n).map(|i| (i % 7) as f32 * 0.01).collect() };
    for &(k, n, act) in &shapes {
        let (w, b) = (weight(n, k), bias(n));
        let layer = PackedDense::new(&w, n, k, &b, act);
        let x: Vec<f32> = (0..rows * k)
            .map(|i| (i * 104_729 % 997) as f32 / 997.0 - 0.3)
            .collect();
        let mut out = vec![0.0f32; rows * layer.n_pad];
        for _ in 0..200 {
            layer.forward(&x, rows, k, &mut out);
        }
        let iters = 20_000;
        let t = Instant::now();
        for _ in 0..iters {
            layer.forward(&x, rows, k, &mut out);
            std::hint::black_box(&out);
        }
        let s = t.elapsed().as_secs_f64() / iters as f64;
        let flop = 2.0 * (rows * k * n) as f64;
        total_s += s;
        total_flop += flop;
        println!(
            "{k:>3} → {n:>3} {act:?}: {:6.1} GFLOP/s useful ({:6.1} computed, {} padded columns), {:.2} µs per block",
            flop / s / 1e9,
            flop * layer.n_pad as f64 / n as f64 / s / 1e9,
            layer.n_pad,
            s * 1e6
        );
    }
    println!(
        "all layers: {:.1} GFLOP/s useful on one thread",
        total_flop / total_s / 1e9
    );

    let layers = shapes
        .iter()
        .map(|&(k, n, activation)| DenseLayer {
            weight: Array2::from_shape_vec((n, k), weight(n, k)).expect("shape"),
            bias: Array1::from(bias(n)),
            activation,
        })
        .collect();
    let mlp = ServingMlp::new(layers).expect("layers fit");
    let flop_per_row: f64 = shapes.iter().map(|&(k, n, _)| 2.0 * (k * n) as f64).sum();
    let x = Array2::from_shape_fn((8192, 76), |(i, j)| {
        ((i * 104_729 + j * 13) % 997) as f32 / 997.0 - 0.3
    });
    let mut out = Array2::zeros((8192, mlp.n_classes()));
    let mut best = 0.0f64;
    for round in 0..6 {
        let t = Instant::now();
        for _ in 0..100 {
            mlp.predict_proba_into(x.view(), out.view_mut());
        }
        let s = t.elapsed().as_secs_f64() / 100.0;
        if round > 0 {
            best = best.max(8192.0 * flop_per_row / s / 1e9);
        }
    }
    println!(
        "ServingMlp::predict_proba_into, {} threads: {best:.1} GFLOP/s useful (best of 5)",
        rayon::current_num_threads()
    );
}
