//! Parity with PyTorch 2.15 (fixture from `tests/fixtures/gen_torch_parity.py`, seed 1234):
//! train-mode logits, weighted CE loss, every parameter gradient, parameters and BatchNorm
//! running stats after three AdamW + OneCycleLR steps, eval-mode logits of the folded model.
//!
//! Tolerance: `|rust − torch| ≤ 1e-5 · max(|torch|, 0.1·max|torch_tensor|)`, i.e. 1e-5
//! relative, with the relative floor at 10 % of the tensor's largest magnitude so that entries
//! near zero (sums of cancelling terms) are judged against the tensor's scale.
//! Linear biases feeding BatchNorm have an exact-zero gradient in both (see the generator).
use mlp_core::cpu::{self, AdamStep};
use mlp_core::engine::{train_step, MaskSource, Workspace};
use mlp_core::{Activation, Architecture, HiddenSpec, Network, Schedule, ServingMlp};
use ndarray::ArrayView2;
use serde_json::Value;
use std::collections::BTreeMap;

const RTOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_parity.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn arch(f: &Value) -> Architecture {
    Architecture {
        n_features: f["n_features"].as_u64().unwrap() as usize,
        hidden: vec![
            HiddenSpec::new(8, true, Activation::Relu, 0.3),
            HiddenSpec::new(10, true, Activation::Elu, 0.2),
            HiddenSpec::new(7, false, Activation::Relu, 0.0),
        ],
        n_classes: f["n_classes"].as_u64().unwrap() as usize,
    }
}

fn tensors(v: &Value) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| {
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), (shape, f32s(&t["data"])))
        })
        .collect()
}

/// Returns the worst scaled error; panics when above RTOL.
fn assert_close(name: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let scale = want.iter().fold(0.0f64, |m, &w| m.max(f64::from(w).abs()));
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let denom = f64::from(w).abs().max(0.1 * scale).max(1e-30);
        let err = (f64::from(g) - f64::from(w)).abs() / denom;
        if err > worst {
            worst = err;
            if std::env::var("PARITY_VERBOSE").is_ok() {
                eprintln!("{name}[{i}] {g} {w} {err:.2e}");
            }
        }
    }
    eprintln!("{name}: worst {worst:.2e}");
    assert!(
        worst <= RTOL,
        "{name}: scaled error {worst:.2e} > {RTOL:.0e}"
    );
    worst
}

fn network_from_fixture(f: &Value) -> Network {
    Network::from_state_dict(arch(f), &tensors(&f["initial"]), &BTreeMap::new()).unwrap()
}

fn masks(f: &Value, step: usize) -> Vec<Vec<f32>> {
    let m = &f["masks"][step];
    // One buffer per hidden block; the third block has no dropout.
    vec![f32s(&m[0]), f32s(&m[1]), Vec::new()]
}

#[test]
fn forward_loss_and_gradients_match_pytorch() {
    let f = fixture();
    let mut net = network_from_fixture(&f);
    let x = f32s(&f["x"]);
    let y: Vec<usize> = f["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let cw = f32s(&f["class_weights"]);
    let rw: Vec<f32> = y.iter().map(|&c| cw[c]).collect();
    let mut ws = Workspace::new(&net, y.len());
    let mut logits = vec![0.0f32; y.len() * 4];
    let m = masks(&f, 0);
    let st = train_step(
        &mut net,
        &mut ws,
        &x,
        &y,
        &rw,
        MaskSource::Explicit(&m),
        Some(&mut logits),
    );
    let mut worst = assert_close("logits_train", &logits, &f32s(&f["logits_train"]));
    let loss = (st.loss_sum / st.weight_sum) as f32;
    worst = worst.max(assert_close(
        "loss",
        &[loss],
        &[f["loss"].as_f64().unwrap() as f32],
    ));
    let grads = f["grads"].as_object().unwrap();
    assert_eq!(
        grads.len(),
        net.layout().len(),
        "every parameter has a gradient"
    );
    for e in net.layout() {
        worst = worst.max(assert_close(
            &format!("grad {}", e.name),
            &ws.grads[e.range()],
            &f32s(&grads[&e.name]),
        ));
    }
    eprintln!("worst scaled error (logits, loss, grads): {worst:.2e}");
}

#[test]
fn three_adamw_onecycle_steps_match_pytorch() {
    let f = fixture();
    let mut net = network_from_fixture(&f);
    let x = f32s(&f["x"]);
    let y: Vec<usize> = f["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let cw = f32s(&f["class_weights"]);
    let rw: Vec<f32> = y.iter().map(|&c| cw[c]).collect();
    let mut ws = Workspace::new(&net, y.len());
    let (mut m, mut v) = (
        vec![0.0f32; net.params.len()],
        vec![0.0f32; net.params.len()],
    );
    let sched = Schedule::one_cycle_default();
    for step in 0..3 {
        let mk = masks(&f, step);
        train_step(
            &mut net,
            &mut ws,
            &x,
            &y,
            &rw,
            MaskSource::Explicit(&mk),
            None,
        );
        let (lr, b1) = sched.at(step, 4, 0.004, 0.9);
        assert!(
            (lr - f["lrs"][step].as_f64().unwrap()).abs() <= 1e-15,
            "lr at step {step}"
        );
        assert!(
            (b1 - f["betas1"][step].as_f64().unwrap()).abs() <= 1e-15,
            "beta1 at step {step}"
        );
        let h = AdamStep {
            lr,
            beta1: b1,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            t: step as u64 + 1,
            sklearn_form: false,
        };
        cpu::adam_step(&mut net.params, &ws.grads, &mut m, &mut v, h);
    }
    let want = tensors(&f["after3"]);
    let got = net.state_dict_f32();
    assert_eq!(got.len(), want.len());
    let mut worst = 0.0f64;
    for (name, (shape, vals)) in &want {
        let (gs, gv) = &got[name];
        assert_eq!(gs, shape, "{name} shape");
        worst = worst.max(assert_close(name, gv, vals));
    }
    for (_, n) in net.num_batches_tracked() {
        assert_eq!(n, f["num_batches_tracked"].as_i64().unwrap());
    }
    eprintln!("worst scaled error (params + running stats after 3 steps): {worst:.2e}");

    // Eval mode through the folded serving model.
    let serving = ServingMlp::new(net.fold()).unwrap();
    let xe = f32s(&f["x_eval"]);
    let xe = ArrayView2::from_shape((xe.len() / 6, 6), &xe).unwrap();
    let logits = serving.logits(xe);
    let w = assert_close(
        "logits_eval (folded)",
        logits.as_slice().unwrap(),
        &f32s(&f["logits_eval"]),
    );
    eprintln!("worst scaled error (eval logits, BatchNorm folded): {w:.2e}");
}
