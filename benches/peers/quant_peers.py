"""Peers of `cargo bench --bench quant` (group mlp_infer_int8): ONNX Runtime int8 dynamic and
PyTorch `quantize_dynamic` on the same weights and the same synthetic (resampled) inputs.

Run after the Rust bench has exported its data to target/quant-bench/:
    cargo bench --bench quant
    /work/pyenv/bin/python benches/peers/quant_peers.py [--threads 2] [--repeats 30] [--ort-only]

`--ort-only` times only ONNX Runtime int8 (what `mlp_infer_int8` is compared with), so that it can
run back to back with the Rust bench on a shared machine (see docs/BENCHMARKS.md).

Versions used for the report: torch 2.15.0+cu132 (CPU), onnxruntime 1.32.0, onnx 1.23.2.
Each engine is timed on the whole batch (8192 flows) `--repeats` times after warm-up; the median
is reported as flows/s. Single-flow latency is the median of 2000 calls on one row.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

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
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_rate(fn, n, rounds=15, per_round=10):
    """Flows per CPU-second (process CPU time), best of `rounds` rounds of `per_round` batches."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(per_round):
            fn()
        best = min(best, (time.process_time() - t0) / per_round)
    return n / best


def time_single(fn, calls=2000):
    for _ in range(50):
        fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--ort-only", action="store_true", help="time only ONNX Runtime int8")
    ap.add_argument("--cpu-time", action="store_true",
                    help="also report ORT int8 flows per CPU-second (process CPU time; use --threads 1)")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    import torch.nn as nn
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize_dynamic

    torch.set_num_threads(args.threads)
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
    results = {}

    with torch.inference_mode():
        fp32_out = model(xt)
        qt_out = None
        if not args.ort_only:
            t = time_batches(lambda: model(xt), args.repeats)
            results["pytorch_fp32"] = n / t
            qmodel = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
            qt_out = qmodel(xt)
            t = time_batches(lambda: qmodel(xt), args.repeats)
            results["pytorch_dynamic_int8"] = n / t
            one = xt[:1]
            results["pytorch_dynamic_int8_single_flow_us"] = time_single(lambda: qmodel(one)) * 1e6

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = os.path.join(tmp, "mlp.onnx")
        int8_path = os.path.join(tmp, "mlp_int8.onnx")
        torch.onnx.export(model, xt[:1], fp32_path, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        ort_quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        sess32 = ort.InferenceSession(fp32_path, so, providers=["CPUExecutionProvider"])
        sess8 = ort.InferenceSession(int8_path, so, providers=["CPUExecutionProvider"])
        ort_out = sess8.run(None, {"x": x})[0]
        if not args.ort_only:
            t = time_batches(lambda: sess32.run(None, {"x": x}), args.repeats)
            results["onnxruntime_fp32"] = n / t
        t = time_batches(lambda: sess8.run(None, {"x": x}), args.repeats)
        results["onnxruntime_dynamic_int8"] = n / t
        if args.cpu_time:
            results["onnxruntime_dynamic_int8_per_cpu_second"] = cpu_rate(lambda: sess8.run(None, {"x": x}), n)
        if not args.ort_only:
            one = x[:1]
            results["onnxruntime_dynamic_int8_single_flow_us"] = time_single(lambda: sess8.run(None, {"x": one})) * 1e6

    fp32_np = fp32_out.numpy()
    agree = lambda a: float((a.argmax(1) == fp32_np.argmax(1)).mean())
    print(json.dumps({
        "data": index["data"],
        "rows": n,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "flows_per_s": {k: round(v) for k, v in results.items() if not k.endswith("_us")},
        "single_flow_us": {k: round(v, 2) for k, v in results.items() if k.endswith("_us")},
        "argmax_agreement_with_fp32": {"onnxruntime_dynamic_int8": agree(ort_out),
                                       **({} if qt_out is None else {"pytorch_dynamic_int8": agree(qt_out.numpy())})},
    }, indent=2))


if __name__ == "__main__":
    main()
