use mlp_core::cpu;
use mlp_core::engine::{train_step, MaskSource, Workspace};
use mlp_core::{Architecture, Init, MlpParams, Network};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

#[test]
#[ignore]
fn probe() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let rows = 1024;
    let x: Vec<f32> = (0..rows * 76)
        .map(|_| rng.gen_range(-2.0f32..2.0))
        .collect();
    let y: Vec<usize> = (0..rows).map(|i| i % 17).collect();
    let w = vec![1.0f32; rows];
    let p = MlpParams::optimized().check().unwrap();
    let arch = Architecture {
        n_features: 76,
        hidden: p.hidden().to_vec(),
        n_classes: 17,
    };
    let mut net = Network::new(arch.clone(), Init::PyTorch, &mut rng).unwrap();
    let mut ws = Workspace::new(&net, rows);
    let iters = if std::env::var("STEP_ONLY").is_ok() {
        300
    } else {
        60
    };
    let t = Instant::now();
    for s in 0..iters {
        train_step(
            &mut net,
            &mut ws,
            &x,
            &y,
            &w,
            MaskSource::Random { seed: 1, step: s },
            None,
        );
    }
    let step = t.elapsed().as_secs_f64() / iters as f64;
    eprintln!(
        "step {:.3} ms  = {:.0} samples/s",
        step * 1e3,
        rows as f64 / step
    );
    if std::env::var("STEP_ONLY").is_ok() {
        return;
    }
    // GEMMs alone, per chunk of 256 rows, serial.
    let big = vec![0.5f32; 1024 * 256];
    let wts = vec![0.01f32; 256 * 256];
    let mut out = vec![0.0f32; 1024 * 256];
    let t = Instant::now();
    let mut flops = 0.0;
    for _ in 0..iters {
        for b in 0..arch.n_blocks() {
            let (k, n) = arch.block_dims(b);
            let bias = &wts[..n];
            for c in 0..4 {
                let xs = &big[c * 256 * k..(c + 1) * 256 * k];
                cpu::linear_forward_t(xs, 256, k, &wts, &wts, bias, &mut out[..256 * n]);
                if b > 0 {
                    cpu::linear_backward_input(
                        &big[..256 * n],
                        256,
                        n,
                        &wts,
                        k,
                        &mut out[..256 * k],
                    );
                }
            }
            let mut dw = vec![0.0f32; n * k];
            cpu::linear_backward_weight_rows(&big, 1024, n, 0, &big, k, &mut dw);
            flops += 2.0 * 1024.0 * (n * k) as f64 * if b > 0 { 3.0 } else { 2.0 };
        }
    }
    let g = t.elapsed().as_secs_f64() / iters as f64;
    eprintln!(
        "gemms {:.3} ms  {:.1} GFLOP/s",
        g * 1e3,
        flops / iters as f64 / g / 1e9
    );
    // per form
    for b in 0..arch.n_blocks() {
        let (k, n) = arch.block_dims(b);
        let t = Instant::now();
        for _ in 0..iters {
            for c in 0..4 {
                cpu::linear_forward_t(
                    &big[c * 256 * k..],
                    256,
                    k,
                    &wts,
                    &wts,
                    &wts[..n],
                    &mut out[..256 * n],
                );
            }
        }
        let f = t.elapsed().as_secs_f64() / iters as f64;
        let t = Instant::now();
        for _ in 0..iters {
            for _c in 0..4 {
                cpu::linear_backward_input(&big[..256 * n], 256, n, &wts, k, &mut out[..256 * k]);
            }
        }
        let bi = t.elapsed().as_secs_f64() / iters as f64;
        let mut dw = vec![0.0f32; n * k];
        let t = Instant::now();
        for _ in 0..iters {
            cpu::linear_backward_weight_rows(&big, 1024, n, 0, &big, k, &mut dw);
        }
        let bw = t.elapsed().as_secs_f64() / iters as f64;
        let gf = |s: f64| 2.0 * 1024.0 * (n * k) as f64 / s / 1e9;
        eprintln!(
            "block {b} {k}->{n}: fwd {:.1} bwd_in {:.1} bwd_w {:.1} GFLOP/s",
            gf(f),
            gf(bi),
            gf(bw)
        );
    }
}
