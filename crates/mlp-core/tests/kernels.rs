//! The training kernels of `mlp_core::cpu` against plain reference loops: the three GEMM forms
//! (AVX-512 where the CPU has it, `matrixmultiply` otherwise) on odd shapes with masked column
//! tails and partial row tiles (tolerance 1e-5 relative to an f64 reference), the weight gradient
//! bit-identical for any split into row blocks, the bulk dropout masks identical to one
//! `next_u32` per element, the vectorised ELU within 2e-7 of `exp_m1`, and the select-form
//! activation backward identical to the branchy one, and the serving softmax within 4 ulp of f64.
use mlp_core::cpu;
use mlp_core::Activation;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (3, 5, 17),
    (9, 76, 33),
    (17, 16, 48),
    (8, 40, 32),
    (23, 64, 76),
    (256, 76, 128),
];

#[test]
fn gemm_forms_match_reference_loops() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (rows, k, n) in SHAPES {
        let x = random(rows * k, &mut rng);
        let w = random(n * k, &mut rng);
        let bias = random(n, &mut rng);
        let dz = random(rows * n, &mut rng);
        // forward: out = x · wᵀ + bias
        let mut wt = vec![0.0; n * k];
        cpu::transpose_into(&w, n, k, &mut wt);
        let mut out = vec![f32::NAN; rows * n];
        cpu::linear_forward_t(&x, rows, k, &w, &wt, &bias, &mut out);
        let want: Vec<f64> = (0..rows * n)
            .map(|e| {
                let (r, j) = (e / n, e % n);
                f64::from(bias[j])
                    + (0..k)
                        .map(|kk| f64::from(x[r * k + kk]) * f64::from(w[j * k + kk]))
                        .sum::<f64>()
            })
            .collect();
        assert_close(&out, &want, &format!("forward {rows}x{k}x{n}"));
        // input gradient: dx = dz · w
        let mut dx = vec![f32::NAN; rows * k];
        cpu::linear_backward_input(&dz, rows, n, &w, k, &mut dx);
        let want: Vec<f64> = (0..rows * k)
            .map(|e| {
                let (r, kk) = (e / k, e % k);
                (0..n)
                    .map(|j| f64::from(dz[r * n + j]) * f64::from(w[j * k + kk]))
                    .sum::<f64>()
            })
            .collect();
        assert_close(&dx, &want, &format!("dx {rows}x{k}x{n}"));
        // weight gradient: dw = dzᵀ · x, whole and split into row blocks of 1, 8 and 32
        let mut dw = vec![f32::NAN; n * k];
        cpu::linear_backward_weight_rows(&dz, rows, n, 0, &x, k, &mut dw);
        let want: Vec<f64> = (0..n * k)
            .map(|e| {
                let (j, kk) = (e / k, e % k);
                (0..rows)
                    .map(|r| f64::from(dz[r * n + j]) * f64::from(x[r * k + kk]))
                    .sum::<f64>()
            })
            .collect();
        assert_close(&dw, &want, &format!("dw {rows}x{k}x{n}"));
        for block in [1, 8, 32] {
            let mut split = vec![f32::NAN; n * k];
            for (t, c) in split.chunks_mut(block * k).enumerate() {
                cpu::linear_backward_weight_rows(&dz, rows, n, t * block, &x, k, c);
            }
            assert_eq!(split, dw, "dw split into blocks of {block} rows");
        }
    }
}

#[test]
fn bulk_dropout_masks_equal_one_draw_per_element() {
    for len in [1usize, 63, 64, 65, 300, 1000] {
        let mut bulk = ChaCha8Rng::seed_from_u64(7);
        let mut single = ChaCha8Rng::seed_from_u64(7);
        let mut mask = vec![0.0f32; len];
        cpu::dropout_mask(&mut bulk, 0.3, &mut mask);
        let threshold = (0.3f64 * 4_294_967_296.0) as u64;
        for &m in &mask {
            let keep = u64::from(single.next_u32()) >= threshold;
            assert_eq!(m, if keep { 1.0 / 0.7f32 } else { 0.0 });
        }
        // Both streams consumed the same number of words.
        assert_eq!(bulk.next_u32(), single.next_u32());
    }
}

#[test]
fn elu_forward_is_within_2e7_of_exp_m1() {
    let xs: Vec<f32> = (0..4001)
        .map(|i| -20.0 + i as f32 * 0.01)
        .chain([-1e-6, -1e-30, 0.0, -0.0, -87.0, -200.0, 3.0])
        .collect();
    let mut got = xs.clone();
    cpu::activation_forward(Activation::Elu, &mut got);
    for (&x, &g) in xs.iter().zip(&got) {
        let want = if x <= 0.0 { x.exp_m1() } else { x };
        assert!(
            (g - want).abs() <= 2e-7 * want.abs().max(1.0),
            "elu({x}) = {g}, want {want}"
        );
    }
}

#[test]
fn activation_backward_equals_branchy_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let out = random(1000, &mut rng);
    let grad = random(1000, &mut rng);
    for act in [Activation::Relu, Activation::Elu] {
        let mut got = grad.clone();
        cpu::activation_backward(act, &out, &mut got);
        for ((&o, &g), &r) in out.iter().zip(&grad).zip(&got) {
            let want = match act {
                Activation::Relu if o <= 0.0 => 0.0,
                Activation::Elu if o <= 0.0 => g * (o + 1.0),
                _ => g,
            };
            assert_eq!(r.to_bits(), want.to_bits());
        }
    }
}

#[test]
fn strided_softmax_is_within_4_ulp_of_f64_and_leaves_padding_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for k in [1usize, 2, 15, 16, 17, 31, 32, 33, 40] {
        let (rows, ld) = (13, k.div_ceil(32) * 32 + 3);
        let mut data: Vec<f32> = (0..rows * ld)
            .map(|_| rng.gen_range(-30.0f32..30.0))
            .collect();
        // One row of equal logits and one with a huge spread (exp underflows to 0).
        data[..k].iter_mut().for_each(|v| *v = 2.5);
        if k > 1 {
            data[ld] = 200.0;
        }
        let before = data.clone();
        cpu::softmax_rows_strided(&mut data, rows, ld, k);
        for r in 0..rows {
            let x = &before[r * ld..r * ld + k];
            // The reference starts from the same f32 differences x − max (their rounding is
            // part of any f32 softmax), then works in f64.
            let m = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
            let e: Vec<f64> = x.iter().map(|&v| f64::from(v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            for j in 0..ld {
                let got = data[r * ld + j];
                if j < k {
                    let want = e[j] / s;
                    assert!(
                        (f64::from(got) - want).abs()
                            <= 4.0 * f64::from(f32::EPSILON) * want + 1e-37,
                        "k={k} row {r} col {j}: {got} vs {want}"
                    );
                } else {
                    assert_eq!(
                        got.to_bits(),
                        before[r * ld + j].to_bits(),
                        "k={k} padding {j} written"
                    );
                }
            }
        }
    }
}
