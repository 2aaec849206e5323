"""GPU peer for benches/gpu.rs: PyTorch on the same CUDA device and rows as the Rust bench.

The thesis `optimized` MLP 76→128→256→128→64→K (BatchNorm after the first three Linear,
dropout 0.3/0.4/0.2, ReLU/ReLU/ELU/ReLU), AdamW (wd 0.01) + OneCycleLR (max_lr 0.004, stepped
per batch), balanced-sqrt weighted cross-entropy, batch 1024.

Data: the rows and labels benches/gpu.rs measures on, which it exports to target/gpu_bench/
(x.f32, y.u32, meta.json; 1,354,553 synthetic (resampled) CIC-DDoS2019 rows through the default
preprocess pipeline), resident on the GPU.

What is timed, each the mean of GPU_PEER_REPEATS samples (default 10, criterion's sample_size for
the gpu group; 3 with GPU_BENCH_QUICK=1), min kept beside it:
- train epoch (vs gpu/train_epoch_cuda): per sample a fresh model, optimizer and permutation
  (not timed), then the 1,323 steps of one epoch, timed with a synchronize at both ends, after
  one untimed warm-up epoch (cuBLAS handles, allocator). Eager PyTorch, fp32 matmuls (PyTorch's
  default, allow_tf32=False), then the same with TF32 allowed.
- inference (vs gpu/infer_resident_*): eval mode, inference_mode, all rows resident, logits of the
  whole set in chunks of 65,536 rows; per sample CUDA events around 10 passes (per-pass time
  kept), after 3 warm-up passes; fp32 and TF32.
Threads: FLOWXAI_BENCH_THREADS for torch's CPU side (hardly used). Waits for a 1-minute load
average below 1 first, at most 60 s unless FLOWXAI_BENCH_IDLE_TIMEOUT says otherwise (recorded,
with "idle": false when it timed out). Output: benches/results/mlp_gpu_peers-<UTC stamp>.json with the
criterion numbers of groups gpu and cpu and the ratios where target/criterion has them.

Run from the repository root on the GPU machine, after the bench (which writes the rows):
    cargo bench --bench gpu --features cuda
    python3 benches/peers/mlp_gpu_peers.py
(benches/gpu/run.sh does both; only torch is needed there, numpy is optional.) A venv with
torch: `python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt`.
"""
import json
import os
import pathlib
import sys
import time

import peerlib  # first: sets the thread variables before torch loads

import torch
from torch import nn

DATA = peerlib.ROOT / "target" / "gpu_bench"
if not (DATA / "meta.json").exists():  # the bench writes relative to its working directory
    DATA = pathlib.Path("target/gpu_bench").resolve()
TRAIN_BATCH, INFER_CHUNK, PASSES = 1024, 65_536, 10
QUICK = os.environ.get("GPU_BENCH_QUICK") == "1"
REPEATS = int(os.environ.get("GPU_PEER_REPEATS", "3" if QUICK else "10"))

if not (DATA / "meta.json").exists():
    sys.exit(f"{DATA}/meta.json missing: run the gpu bench first (it exports the rows)")
meta = json.loads((DATA / "meta.json").read_text())
ROWS, F, K = int(meta["rows"]), int(meta["features"]), int(meta["classes"])
dev = torch.device("cuda")


def read_raw(path, dtype_np, dtype_torch):
    try:
        import numpy as np

        return torch.from_numpy(np.fromfile(path, dtype=dtype_np))
    except ImportError:
        return torch.frombuffer(bytearray(path.read_bytes()), dtype=dtype_torch)


x = read_raw(DATA / "x.f32", "<f4", torch.float32).reshape(ROWS, F).to(dev)
y = read_raw(DATA / "y.u32", "<i4", torch.int32).to(torch.int64).to(dev)  # labels < 2^31
peerlib.pin_threads()
torch.manual_seed(42)


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
    counts = torch.bincount(labels, minlength=K).double()
    present = counts > 0
    w = torch.zeros(K, dtype=torch.float64, device=labels.device)
    w[present] = torch.sqrt(counts.sum() / (present.sum() * counts[present]))
    w[present] /= w[present].mean()
    return w.float()


WEIGHTS = balanced_sqrt_weights(y)


def train_epoch_seconds():
    """Seconds of the steps of one epoch of a fresh model (set-up not timed)."""
    model = Model().to(dev)
    steps = (ROWS + TRAIN_BATCH - 1) // TRAIN_BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.004, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(weight=WEIGHTS)
    model.train()
    perm = torch.randperm(ROWS, device=dev)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        idx = perm[i * TRAIN_BATCH:(i + 1) * TRAIN_BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        sched.step()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, model


def infer_pass_seconds(model, out):
    """Per-pass seconds of PASSES passes over all rows (CUDA events)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(PASSES):
        for i in range(0, ROWS, INFER_CHUNK):
            out[i:i + INFER_CHUNK] = model(x[i:i + INFER_CHUNK])
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / PASSES


print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {torch.cuda.get_device_name()}")
print(f"data: {meta.get('data', 'target/gpu_bench')} {ROWS} x {F}, {K} classes; {REPEATS} samples each")
# At most 60 s by default (FLOWXAI_BENCH_IDLE_TIMEOUT): GPU time is lent by the minute, and the
# load the CPU bench leaves behind matters little to GPU timings; the load reached is recorded.
peerlib.wait_idle(timeout_s=float(os.environ.get("FLOWXAI_BENCH_IDLE_TIMEOUT", "60")))
crit = {(g, i): peerlib.criterion(g, i) for g in ("gpu", "cpu") for i in peerlib.criterion_ids(g)}
results = {}
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    tag = "tf32" if tf32 else "fp32"
    train_epoch_seconds()  # warm-up
    secs, model = [], None
    for _ in range(REPEATS):
        s, model = train_epoch_seconds()
        secs.append(s)
    train = peerlib.stats(secs)
    model.eval()
    out = torch.empty(ROWS, K, device=dev)
    with torch.inference_mode():
        for _ in range(3):
            for i in range(0, ROWS, INFER_CHUNK):
                out[i:i + INFER_CHUNK] = model(x[i:i + INFER_CHUNK])
        torch.cuda.synchronize()
        infer = peerlib.stats([infer_pass_seconds(model, out) for _ in range(REPEATS)])
    results[f"pytorch_cuda_train_epoch_{tag}"] = peerlib.compare(crit.get(("gpu", "train_epoch_cuda")), train, ROWS)
    # Our fp32 and 3xTF32 kernels (fp32 accuracy) against PyTorch fp32; our TF32 against PyTorch TF32.
    ours = [i for (g, i) in crit if g == "gpu" and i.startswith("infer_resident_")
            and (("_tf32" in i) == tf32)]
    results[f"pytorch_cuda_infer_resident_{tag}"] = {
        "peer": peerlib.compare(None, infer, ROWS),
        "vs": {i: peerlib.compare(crit[("gpu", i)], infer, ROWS) for i in ours},
    }
    r = results[f"pytorch_cuda_train_epoch_{tag}"]
    print(f"pytorch_cuda_train_epoch_{tag}: mean {train['mean_s']:.3f} s ({r['peer_per_s_mean']:,.0f} samples/s, "
          f"best {train['min_s']:.3f} s)" + (f" | ours/peer {r['ratio_mean']:.2f}x" if "ratio_mean" in r else ""))
    print(f"pytorch_cuda_infer_resident_{tag}: mean {ROWS / infer['mean_s']:,.0f} flows/s "
          f"(chunks of {INFER_CHUNK}, best {ROWS / infer['min_s']:,.0f})")
    for i, c in results[f"pytorch_cuda_infer_resident_{tag}"]["vs"].items():
        if "ratio_mean" in c:
            print(f"    gpu/{i}: ours {c['ours_per_s_mean']:,.0f} flows/s, ours/peer {c['ratio_mean']:.2f}x")
peerlib.save("mlp_gpu_peers", {
    "data": {"source": str(DATA), **meta},
    "shapes": {"train_batch": TRAIN_BATCH, "infer_chunk": INFER_CHUNK, "passes_per_infer_sample": PASSES},
    "statistic": f"mean of {REPEATS} samples after warm-up (min kept); criterion: mean of its samples",
    "results": results,
    "criterion_cpu_group": {i: c for (g, i), c in crit.items() if g == "cpu"},
})
