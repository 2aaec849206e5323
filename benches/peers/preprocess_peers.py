"""Peer benchmark for benches/preprocess.rs: numpy + scikit-learn on the same rows.

Reads target/preprocess_bench/x.npy, which `cargo bench --bench preprocess` writes: synthetic
(resampled) 1,048,576 x 76 float32 rows from the real CIC-DDoS2019 sample (+-1 % jitter, seed 42).
thesis     = np.percentile(1, 99) + np.clip, then sklearn RobustScaler() (fit / transform).
log_robust = sign*log1p, np.percentile(0.1, 99.9) + np.clip, median/IQR with max-min fallback.
default    = normal scores: per column np.unique(return_counts) -> midrank CDF -> scipy ndtri,
             1,000 knots; transform with np.interp (the definition the Rust fixtures test).
Also timed, not compared: scikit-learn's QuantileTransformer(output_distribution="normal"),
the library a Python user would reach for (a different transform, see preprocess::Preset).
Transform timings include the copy of the input (like the Rust bench).
Statistic: the MEAN of PREPROCESS_PEER_REPEATS timed calls (default 10, criterion's sample_size)
after one untimed warm-up, as flows/s, against criterion's mean of preprocess/<fit|transform>_<preset>;
the min is kept beside it.
Threads: FLOWXAI_BENCH_THREADS (default: all CPUs) caps BLAS/OpenMP (threadpoolctl), but
np.percentile/median/clip/unique/interp run on one thread whatever the cap, while the Rust side
uses RAYON_NUM_THREADS threads; so each result also records CPU seconds per call and flows per
CPU-second. Waits for the 1-minute load average to fall below 1 before timing (recorded).
Output: benches/results/preprocess_peers-<UTC stamp>.json (raw samples, machine, criterion's
numbers, the ratios) and target/preprocess_bench/peer_results.json (a copy).

Run from the repository root, after `cargo bench --bench preprocess` (which writes the data):
    FLOWXAI_BENCH_THREADS=2 .venv-peers/bin/python benches/peers/preprocess_peers.py
or both sides back to back: `benches/run_pairs.sh preprocess`.
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
"""
import os
import sys

import peerlib  # first: sets the thread variables before numpy/scikit-learn load

import numpy as np
import scipy
import sklearn
from scipy.special import ndtri
from sklearn.preprocessing import QuantileTransformer, RobustScaler

DATA = peerlib.ROOT / "target" / "preprocess_bench"
REPEATS = int(os.environ.get("PREPROCESS_PEER_REPEATS", "10"))
if not (DATA / "x.npy").exists():
    sys.exit(f"{DATA}/x.npy missing: run `cargo bench --bench preprocess` first (it exports the rows)")
x = np.load(DATA / "x.npy")
n = x.shape[0]
peerlib.pin_threads()
print(f"data: synthetic (resampled) {x.shape[0]} x {x.shape[1]} float32, numpy {np.__version__}, "
      f"scikit-learn {sklearn.__version__}, scipy {scipy.__version__}, threads {peerlib.THREADS}, "
      f"{REPEATS} timed calls each", flush=True)


def fit_thesis(a):
    lo, hi = np.percentile(a, [1, 99], axis=0)
    rs = RobustScaler().fit(np.clip(a, lo, hi).astype(np.float32))
    return lo, hi, rs


def transform_thesis(m, a):
    lo, hi, rs = m
    return rs.transform(np.clip(a, lo, hi).astype(np.float32))


def slog(a):
    return (np.sign(a) * np.log1p(np.abs(a))).astype(np.float32)


def fit_log_robust(a):
    la = slog(a)
    lo, hi = np.percentile(la, [0.1, 99.9], axis=0)
    c = np.clip(la, lo, hi).astype(np.float32)
    center = np.median(c, axis=0)
    q1, q3 = np.percentile(c, [25, 75], axis=0)
    iqr = q3 - q1
    rng = c.max(0).astype(np.float64) - c.min(0)
    scale = np.where(iqr > 0, iqr, np.where(rng > 0, rng, 1.0))
    return lo, hi, center, scale


def transform_log_robust(m, a):
    lo, hi, center, scale = m
    return ((np.clip(slog(a), lo, hi).astype(np.float32) - center) / scale).astype(np.float32)


def fit_default(a, max_knots=1000):
    n = a.shape[0]
    knots = []
    for j in range(a.shape[1]):
        values, counts = np.unique(a[:, j], return_counts=True)
        cum = np.cumsum(counts)
        u = (cum - counts + cum) / (2.0 * n)
        if len(values) > max_knots:
            s = np.floor(u * (max_knots - 2))
            keep = np.ones(len(values), dtype=bool)
            keep[1:-1] = s[1:-1] != s[:-2]
            values, u = values[keep], u[keep]
        knots.append((values.astype(np.float64), ndtri(u)))
    return knots


def transform_default(knots, a):
    out = np.empty_like(a)
    for j, (v, z) in enumerate(knots):
        out[:, j] = np.interp(a[:, j], v, z)
    return out


def fit_sklearn_quantile(a):
    return QuantileTransformer(output_distribution="normal", subsample=None).fit(a)


def transform_sklearn_quantile(qt, a):
    return qt.transform(a)


peerlib.wait_idle()
results = {}
for preset, fit, tr in [("thesis", fit_thesis, transform_thesis),
                        ("log_robust", fit_log_robust, transform_log_robust),
                        ("default", fit_default, transform_default),
                        ("sklearn_quantile", fit_sklearn_quantile, transform_sklearn_quantile)]:
    st_fit = peerlib.measure(lambda: fit(x), REPEATS, warmup=1)
    model = fit(x)
    st_tr = peerlib.measure(lambda: tr(model, x), REPEATS, warmup=1)
    for kind, st in [("fit", st_fit), ("transform", st_tr)]:
        name = f"{kind}_{preset}"
        # sklearn_quantile has no Rust counterpart: criterion() finds nothing and no ratio is made.
        r = peerlib.compare(peerlib.criterion("preprocess", name), st, n)
        results[name] = r
        line = (f"{name:28s} peer mean {r['peer_per_s_mean']:14,.0f} flows/s (best {r['peer_per_s_best']:,.0f}; "
                f"{r['peer_per_cpu_s']:,.0f} per CPU-s)")
        if "ratio_mean" in r:
            line += f" | rust mean {r['ours_per_s_mean']:14,.0f} flows/s | rust/peer {r['ratio_mean']:6.2f}x"
        print(line, flush=True)
path = peerlib.save("preprocess_peers", {
    "data": {"source": str(DATA.relative_to(peerlib.ROOT) / "x.npy"), "rows": n, "features": x.shape[1]},
    "statistic": f"mean of {REPEATS} timed calls after 1 warm-up (min kept); criterion: mean of its samples",
    "results": results,
})
(DATA / "peer_results.json").write_text(path.read_text())
