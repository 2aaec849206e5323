"""Peers of `cargo bench --bench quant` (group mlp_infer_int8): ONNX Runtime int8 dynamic and
PyTorch `quantize_dynamic` on the same weights and the same synthetic (resampled) inputs, which
the Rust bench exports to target/quant-bench/ (x.f32, w*.f32, b*.f32, index.json).

Each engine is timed on the whole batch (8192 flows) `--repeats` times (default 30, criterion's
sample_size for this group) after 3 warm-up calls; the MEAN is reported as flows/s (criterion
reports the mean of its samples), with the median and the best beside it. Single-flow latency
is the mean of 2000 calls on one row (after 50 warm-up calls), compared with
mlp_infer_int8_single_flow/*. `--cpu-time` adds ORT int8 flows per CPU-second (process CPU time
of all threads, mean and best of 15 rounds of 10 batches; the Rust side's QUANT_CPU_TIME=1 line
is the best of 15 rounds).
Threads: `--threads`, default FLOWXAI_BENCH_THREADS (default: all CPUs), for ORT intra_op,
torch and BLAS; run the Rust bench with RAYON_NUM_THREADS set to the same number. Waits for the
1-minute load average to fall below 1 before timing (recorded).
Output: benches/results/quant_peers-<UTC stamp>.json (raw samples, machine, criterion's numbers
for every mlp_infer_int8 id found, and the ratios ours/peer).

Run from the repository root, after the Rust bench has exported its data:
    cargo bench --bench quant
    .venv-peers/bin/python benches/peers/quant_peers.py [--threads N] [--repeats 30] [--ort-only]
or both sides back to back: `benches/run_pairs.sh quant`.
`--ort-only` times only ONNX Runtime int8 (what `mlp_infer_int8` is compared with).
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
Versions used for the report: torch 2.15.0 (CPU), onnxruntime 1.32.0, onnx 1.23.2.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import peerlib  # first: sets the thread variables before numpy/torch load

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "target", "quant-bench")


def load():
    idx_path = os.path.join(DATA, "index.json")
    if not os.path.exists(idx_path):
        sys.exit(f"{idx_path} missing: run `cargo bench --bench quant` first")
    with open(idx_path) as f:
        index = json.load(f)
    x = np.fromfile(os.path.join(DATA, "x.f32"), dtype="<f4").reshape(index["rows"], index["cols"])
    layers = []
    for i, l in enumerate(index["layers"]):
        w = np.fromfile(os.path.join(DATA, f"w{i}.f32"), dtype="<f4").reshape(l["out"], l["in"])
        b = np.fromfile(os.path.join(DATA, f"b{i}.f32"), dtype="<f4")
        layers.append((w, b, l["activation"]))
    return index, x, layers


def time_batches(fn, repeats):
    """peerlib.measure over `repeats` calls after 3 warm-ups: mean (compared), median, min."""
    return peerlib.measure(fn, repeats, warmup=3)


def cpu_rate(fn, n, rounds=15, per_round=10):
    """Flows per CPU-second (process CPU time of all threads) over `rounds` rounds of
    `per_round` batches: mean and best round."""
    fn()
    per_batch = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(per_round):
            fn()
        per_batch.append((time.process_time() - t0) / per_round)
    return {"mean_flows_per_cpu_s": n / statistics.fmean(per_batch),
            "best_flows_per_cpu_s": n / min(per_batch), "cpu_s_per_batch": per_batch}


def time_single(fn, calls=2000):
    """Mean seconds per call over `calls` calls after 50 warm-ups (a mean: one timer around all)."""
    for _ in range(50):
        fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=peerlib.THREADS,
                    help="ORT intra_op / torch / BLAS threads (default FLOWXAI_BENCH_THREADS, else all CPUs)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--ort-only", action="store_true", help="time only ONNX Runtime int8")
    ap.add_argument("--cpu-time", action="store_true",
                    help="also report ORT int8 flows per CPU-second (process CPU time of all threads)")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    import torch.nn as nn
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize_dynamic

    ort_options = peerlib.pin_threads(args.threads)
    torch.backends.quantized.engine = "fbgemm"
    index, x, layers = load()
    mods = []
    for w, b, act in layers:
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if act == "Relu":
            mods.append(nn.ReLU())
        elif act == "Elu":
            mods.append(nn.ELU())
    model = nn.Sequential(*mods).eval()
    xt = torch.from_numpy(x)
    n = x.shape[0]
    batch, single, cpu = {}, {}, {}
    peerlib.wait_idle()

    with torch.inference_mode():
        fp32_out = model(xt)
        qt_out = None
        if not args.ort_only:
            batch["pytorch_fp32"] = time_batches(lambda: model(xt), args.repeats)
            qmodel = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
            qt_out = qmodel(xt)
            batch["pytorch_dynamic_int8"] = time_batches(lambda: qmodel(xt), args.repeats)
            one = xt[:1]
            single["pytorch_dynamic_int8"] = time_single(lambda: qmodel(one))

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = os.path.join(tmp, "mlp.onnx")
        int8_path = os.path.join(tmp, "mlp_int8.onnx")
        torch.onnx.export(model, xt[:1], fp32_path, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        ort_quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
        so = ort_options()
        sess32 = ort.InferenceSession(fp32_path, so, providers=["CPUExecutionProvider"])
        sess8 = ort.InferenceSession(int8_path, so, providers=["CPUExecutionProvider"])
        ort_out = sess8.run(None, {"x": x})[0]
        if not args.ort_only:
            batch["onnxruntime_fp32"] = time_batches(lambda: sess32.run(None, {"x": x}), args.repeats)
        batch["onnxruntime_dynamic_int8"] = time_batches(lambda: sess8.run(None, {"x": x}), args.repeats)
        if args.cpu_time:
            cpu["onnxruntime_dynamic_int8"] = cpu_rate(lambda: sess8.run(None, {"x": x}), n)
        if not args.ort_only:
            one = x[:1]
            single["onnxruntime_dynamic_int8"] = time_single(lambda: sess8.run(None, {"x": one}))

    # criterion's numbers: every int8 variant/kernel of the batch group, and the single-flow group.
    ours_batch = {i: peerlib.criterion("mlp_infer_int8", i) for i in peerlib.criterion_ids("mlp_infer_int8")}
    ours_single = {i: peerlib.criterion("mlp_infer_int8_single_flow", i)
                   for i in peerlib.criterion_ids("mlp_infer_int8_single_flow")}
    results = {}
    for name, st in batch.items():
        r = {"peer": peerlib.compare(None, st, n)}
        if name.endswith("int8"):
            r["vs"] = {i: peerlib.compare(c, st, n) for i, c in ours_batch.items()}
        results[name] = r
        print(f"{name:26s} mean {n / st['mean_s']:12,.0f} flows/s (median {n / st['median_s']:,.0f}, "
              f"best {n / st['min_s']:,.0f}; {st['repeats']} calls)")
        for i, c in r.get("vs", {}).items():
            if "ratio_mean" in c:
                print(f"    mlp_infer_int8/{i}: ours mean {c['ours_per_s_mean']:,.0f} flows/s, ours/peer {c['ratio_mean']:.2f}x")
    singles = {}
    for name, sec in single.items():
        singles[name] = {"mean_s_per_call": sec, "mean_us_per_call": sec * 1e6, "calls": 2000,
                         "vs": {i: {"criterion": c, "ratio_mean": c["per_s"] * sec}
                                for i, c in ours_single.items() if c and c.get("per_s")}}
        print(f"{name} single flow: mean {sec * 1e6:.2f} us/call")

    fp32_np = fp32_out.numpy()
    agree = lambda a: float((a.argmax(1) == fp32_np.argmax(1)).mean())
    summary = {
        "data": index["data"],
        "rows": n,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "statistic": f"mean of {args.repeats} calls after 3 warm-ups (median and min kept); criterion: mean of its samples",
        "flows_per_s_mean": {k: round(n / v["mean_s"]) for k, v in batch.items()},
        "flows_per_s_median": {k: round(n / v["median_s"]) for k, v in batch.items()},
        "single_flow_us_mean": {k: round(v * 1e6, 2) for k, v in single.items()},
        "flows_per_cpu_s": {k: {kk: vv for kk, vv in v.items() if kk != "cpu_s_per_batch"} for k, v in cpu.items()},
        "argmax_agreement_with_fp32": {"onnxruntime_dynamic_int8": agree(ort_out),
                                       **({} if qt_out is None else {"pytorch_dynamic_int8": agree(qt_out.numpy())})},
    }
    print(json.dumps(summary, indent=2))
    peerlib.save("quant_peers", {**summary, "results": results, "single_flow": singles, "cpu_time": cpu})


if __name__ == "__main__":
    main()
