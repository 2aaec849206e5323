"""Peers for benches/mlp.rs: PyTorch training samples/s and inference flows/s, ONNX Runtime fp32
inference flows/s, for the thesis `optimized` MLP 76→128→256→128→64→K (BatchNorm after the first
three Linear, dropout 0.3/0.4/0.2, ReLU/ReLU/ELU/ReLU).

Data: the rows and labels the Rust bench measures on, which it exports to target/mlp_bench/
(x.f32 row-major little-endian f32, y.u32, meta.json): 1,048,576 synthetic (resampled)
CIC-DDoS2019 rows through the default preprocess pipeline, K fine classes.

What is timed (each the mean of as many timed calls as criterion takes samples, 10, after one
untimed warm-up call; the min is kept beside it):
- pytorch_train_epoch vs mlp/mlp_train_epoch: one call = what one criterion iteration times, a
  whole fit of one epoch over the first 131,072 rows: a fresh model, AdamW (wd 0.01), OneCycleLR
  (max_lr 0.004, 128 steps, stepped per batch), balanced-sqrt class weights, a fresh shuffle, 128
  steps at batch 1024 (dropout, BatchNorm, weighted cross-entropy). Reported as samples/s.
- pytorch_infer_fp32 / onnxruntime_infer_fp32 vs mlp/mlp_infer_fp32: softmax probabilities of
  all 1,048,576 rows in batches of 8192, eval mode. ONNX model: built with onnx.helper from the
  trained eval-mode network with BatchNorm folded (Gemm + Relu/Elu + Softmax), i.e. the same
  serving graph as mlp-core's; checked against torch's output.
Threads: FLOWXAI_BENCH_THREADS (default: all CPUs) for torch (intra- and inter-op), BLAS and ORT
(intra_op); run the Rust bench with RAYON_NUM_THREADS and MATMUL_NUM_THREADS (mlp-core's
matrixmultiply GEMMs) set to the same number. Before timing it waits for the 1-minute load
average to fall below 1 (recorded).
Output: benches/results/mlp_peers-<UTC stamp>.json (raw samples, machine, criterion's numbers and
the ratios ours/peer when target/criterion/mlp has them).

Run from the repository root, after `cargo bench --bench mlp` (which writes the rows):
    FLOWXAI_BENCH_THREADS=2 .venv-peers/bin/python benches/peers/mlp_peers.py
or both sides back to back: `benches/run_pairs.sh mlp`. MLP_PEER_REPEATS overrides the 10 calls.
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
"""
import json
import os
import sys

import peerlib  # first: sets the thread variables before numpy/torch load

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

DATA = peerlib.ROOT / "target" / "mlp_bench"
INFER_BATCH, TRAIN_BATCH = 8192, 1024
TRAIN_ROWS = 1 << 17  # the Rust bench's TRAIN_ROWS: 128 steps of 1024
REPEATS = int(os.environ.get("MLP_PEER_REPEATS", "10"))  # criterion's sample_size for group mlp

if not (DATA / "meta.json").exists():
    sys.exit(f"{DATA}/meta.json missing: run `cargo bench --bench mlp` first (it exports the rows)")
meta = json.loads((DATA / "meta.json").read_text())
ROWS, F, K = int(meta["rows"]), int(meta["features"]), int(meta["classes"])
x_np = np.fromfile(DATA / "x.f32", dtype="<f4").reshape(ROWS, F)
y_np = np.fromfile(DATA / "y.u32", dtype="<u4").astype(np.int64)
assert y_np.shape == (ROWS,), (y_np.shape, ROWS)
x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
xt, yt = x[:TRAIN_ROWS], y[:TRAIN_ROWS]
ort_options = peerlib.pin_threads()
torch.manual_seed(42)
print(f"data: {meta.get('data', 'target/mlp_bench')} {ROWS} x {F}, {K} classes; torch {torch.__version__}, "
      f"onnxruntime {ort.__version__}, threads {peerlib.THREADS}, {REPEATS} timed calls each", flush=True)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(F, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.4),
            nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ELU(), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, K),
        )

    def forward(self, inp):
        return self.net(inp)


def balanced_sqrt_weights(labels):
    """mlp-core's `balanced_sqrt`: sqrt(n / (k_present * count)), mean 1 over present classes."""
    counts = torch.bincount(labels, minlength=K).double()
    present = counts > 0
    w = torch.zeros(K, dtype=torch.float64)
    w[present] = torch.sqrt(counts.sum() / (present.sum() * counts[present]))
    w[present] /= w[present].mean()
    return w.float()


def fit_one_epoch():
    """One criterion iteration's worth: init + 128 optimizer steps over TRAIN_ROWS rows."""
    model = Model()
    steps = (TRAIN_ROWS + TRAIN_BATCH - 1) // TRAIN_BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.004, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(weight=balanced_sqrt_weights(yt))
    model.train()
    perm = torch.randperm(TRAIN_ROWS)
    for i in range(steps):
        idx = perm[i * TRAIN_BATCH:(i + 1) * TRAIN_BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        sched.step()
    return model


def torch_infer(model):
    with torch.inference_mode():
        for i in range(0, ROWS, INFER_BATCH):
            torch.softmax(model(x[i:i + INFER_BATCH]), dim=1)


def folded_layers(model):
    mods = list(model.net)
    out, i = [], 0
    while i < len(mods):
        lin = mods[i]
        w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
        i += 1
        act = None
        while i < len(mods) and not isinstance(mods[i], nn.Linear):
            m = mods[i]
            if isinstance(m, nn.BatchNorm1d):
                s = m.weight.detach().double().numpy() / np.sqrt(m.running_var.double().numpy() + m.eps)
                w = w * s[:, None]
                b = (b - m.running_mean.double().numpy()) * s + m.bias.detach().double().numpy()
            elif isinstance(m, nn.ReLU):
                act = "Relu"
            elif isinstance(m, nn.ELU):
                act = "Elu"
            i += 1
        out.append((w.astype(np.float32), b.astype(np.float32), act))
    return out


def onnx_model(layers):
    nodes, inits, cur = [], [], "x"
    for j, (w, b, act) in enumerate(layers):
        inits += [numpy_helper.from_array(w, f"w{j}"), numpy_helper.from_array(b, f"b{j}")]
        nodes.append(helper.make_node("Gemm", [cur, f"w{j}", f"b{j}"], [f"g{j}"], transB=1))
        cur = f"g{j}"
        if act:
            nodes.append(helper.make_node(act, [cur], [f"a{j}"]))
            cur = f"a{j}"
    nodes.append(helper.make_node("Softmax", [cur], ["p"], axis=1))
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", F])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", K])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def ort_infer(sess):
    for i in range(0, ROWS, INFER_BATCH):
        sess.run(None, {"x": x_np[i:i + INFER_BATCH]})


peerlib.wait_idle()
train = peerlib.measure(fit_one_epoch, REPEATS, warmup=1)
model = fit_one_epoch()  # the network served below (trained weights, running BatchNorm stats)
model.eval()
torch_inf = peerlib.measure(lambda: torch_infer(model), REPEATS, warmup=1)
so = ort_options()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(onnx_model(folded_layers(model)).SerializeToString(), so,
                            providers=["CPUExecutionProvider"])
# Sanity: ORT's folded graph equals torch's eval output.
with torch.inference_mode():
    ref = torch.softmax(model(x[:256]), dim=1).numpy()
max_diff = float(np.abs(sess.run(None, {"x": x_np[:256]})[0] - ref).max())
assert max_diff < 1e-4, max_diff
ort_inf = peerlib.measure(lambda: ort_infer(sess), REPEATS, warmup=1)

results = {
    "pytorch_train_epoch": peerlib.compare(peerlib.criterion("mlp", "mlp_train_epoch"), train, TRAIN_ROWS),
    "pytorch_infer_fp32": peerlib.compare(peerlib.criterion("mlp", "mlp_infer_fp32"), torch_inf, ROWS),
    "onnxruntime_infer_fp32": peerlib.compare(peerlib.criterion("mlp", "mlp_infer_fp32"), ort_inf, ROWS),
}
for name, r in results.items():
    unit = "samples/s" if "train" in name else "flows/s"
    line = (f"{name:24s} peer mean {r['peer_per_s_mean']:12,.0f} {unit} (best {r['peer_per_s_best']:,.0f})")
    if "ratio_mean" in r:
        line += f" | ours mean {r['ours_per_s_mean']:12,.0f} | ours/peer {r['ratio_mean']:.2f}x"
    print(line)
peerlib.save("mlp_peers", {
    "data": {"source": str(DATA.relative_to(peerlib.ROOT)), **meta},
    "shapes": {"infer_batch": INFER_BATCH, "train_batch": TRAIN_BATCH, "train_rows": TRAIN_ROWS},
    "statistic": f"mean of {REPEATS} timed calls after 1 warm-up (min kept); criterion: mean of its samples",
    "ort_vs_torch_max_abs_diff": max_diff,
    "results": results,
})
