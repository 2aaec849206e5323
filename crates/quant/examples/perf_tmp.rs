// TEMPORARY timing harness (to be deleted): random weights/inputs, exports for the peer script.
use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{Array1, Array2};
use quant::*;
use std::time::Instant;
fn main() {
    let dims = [76usize, 128, 256, 128, 64, 17];
    let acts = [
        Activation::Relu,
        Activation::Relu,
        Activation::Elu,
        Activation::Relu,
        Activation::Identity,
    ];
    let mut s = 1u64;
    let mut r = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let layers: Vec<DenseLayer> = dims
        .windows(2)
        .zip(acts)
        .map(|(d, a)| {
            let b = (6.0 / d[0] as f32).sqrt();
            DenseLayer {
                weight: Array2::from_shape_fn((d[1], d[0]), |_| r() * b),
                bias: Array1::from_shape_fn(d[1], |_| r() * 0.05),
                activation: a,
            }
        })
        .collect();
    let x = Array2::from_shape_fn((8192, 76), |_| r() * 2.0);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/quant-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let wr = |p: &str, v: &mut dyn Iterator<Item = f32>| {
        std::fs::write(
            dir.join(p),
            v.flat_map(f32::to_le_bytes).collect::<Vec<u8>>(),
        )
        .unwrap()
    };
    wr("x.f32", &mut x.iter().copied());
    let mut meta = vec![];
    for (i, l) in layers.iter().enumerate() {
        wr(&format!("w{i}.f32"), &mut l.weight.iter().copied());
        wr(&format!("b{i}.f32"), &mut l.bias.iter().copied());
        meta.push(serde_json::json!({"out": l.weight.nrows(), "in": l.weight.ncols(), "activation": format!("{:?}", l.activation)}));
    }
    std::fs::write(
        dir.join("index.json"),
        serde_json::json!({"data": "random (temporary)", "rows": 8192, "cols": 76, "layers": meta})
            .to_string(),
    )
    .unwrap();
    let dynm = DynamicQuantParams::new().quantize(&layers).unwrap();
    let stat = StaticQuantParams::new()
        .calibrate(&layers, x.view())
        .unwrap();
    let mut scratch = Scratch::new();
    let mut out = Array2::zeros((8192, 17));
    for (name, m) in [("dyn", &dynm), ("static", &stat)] {
        for kind in KernelKind::available() {
            if let Ok(o) = std::env::var("ONLY") {
                if o != format!("{name}-{kind:?}") {
                    continue;
                }
            }
            let m = m.clone().with_kernel(kind).unwrap();
            for _ in 0..3 {
                m.logits_into(x.view(), &mut scratch, out.view_mut())
                    .unwrap();
            }
            let mut ts = vec![];
            for _ in 0..200 {
                let t = Instant::now();
                m.logits_into(x.view(), &mut scratch, out.view_mut())
                    .unwrap();
                ts.push(t.elapsed().as_secs_f64());
            }
            ts.sort_by(f64::total_cmp);
            println!("{name} {kind:?}: {:.0} flows/s", 8192.0 / ts[100]);
        }
    }
}
