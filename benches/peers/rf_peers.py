"""Peer benchmark for benches/rf.rs: scikit-learn RandomForestClassifier on the same rows.

Run from the repository root, after `cargo bench --bench rf` (which writes the data):
    /work/pyenv/bin/python benches/peers/rf_peers.py
Reads target/rf_bench/{x.npy, y.npy, meta.json}: synthetic (resampled) 1,048,576 x 76 float32
rows from the real CIC-DDoS2019 sample (+-1 % jitter, seed 42), 16 classes.
Model: RandomForestClassifier(n_estimators=<meta trees, 100>, n_jobs=2, random_state=42),
other defaults (gini, sqrt features, bootstrap, max_depth None), as in benches/rf.rs:
* train: fit on the first <meta train_rows, 131,072> rows, RF_PEER_REPEATS times (default 2);
* predict: one fit on all rows (not timed), then predict_proba on all rows (3 repeats).
Reports the best of each as flows/s, and the ratios to criterion's rf/rf_train and rf/rf_predict
(best sample, and mean) when target/criterion holds them. Writes target/rf_bench/peer_results.json.
"""
import json
import os
import pathlib
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIR = ROOT / "target" / "rf_bench"
meta = json.loads((DIR / "meta.json").read_text())
x = np.load(DIR / "x.npy")
y = np.load(DIR / "y.npy")
trees = int(meta["trees"])
n_train = int(meta.get("train_rows", x.shape[0]))
repeats = int(os.environ.get("RF_PEER_REPEATS", "2"))
n = x.shape[0]
print(f"data: {meta['data']} {x.shape[0]} x {x.shape[1]}, {trees} trees, train rows {n_train}, scikit-learn {sklearn.__version__}", flush=True)

fit_s = []
for _ in range(repeats):
    rf = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=42)
    t0 = time.perf_counter()
    rf.fit(x[:n_train], y[:n_train])
    fit_s.append(time.perf_counter() - t0)
    print(f"fit on {n_train} rows: {fit_s[-1]:.1f} s", flush=True)
    del rf
rf = RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=42)
t0 = time.perf_counter()
rf.fit(x, y)
print(f"fit on all {n} rows (not part of any ratio): {time.perf_counter() - t0:.1f} s", flush=True)
pred_s = []
for _ in range(3):
    t0 = time.perf_counter()
    p = rf.predict_proba(x)
    pred_s.append(time.perf_counter() - t0)
nodes = sum(e.tree_.node_count for e in rf.estimators_)
depth = max(e.tree_.max_depth for e in rf.estimators_)
res = {
    "data": meta["data"], "rows": n, "features": x.shape[1], "trees": trees,
    "train_rows": n_train,
    "sklearn": sklearn.__version__, "python": sys.version.split()[0],
    "sklearn_fit_s": min(fit_s), "sklearn_fit_flows_per_s": n_train / min(fit_s),
    "sklearn_predict_proba_s": min(pred_s), "sklearn_predict_proba_flows_per_s": n / min(pred_s),
    "sklearn_nodes": int(nodes), "sklearn_max_depth": int(depth),
}


def criterion_s(name):
    """(mean, best) seconds per iteration from criterion's files for rf/<name>, or None."""
    d = ROOT / "target" / "criterion" / "rf" / name / "new"
    if not (d / "estimates.json").exists():
        return None
    mean = json.loads((d / "estimates.json").read_text())["mean"]["point_estimate"] / 1e9
    sample = json.loads((d / "sample.json").read_text())
    best = min(t / i for t, i in zip(sample["times"], sample["iters"])) / 1e9
    return mean, best


# The machine is shared by several jobs, so both sides are compared best-vs-best (the least
# disturbed run of each); criterion's mean is reported beside it.
for ours, theirs, key, rows in (("rf_train", "sklearn_fit_s", "train", n_train), ("rf_predict", "sklearn_predict_proba_s", "predict", n)):
    r = criterion_s(ours)
    if r is not None:
        mean, best = r
        res[f"ours_{key}_mean_s"] = mean
        res[f"ours_{key}_best_s"] = best
        res[f"ours_{key}_best_flows_per_s"] = rows / best
        res[f"ours_{key}_mean_flows_per_s"] = rows / mean
        res[f"{key}_speedup_vs_sklearn_best_vs_best"] = res[theirs] / best
        res[f"{key}_speedup_vs_sklearn_sklearn_best_vs_our_mean"] = res[theirs] / mean
print(json.dumps(res, indent=2))
(DIR / "peer_results.json").write_text(json.dumps(res, indent=2) + "\n")
