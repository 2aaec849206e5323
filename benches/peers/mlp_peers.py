"""Peers for benches/mlp.rs: PyTorch training samples/s and inference flows/s, ONNX Runtime fp32
inference flows/s, for the thesis `optimized` MLP 76→128→256→128→64→16 (BatchNorm after the first
three Linear, dropout 0.3/0.4/0.2, ReLU/ReLU/ELU/ReLU).

Same shapes as the Rust bench: 1,048,576 rows x 76 features, 16 classes; inference in batches of
8192, training 128 timed steps (131,072 samples) of a 1M-row epoch at batch 1024 (AdamW wd 0.01, OneCycleLR max_lr 0.004 stepped per batch,
weighted cross-entropy). Data: synthetic gaussian rows of that shape (dense fp32 speed does not
depend on the values). 2 threads everywhere (torch.set_num_threads(2), ORT intra_op_num_threads=2).
ONNX model: built with onnx.helper from the eval-mode network with BatchNorm folded (Gemm + Relu/Elu),
i.e. the same serving graph as mlp-core's.

Run: /work/pyenv/bin/python benches/peers/mlp_peers.py  (torch 2.15.0, onnxruntime 1.32.0)
     MLP_PEER_THREADS=1 /work/pyenv/bin/python benches/peers/mlp_peers.py  (single-threaded peers)
On a 2-core machine shared with other jobs, OpenMP-threaded peers (PyTorch training above all)
can be much slower with 2 threads than with 1 (spinning threads preempted at barriers): run both
and compare against the better one.
"""
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

ROWS, F, K = 1 << 20, 76, 16
INFER_BATCH, TRAIN_BATCH = 8192, 1024
TRAIN_STEPS = 128  # timed steps of the 1M-row epoch (same 131,072 samples as the Rust bench)
THREADS = int(os.environ.get("MLP_PEER_THREADS", "2"))  # 2 = the Rust side's cores
torch.set_num_threads(THREADS)
torch.manual_seed(42)
rng = np.random.default_rng(42)
x_np = rng.standard_normal((ROWS, F), dtype=np.float32)
y_np = rng.integers(0, K, ROWS)
x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)


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


def train_epoch(model):
    opt = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.01)
    steps = (ROWS + TRAIN_BATCH - 1) // TRAIN_BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.004, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(weight=torch.rand(K) + 0.5)
    model.train()
    perm = torch.randperm(ROWS)
    t0 = time.perf_counter()
    for i in range(TRAIN_STEPS + 3):
        if i == 3:  # three warm-up steps
            t0 = time.perf_counter()
        idx = perm[i * TRAIN_BATCH:(i + 1) * TRAIN_BATCH]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
    return TRAIN_STEPS * TRAIN_BATCH / (time.perf_counter() - t0)


def torch_infer(model):
    model.eval()
    best = 0.0
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, ROWS, INFER_BATCH):
                torch.softmax(model(x[i:i + INFER_BATCH]), dim=1)
            best = max(best, ROWS / (time.perf_counter() - t0))
    return best


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


def ort_infer(model_proto):
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(0, ROWS, INFER_BATCH):
            sess.run(None, {"x": x_np[i:i + INFER_BATCH]})
        best = max(best, ROWS / (time.perf_counter() - t0))
    return best, sess


model = Model()
train_sps = train_epoch(model)
torch_fps = torch_infer(model)
layers = folded_layers(model)
ort_fps, sess = ort_infer(onnx_model(layers))
# Sanity: ORT's folded graph equals torch's eval output.
with torch.inference_mode():
    ref = torch.softmax(model(x[:256]), dim=1).numpy()
assert np.abs(sess.run(None, {"x": x_np[:256]})[0] - ref).max() < 1e-4
print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, threads {THREADS}, rows {ROWS}")
print(f"pytorch_train_epoch: {train_sps:,.0f} samples/s (batch {TRAIN_BATCH})")
print(f"pytorch_infer_fp32: {torch_fps:,.0f} flows/s (batch {INFER_BATCH}, best of 3)")
print(f"onnxruntime_infer_fp32: {ort_fps:,.0f} flows/s (batch {INFER_BATCH}, best of 3)")
