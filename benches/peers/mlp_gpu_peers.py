"""GPU peer for benches/gpu.rs: PyTorch on the same CUDA device and shapes as the Rust bench.

The thesis `optimized` MLP 76→128→256→128→64→16 (BatchNorm after the first three Linear,
dropout 0.3/0.4/0.2, ReLU/ReLU/ELU/ReLU), AdamW (wd 0.01) + OneCycleLR (max_lr 0.004, stepped
per batch), weighted cross-entropy, batch 1024.

- train epoch: 1,354,553 rows resident on the GPU, a fresh permutation, 1,323 steps; timed
  with a synchronize at both ends, after one warm-up epoch (cuBLAS handles, allocator). Eager
  PyTorch, fp32 matmuls (PyTorch's default, allow_tf32=False), then the same with TF32 allowed.
- inference: eval mode, inference_mode, all 1,354,553 rows resident, logits of the whole set
  in chunks of 65,536 rows (the largest chunk that did not run slower), fp32 and TF32; median of
  CUDA-event timings over 20 runs after 3 warm-ups.

Data: synthetic gaussian rows of that shape (dense fp32 speed does not depend on the values).

Run: python3 benches/peers/mlp_gpu_peers.py   (on the GPU machine; prints torch and CUDA versions)
"""
import statistics
import time

import torch
from torch import nn

ROWS, F, K = 1_354_553, 76, 16
TRAIN_BATCH, INFER_CHUNK = 1024, 65_536
dev = torch.device("cuda")
torch.manual_seed(42)
x = torch.randn(ROWS, F, device=dev)
y = torch.randint(0, K, (ROWS,), device=dev)


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


def train_epoch_seconds(model):
    steps = (ROWS + TRAIN_BATCH - 1) // TRAIN_BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.004, total_steps=2 * steps)
    loss_fn = nn.CrossEntropyLoss(weight=torch.rand(K, device=dev) + 0.5)
    model.train()
    times = []
    for _epoch in range(2):  # the first is the warm-up
        perm = torch.randperm(ROWS, device=dev)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            idx = perm[i * TRAIN_BATCH:(i + 1) * TRAIN_BATCH]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times[1]


def infer_flows_per_s(model):
    model.eval()
    out = torch.empty(ROWS, K, device=dev)
    ms = []
    with torch.inference_mode():
        for rep in range(23):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for i in range(0, ROWS, INFER_CHUNK):
                out[i:i + INFER_CHUNK] = model(x[i:i + INFER_CHUNK])
            end.record()
            torch.cuda.synchronize()
            if rep >= 3:
                ms.append(start.elapsed_time(end))
    return ROWS / (statistics.median(ms) / 1e3)


print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {torch.cuda.get_device_name()}")
print("data: synthetic gaussian", ROWS, "x", F, K, "classes")
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    tag = "tf32" if tf32 else "fp32"
    model = Model().to(dev)
    secs = train_epoch_seconds(model)
    print(f"pytorch_cuda_train_epoch_{tag}: {secs:.3f} s ({ROWS / secs:,.0f} samples/s, batch {TRAIN_BATCH})")
    print(f"pytorch_cuda_infer_resident_{tag}: {infer_flows_per_s(model):,.0f} flows/s "
          f"(chunks of {INFER_CHUNK}, median of 20)")
