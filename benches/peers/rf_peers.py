"""Peer benchmark for benches/rf.rs: scikit-learn RandomForestClassifier on the same rows.

Reads target/rf_bench/{x.npy, y.npy, meta.json}, which `cargo bench --bench rf` writes:
synthetic (resampled) 1,048,576 x 76 float32 rows from the real CIC-DDoS2019 sample (+-1 %
jitter, seed 42), 16 classes.
Model: RandomForestClassifier(n_estimators=<meta trees, 100>, n_jobs=FLOWXAI_BENCH_THREADS,
random_state=42), other defaults (gini, sqrt features, bootstrap, max_depth None), as in
benches/rf.rs, whose rayon pool runs with RAYON_NUM_THREADS set to the same number:
* train (vs rf/rf_train): fit on the first <meta train_rows, 131,072> rows, RF_PEER_REPEATS
  timed fits (default 10, criterion's sample_size) after one untimed warm-up fit;
* predict (vs rf/rf_predict): one fit on all rows (not timed), then predict_proba on all rows,
  RF_PEER_REPEATS timed calls after one warm-up.
Statistic: the MEAN of the timed calls as flows/s against criterion's mean (the min is kept
beside it, and criterion's best sample). Waits for the 1-minute load average to fall below 1
before timing (recorded). Output: benches/results/rf_peers-<UTC stamp>.json (raw samples,
machine, criterion's numbers, the ratios), and target/rf_bench/peer_results.json (a copy).

Run from the repository root, after `cargo bench --bench rf` (which writes the data):
    FLOWXAI_BENCH_THREADS=2 .venv-peers/bin/python benches/peers/rf_peers.py
or both sides back to back: `benches/run_pairs.sh rf`.
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
"""
import json
import os
import sys

import peerlib  # first: sets the thread variables before numpy/scikit-learn load

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier

DIR = peerlib.ROOT / "target" / "rf_bench"
if not (DIR / "meta.json").exists():
    sys.exit(f"{DIR}/meta.json missing: run `cargo bench --bench rf` first (it exports the rows)")
meta = json.loads((DIR / "meta.json").read_text())
x = np.load(DIR / "x.npy")
y = np.load(DIR / "y.npy")
trees = int(meta["trees"])
n_train = int(meta.get("train_rows", x.shape[0]))
repeats = int(os.environ.get("RF_PEER_REPEATS", "10"))
n = x.shape[0]
T = peerlib.THREADS
peerlib.pin_threads()
print(f"data: {meta['data']} {x.shape[0]} x {x.shape[1]}, {trees} trees, train rows {n_train}, "
      f"scikit-learn {sklearn.__version__}, n_jobs {T}, {repeats} timed calls each", flush=True)


def forest():
    return RandomForestClassifier(n_estimators=trees, n_jobs=T, random_state=42)


peerlib.wait_idle()
fit = peerlib.measure(lambda: forest().fit(x[:n_train], y[:n_train]), repeats, warmup=1)
print(f"fit on {n_train} rows: mean {fit['mean_s']:.2f} s, best {fit['min_s']:.2f} s", flush=True)
rf = forest()
rf.fit(x, y)
nodes = sum(e.tree_.node_count for e in rf.estimators_)
depth = max(e.tree_.max_depth for e in rf.estimators_)
pred = peerlib.measure(lambda: rf.predict_proba(x), repeats, warmup=1)
print(f"predict_proba on {n} rows: mean {pred['mean_s']:.2f} s, best {pred['min_s']:.2f} s", flush=True)

res = {
    "data": {"source": str(DIR.relative_to(peerlib.ROOT)), **meta, "rows": n, "features": x.shape[1]},
    "n_jobs": T,
    "statistic": f"mean of {repeats} timed calls after 1 warm-up (min kept); criterion: mean of its samples",
    "sklearn_nodes": int(nodes), "sklearn_max_depth": int(depth),
    "results": {
        "sklearn_fit": peerlib.compare(peerlib.criterion("rf", "rf_train"), fit, n_train),
        "sklearn_predict_proba": peerlib.compare(peerlib.criterion("rf", "rf_predict"), pred, n),
    },
}
for name, r in res["results"].items():
    line = f"{name:22s} peer mean {r['peer_per_s_mean']:12,.0f} flows/s (best {r['peer_per_s_best']:,.0f})"
    if "ratio_mean" in r:
        line += f" | ours mean {r['ours_per_s_mean']:12,.0f} | ours/peer {r['ratio_mean']:.2f}x"
    print(line)
path = peerlib.save("rf_peers", res)
(DIR / "peer_results.json").write_text(path.read_text())
