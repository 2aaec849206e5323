"""Peer benchmark for benches/shap.rs: the Python shap library on the same models and data.

Run from the repository root (before `cargo bench --bench shap`, which loads what this writes):
    /work/pyenv/bin/python benches/peers/shap_peers.py
Writes target/shap_bench/{mlp.json, forest.json, data.json, peer_results.json}.

Data: real CIC-DDoS2019 flows (shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv,
76 numeric feature columns, rows with NaN/inf dropped), standardised with their own mean/std.
Models:
- MLP of the `optimized` shape 76→128→256→128→64→17 (ReLU, ELU, ReLU, ELU, softmax) with fixed
  random He-normal weights (seed 0); forward in float32 numpy (OpenBLAS sgemm).
- RandomForestClassifier(n_estimators=100, random_state=0) on all 16 labels of the sample; its
  trees are exported (children, feature, threshold, value as class fractions, weighted cover).
Timings (shap 0.51):
- KernelExplainer(f, 100 background rows sampled with seed 0), nsamples="auto" (2M+2048),
  l1_reg="num_features(10)" (shap's default), seconds per explained flow.
- TreeExplainer(rf, feature_perturbation="tree_path_dependent").shap_values, seconds per flow.
"""
import json
import os
import pathlib
import sys
import time
import warnings

import numpy as np
import pandas as pd
import shap
import sklearn
from sklearn.ensemble import RandomForestClassifier

warnings.filterwarnings("ignore")
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "shap_bench"
OUT.mkdir(parents=True, exist_ok=True)
CSV = ROOT / ".." / "shared" / "datasets" / "cic-ddos2019" / "balanced-sample" / "combined_data.csv"
N_KERNEL_FLOWS = int(os.environ.get("SHAP_PEER_KERNEL_FLOWS", "4"))
N_TREE_FLOWS = int(os.environ.get("SHAP_PEER_TREE_FLOWS", "200"))

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
ke.shap_values(xk[:1], silent=True)  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
kv = ke.shap_values(xk, silent=True)
kernel_s = (time.perf_counter() - t0) / len(xk)
kernel_cpu = (time.process_time() - c0) / len(xk)
add = np.abs(kv.sum(1) + ke.expected_value - mlp(xk)).max()
print(f"shap KernelExplainer: {kernel_s:.3f} s/flow ({1 / kernel_s:.3f} flows/s) over {len(xk)} flows; "
      f"max additivity error {add:.2e}")

# ---- forest ---------------------------------------------------------------------------------
t0 = time.perf_counter()
rf = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(Xs, y)
print(f"forest trained in {time.perf_counter() - t0:.1f} s")
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
te.shap_values(xt[:5])  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
tv = te.shap_values(xt)
tree_s = (time.perf_counter() - t0) / len(xt)
tree_cpu = (time.process_time() - c0) / len(xt)
print(f"shap TreeExplainer: {tree_s * 1e3:.3f} ms/flow ({1 / tree_s:.1f} flows/s) over {len(xt)} flows")
(OUT / "tree_shap_values_peer.json").write_text(json.dumps(np.asarray(tv)[:5].tolist()))

res = {"shap": shap.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
       "cpus": os.cpu_count(), "kernel_s_per_flow": kernel_s, "kernel_cpu_s_per_flow": kernel_cpu, "kernel_flows": len(xk),
       "tree_s_per_flow": tree_s, "tree_cpu_s_per_flow": tree_cpu, "tree_flows": len(xt),
       "load_average": os.getloadavg()}
(OUT / "peer_results.json").write_text(json.dumps(res, indent=1))
print(json.dumps(res))
