"""Peer benchmark for benches/preprocess.rs: numpy + scikit-learn on the same rows.

Run from the repository root, after `cargo bench --bench preprocess` (which writes the data):
    /work/pyenv/bin/python benches/peers/preprocess_peers.py
Reads target/preprocess_bench/x.npy: synthetic (resampled) 1,048,576 x 76 float32 rows from the
real CIC-DDoS2019 sample (+-1 % jitter, seed 42).
thesis     = np.percentile(1, 99) + np.clip, then sklearn RobustScaler() (fit / transform).
log_robust = sign*log1p, np.percentile(0.1, 99.9) + np.clip, median/IQR with max-min fallback.
default    = normal scores: per column np.unique(return_counts) -> midrank CDF -> scipy ndtri,
             1,000 knots; transform with np.interp (the definition the Rust fixtures test).
Also printed, not compared: scikit-learn's QuantileTransformer(output_distribution="normal"),
the library a Python user would reach for (a different transform, see preprocess::Preset).
Transform timings include the copy of the input (like the Rust bench). Best of 3 runs each,
reported as flows/s, with the ratio to criterion's mean estimate when target/criterion has it.
numpy and scikit-learn run single-threaded here (percentile/median/clip do not use threads).
"""
import json
import pathlib
import time

import numpy as np
import scipy
import sklearn
from scipy.special import ndtri
from sklearn.preprocessing import QuantileTransformer, RobustScaler

ROOT = pathlib.Path(__file__).resolve().parents[2]
x = np.load(ROOT / "target" / "preprocess_bench" / "x.npy")
n = x.shape[0]
print(f"data: synthetic (resampled) {x.shape[0]} x {x.shape[1]} float32, numpy {np.__version__}, "
      f"scikit-learn {sklearn.__version__}, scipy {scipy.__version__}")


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


def best(f, *args):
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = f(*args)
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def criterion_mean_s(name):
    p = ROOT / "target" / "criterion" / "preprocess" / name / "new" / "estimates.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())["mean"]["point_estimate"] / 1e9


results = {}
for preset, fit, tr in [("thesis", fit_thesis, transform_thesis),
                        ("log_robust", fit_log_robust, transform_log_robust),
                        ("default", fit_default, transform_default),
                        ("sklearn_quantile", fit_sklearn_quantile, transform_sklearn_quantile)]:
    tf, model = best(fit, x)
    tt, _ = best(tr, model, x)
    for kind, t in [("fit", tf), ("transform", tt)]:
        name = f"{kind}_{preset}"
        peer = n / t
        rust_s = criterion_mean_s(name)
        line = f"{name:18s} peer {peer:14,.0f} flows/s"
        if rust_s:
            rust = n / rust_s
            line += f" | rust {rust:14,.0f} flows/s | rust/peer {rust / peer:6.2f}x"
            results[name] = {"peer_flows_per_s": peer, "rust_flows_per_s": rust, "ratio": rust / peer}
        else:
            results[name] = {"peer_flows_per_s": peer}
        print(line)
(ROOT / "target" / "preprocess_bench" / "peer_results.json").write_text(json.dumps(results, indent=1))
