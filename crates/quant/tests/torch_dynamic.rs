//! Dynamic int8 against PyTorch `quantize_dynamic` (fixture: fixtures/gen_torch_dynamic.py).
use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{Array1, Array2};
use quant::{ActivationRange, DynamicQuantParams, KernelKind, WeightGranularity};
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    let (m, k) = (rows.len(), rows[0].len());
    Array2::from_shape_vec((m, k), rows.into_iter().flatten().collect()).unwrap()
}

fn fixture() -> (Value, Vec<DenseLayer>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_dynamic.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let layers = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| DenseLayer {
            weight: matrix(&l["weight"]),
            bias: Array1::from(serde_json::from_value::<Vec<f32>>(l["bias"].clone()).unwrap()),
            activation: match l["activation"].as_str().unwrap() {
                "Relu" => Activation::Relu,
                "Elu" => Activation::Elu,
                _ => Activation::Identity,
            },
        })
        .collect();
    (v, layers)
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn int8_weights_and_scales_equal_pytorch() {
    let (v, layers) = fixture();
    for (gran, key) in [
        (WeightGranularity::PerTensor, "int_weights_per_tensor"),
        (WeightGranularity::PerChannel, "int_weights_per_channel"),
    ] {
        let model = DynamicQuantParams::new()
            .weight_granularity(gran)
            .quantize(&layers)
            .unwrap();
        for (i, t) in v[key].as_array().unwrap().iter().enumerate() {
            let scales: Vec<f32> = serde_json::from_value(t["scales"].clone()).unwrap();
            let int8 = matrix(&t["int8"]);
            let deq = model.dequantized_weight(i).unwrap();
            for ((r, c), &q) in int8.indexed_iter() {
                let s = if scales.len() == 1 {
                    scales[0]
                } else {
                    scales[r]
                };
                assert_eq!(deq[[r, c]], q * s, "{gran:?} layer {i} [{r}, {c}]");
            }
        }
    }
}

#[test]
fn dynamic_outputs_match_pytorch() {
    let (v, layers) = fixture();
    let x = matrix(&v["x"]);
    let fp32 = matrix(&v["fp32"]);
    let ours_fp32 = quant::fp32_logits(&layers, x.view()).unwrap();
    assert!(max_abs_diff(&ours_fp32, &fp32) < 1e-5);
    for (gran, key) in [
        (WeightGranularity::PerTensor, "dynamic_per_tensor"),
        (WeightGranularity::PerChannel, "dynamic_per_channel"),
    ] {
        let expected = matrix(&v[key]);
        let quant_err = max_abs_diff(&expected, &fp32);
        for kind in KernelKind::available() {
            let model = DynamicQuantParams::new()
                .weight_granularity(gran)
                .kernel(kind)
                .quantize(&layers)
                .unwrap();
            let got = model.logits(x.view()).unwrap();
            let d = max_abs_diff(&got, &expected);
            eprintln!(
                "{gran:?} {kind:?}: max |ours − torch| = {d:e} (torch int8 vs fp32: {quant_err:e})"
            );
            // Same integers, same f32 epilogue: only the last bits of the f32 arithmetic
            // (ELU's exp, the order of scale products) may differ.
            assert!(d < 1e-6, "{gran:?} {kind:?}: {d}");
        }
    }
}

#[test]
fn dynamic_range_is_per_batch_like_pytorch() {
    let (v, layers) = fixture();
    let x = matrix(&v["x"]);
    let expected = matrix(&v["dynamic_per_tensor_single_rows"]);
    let model = DynamicQuantParams::new().quantize(&layers).unwrap();
    let mut rows = Array2::zeros(expected.dim());
    for i in 0..expected.nrows() {
        let one = model.logits(x.slice(ndarray::s![i..i + 1, ..])).unwrap();
        rows.row_mut(i).assign(&one.row(0));
    }
    assert!(max_abs_diff(&rows, &expected) < 1e-6);
    // And a row's output really depends on its batch (the outlier row widens the range).
    let batch = model.logits(x.view()).unwrap();
    assert!(
        max_abs_diff(
            &rows,
            &batch.slice(ndarray::s![..expected.nrows(), ..]).to_owned()
        ) > 1e-4
    );
}

#[test]
fn per_row_range_equals_pytorch_run_one_flow_at_a_time() {
    // `ActivationRange::PerRow` on the whole batch must give what PyTorch's `quantize_dynamic`
    // model gives when each flow is its own batch (fixture: the first rows, one call each).
    let (v, layers) = fixture();
    let x = matrix(&v["x"]);
    let expected = matrix(&v["dynamic_per_tensor_single_rows"]);
    let batch_range = DynamicQuantParams::new()
        .quantize(&layers)
        .unwrap()
        .logits(x.view())
        .unwrap();
    let head = |a: &Array2<f32>| a.slice(ndarray::s![..expected.nrows(), ..]).to_owned();
    for kind in KernelKind::available() {
        let model = DynamicQuantParams::new()
            .activation_range(ActivationRange::PerRow)
            .kernel(kind)
            .quantize(&layers)
            .unwrap();
        assert_eq!(model.activation_range(), ActivationRange::PerRow);
        let got = model.logits(x.view()).unwrap();
        let d = max_abs_diff(&head(&got), &expected);
        assert!(d < 1e-6, "{kind:?}: {d}");
        // The per-batch model gives other numbers on the same rows (the check can fail).
        assert!(max_abs_diff(&head(&batch_range), &expected) > 1e-4);
    }
}
