"""Peer benchmark for benches/shap.rs: the Python shap library on the same models and data.

Runs BEFORE `cargo bench --bench shap`, which loads what this writes to target/shap_bench/
(mlp.json, forest.json, data.json, tree_shap_values_peer.json, peer_results.json).

Data: real CIC-DDoS2019 flows (shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv,
76 numeric feature columns, rows with NaN/inf dropped), standardised with their own mean/std;
the Rust bench explains the same rows (data.json).
Models:
- MLP of the `optimized` shape 76→128→256→128→64→17 (ReLU, ELU, ReLU, ELU, softmax) with fixed
  random He-normal weights (seed 0); forward in float32 numpy (BLAS sgemm).
- RandomForestClassifier(n_estimators=100, random_state=0) on all 16 labels of the sample; its
  trees are exported (children, feature, threshold, value as class fractions, weighted cover).
Timings (shap 0.51), each the MEAN seconds per flow over SHAP_PEER_REPEATS timed passes (default
10, criterion's sample_size for both shap groups) after one warm-up, min kept beside it:
- KernelExplainer(f, 100 background rows sampled with seed 0), nsamples="auto" (2M+2048),
  l1_reg="num_features(10)" (shap's default), over SHAP_PEER_KERNEL_FLOWS flows per pass (4,
  like shap_kernel_mlp/flowxai);
- TreeExplainer(rf, feature_perturbation="tree_path_dependent").shap_values over
  SHAP_PEER_TREE_FLOWS flows per pass (200, like shap_tree_forest100/flowxai).
Threads: shap's explainers run single-threaded (a Python loop; TreeExplainer's C++ on one
thread); only the numpy MLP's matrix products use BLAS threads, capped at FLOWXAI_BENCH_THREADS
(default: all CPUs), while the Rust side uses RAYON_NUM_THREADS threads. So CPU seconds per flow
(process CPU time of all threads) are recorded beside wall time: compare per CPU-second too.
Waits for the 1-minute load average to fall below 1 before timing (recorded).
Output: benches/results/shap_peers-<UTC stamp>.json (raw samples, machine) and
target/shap_bench/peer_results.json (the means, read by the Rust bench for its printed ratio).
After the bench, `shap_peers.py --compare benches/results/shap_peers-<stamp>.json` writes
benches/results/shap_compare-<stamp>.json: that peer file's means beside criterion's
(shap_kernel_mlp/flowxai, shap_tree_forest100/flowxai) and the ratios.

Run from the repository root:
    FLOWXAI_BENCH_THREADS=2 .venv-peers/bin/python benches/peers/shap_peers.py
    RAYON_NUM_THREADS=2 cargo bench --bench shap
or all three steps back to back: `benches/run_pairs.sh shap`.
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
"""
import json
import os
import pathlib
import sys
import warnings

import peerlib  # first: sets the thread variables before numpy loads

import numpy as np
import pandas as pd
import shap
import sklearn
from sklearn.ensemble import RandomForestClassifier

warnings.filterwarnings("ignore")
ROOT = peerlib.ROOT
KERNEL_GROUP, TREE_GROUP = "shap_kernel_mlp", "shap_tree_forest100"


def compare_mode(peer_json):
    """--compare: the peer file's means beside criterion's, saved as shap_compare-<stamp>.json."""
    peer = json.loads(pathlib.Path(peer_json).read_text())
    out = {"peer_file": str(peer_json)}
    for key, group in (("kernel", KERNEL_GROUP), ("tree", TREE_GROUP)):
        st = peer["results"][key]
        flows = peer["results"][f"{key}_flows"]
        out[key] = peerlib.compare(peerlib.criterion(group, "flowxai"), st, flows)
        r = out[key]
        line = f"{key}: shap mean {r['peer_per_s_mean']:.3f} flows/s ({r['peer_per_cpu_s']:.3f} per CPU-s)"
        if "ratio_mean" in r:
            line += f" | flowxai mean {r['ours_per_s_mean']:.3f} flows/s | flowxai/shap {r['ratio_mean']:.1f}x"
        print(line)
    peerlib.save("shap_compare", out)


if len(sys.argv) == 3 and sys.argv[1] == "--compare":
    compare_mode(sys.argv[2])
    sys.exit(0)

OUT = ROOT / "target" / "shap_bench"
OUT.mkdir(parents=True, exist_ok=True)
CSV = ROOT / ".." / "shared" / "datasets" / "cic-ddos2019" / "balanced-sample" / "combined_data.csv"
N_KERNEL_FLOWS = int(os.environ.get("SHAP_PEER_KERNEL_FLOWS", "4"))
N_TREE_FLOWS = int(os.environ.get("SHAP_PEER_TREE_FLOWS", "200"))
REPEATS = int(os.environ.get("SHAP_PEER_REPEATS", "10"))
peerlib.pin_threads()

df = pd.read_csv(CSV, low_memory=False)
feat = df.columns[4:80]
X = df[feat].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
y_names = df[df.columns[-1]].astype(str).to_numpy()
ok = np.isfinite(X).all(axis=1)
X, y_names = X[ok], y_names[ok]
mu, sd = X.mean(0), X.std(0)
sd[sd == 0] = 1.0
Xs = ((X - mu) / sd).astype(np.float32)
classes, y = np.unique(y_names, return_inverse=True)
print(f"data: {Xs.shape[0]} real flows x {Xs.shape[1]} features, {len(classes)} classes")

# ---- MLP ------------------------------------------------------------------------------------
rng = np.random.default_rng(0)
sizes = [76, 128, 256, 128, 64, 17]
acts = ["relu", "elu", "relu", "elu", "softmax"]
W = [rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
B = [rng.normal(0, 0.05, b).astype(np.float32) for b in sizes[1:]]


def mlp(x):
    h = np.asarray(x, dtype=np.float32)
    for w, b, a in zip(W, B, acts):
        h = h @ w + b
        if a == "relu":
            np.maximum(h, 0, out=h)
        elif a == "elu":
            h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
        else:
            h = np.exp(h - h.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
    return h


(OUT / "mlp.json").write_text(json.dumps({
    "activations": acts, "w": [w.tolist() for w in W], "b": [b.tolist() for b in B]}))

bg_idx = np.sort(np.random.default_rng(0).choice(len(Xs), 100, replace=False))
bg = Xs[bg_idx]
ex_idx = np.random.default_rng(1).choice(len(Xs), max(N_TREE_FLOWS, N_KERNEL_FLOWS), replace=False)
explained = Xs[ex_idx]
(OUT / "data.json").write_text(json.dumps({
    "note": "real CIC-DDoS2019 flows (balanced-sample), standardised; not resampled",
    "background": bg.tolist(), "explained": explained.tolist()}))

ke = shap.KernelExplainer(mlp, bg)
xk = explained[:N_KERNEL_FLOWS]
peerlib.wait_idle()
kv = None


def kernel_pass():
    global kv
    kv = ke.shap_values(xk, silent=True)


kernel = peerlib.measure(kernel_pass, REPEATS, warmup=1)
kernel_s = kernel["mean_s"] / len(xk)
kernel_cpu = kernel["cpu_mean_s"] / len(xk)
add = np.abs(kv.sum(1) + ke.expected_value - mlp(xk)).max()
print(f"shap KernelExplainer: mean {kernel_s:.3f} s/flow ({1 / kernel_s:.3f} flows/s, {kernel_cpu:.3f} CPU-s/flow) "
      f"over {REPEATS} passes of {len(xk)} flows; best pass {kernel['min_s'] / len(xk):.3f} s/flow; "
      f"max additivity error {add:.2e}", flush=True)

# ---- forest ---------------------------------------------------------------------------------
rf = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(Xs, y)  # not timed
trees = []
for est in rf.estimators_:
    t = est.tree_
    val = t.value[:, 0, :].astype(np.float64)
    val = val / val.sum(axis=1, keepdims=True)
    trees.append({
        "children_left": t.children_left.tolist(), "children_right": t.children_right.tolist(),
        "feature": [int(max(f, 0)) for f in t.feature], "threshold": t.threshold.tolist(),
        "value": val.tolist(), "cover": t.weighted_n_node_samples.astype(np.float64).tolist()})
(OUT / "forest.json").write_text(json.dumps({"trees": trees, "scale": 1.0 / len(trees),
                                             "classes": classes.tolist()}))
depths = [e.tree_.max_depth for e in rf.estimators_]
leaves = [e.tree_.n_leaves for e in rf.estimators_]
print(f"forest: 100 trees, mean depth {np.mean(depths):.1f}, mean leaves {np.mean(leaves):.0f}")

te = shap.TreeExplainer(rf, feature_perturbation="tree_path_dependent")
xt = explained[:N_TREE_FLOWS]
tv = None


def tree_pass():
    global tv
    tv = te.shap_values(xt)


tree = peerlib.measure(tree_pass, REPEATS, warmup=1)
tree_s = tree["mean_s"] / len(xt)
tree_cpu = tree["cpu_mean_s"] / len(xt)
print(f"shap TreeExplainer: mean {tree_s * 1e3:.3f} ms/flow ({1 / tree_s:.1f} flows/s, {tree_cpu * 1e3:.3f} CPU-ms/flow) "
      f"over {REPEATS} passes of {len(xt)} flows; best pass {tree['min_s'] / len(xt) * 1e3:.3f} ms/flow")
(OUT / "tree_shap_values_peer.json").write_text(json.dumps(np.asarray(tv)[:5].tolist()))

# Read by benches/shap.rs (keys unchanged): means per flow.
res = {"shap": shap.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
       "cpus": os.cpu_count(), "threads": peerlib.THREADS,
       "kernel_s_per_flow": kernel_s, "kernel_cpu_s_per_flow": kernel_cpu, "kernel_flows": len(xk),
       "tree_s_per_flow": tree_s, "tree_cpu_s_per_flow": tree_cpu, "tree_flows": len(xt),
       "repeats": REPEATS, "statistic": "mean over the timed passes", "load_average": peerlib.loadavg()}
(OUT / "peer_results.json").write_text(json.dumps(res, indent=1))
print(json.dumps(res))
peerlib.save("shap_peers", {
    "data": {"source": "shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv (real flows)",
             "rows": int(Xs.shape[0]), "features": int(Xs.shape[1]), "exported_to": str(OUT.relative_to(ROOT))},
    "threading": "shap explainers single-threaded (Python loop / one C++ thread); numpy BLAS capped at threads",
    "statistic": f"mean of {REPEATS} timed passes after 1 warm-up (min kept), per flow; criterion: mean of its samples",
    "kernel_max_additivity_error": float(add),
    "results": {"kernel": kernel, "kernel_flows": len(xk), "tree": tree, "tree_flows": len(xt),
                "kernel_s_per_flow": kernel_s, "kernel_cpu_s_per_flow": kernel_cpu,
                "tree_s_per_flow": tree_s, "tree_cpu_s_per_flow": tree_cpu},
})
