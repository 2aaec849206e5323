"""Shared helpers of the benchmark peers (benches/peers/*_peers.py).

Import it before numpy, torch, polars or pyarrow: on import it sets the thread variables those
libraries read when they load (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS,
POLARS_MAX_THREADS, ...) to THREADS.

The rules every ratio in docs/BENCHMARKS.md follows, and what this module provides for them:
- same thread count on both sides: THREADS comes from FLOWXAI_BENCH_THREADS (default
  os.cpu_count()); the Rust side runs with RAYON_NUM_THREADS=$FLOWXAI_BENCH_THREADS (and
  MATMUL_NUM_THREADS, the pool of matrixmultiply's GEMMs in mlp-core, to the same number;
  benches/run_pairs.sh sets all three). pin_threads() applies it to BLAS/OpenMP (threadpoolctl),
  torch, pyarrow and returns an ONNX Runtime SessionOptions factory.
- idle machine: wait_idle() waits until the 1-minute load average is below 1 and records it.
- same statistic: measure() returns the mean of `repeats` timed calls (criterion reports the mean
  of its samples), with the min and CPU seconds beside it; criterion() reads criterion's mean.
- traceability: save() writes the peer's raw numbers, the machine (CPU model, SIMD flags, load,
  git commit, versions) and, where read, criterion's numbers and the ratio to
  benches/results/<name>-<UTC stamp>.json.

Environment: FLOWXAI_BENCH_THREADS (threads), FLOWXAI_BENCH_MAX_LOAD (default 1.0),
FLOWXAI_BENCH_IDLE_TIMEOUT (seconds, default 900), FLOWXAI_BENCH_REQUIRE_IDLE=1 (raise instead of
recording "idle": false after the timeout), FLOWXAI_BENCH_STAMP (the UTC stamp used in result
file names; run_pairs.sh sets one per pair so both sides' files share it).

Standard library only, so that it also loads on a GPU machine with nothing but torch.
"""
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benches" / "results"


def _threads():
    v = os.environ.get("FLOWXAI_BENCH_THREADS", "").strip()
    if not v:
        return os.cpu_count() or 1
    n = int(v)
    if n < 1:
        raise ValueError(f"FLOWXAI_BENCH_THREADS={v!r}: must be a positive integer")
    return n


THREADS = _threads()

# Read by the libraries when they load, so set here, before the peer imports them. Overridden, not
# defaulted: a stale OMP_NUM_THREADS in the shell would break the "same threads" rule silently.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "POLARS_MAX_THREADS")
for _k in _THREAD_ENV:
    os.environ[_k] = str(THREADS)

_PINNED = {"threads": THREADS}
_LIMITER = None  # keeps threadpoolctl's limits alive for the life of the process
_LAST_IDLE = None


def pin_threads(threads=None):
    """Apply the thread count to every peer library loaded so far; returns a factory of ONNX
    Runtime SessionOptions (intra_op = threads, inter_op = 1). Call it after importing the peer
    libraries and before timing."""
    global _LIMITER
    n = THREADS if threads is None else int(threads)
    _PINNED["threads"] = n
    try:
        from threadpoolctl import threadpool_limits

        _LIMITER = threadpool_limits(limits=n)
        _PINNED["threadpoolctl"] = "limits=%d" % n
    except ImportError:
        _PINNED["threadpoolctl"] = "not installed (BLAS threads from OMP/OPENBLAS_NUM_THREADS only)"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError as e:  # only allowed once, before any inter-op parallel work
            _PINNED["torch_interop_error"] = str(e)
        _PINNED["torch_num_threads"] = torch.get_num_threads()
        _PINNED["torch_num_interop_threads"] = torch.get_num_interop_threads()
    if "pyarrow" in sys.modules:
        pa = sys.modules["pyarrow"]
        pa.set_cpu_count(n)
        _PINNED["pyarrow_cpu_count"] = pa.cpu_count()
    if "polars" in sys.modules:
        pl = sys.modules["polars"]
        size = getattr(pl, "thread_pool_size", None)
        _PINNED["polars_thread_pool_size"] = size() if size else os.environ.get("POLARS_MAX_THREADS")

    def ort_session_options():
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        return so

    return ort_session_options


def loadavg():
    """(1, 5, 15)-minute load averages, or None where /proc/loadavg is missing."""
    try:
        with open("/proc/loadavg") as f:
            return tuple(float(v) for v in f.read().split()[:3])
    except OSError:
        try:
            return tuple(os.getloadavg())
        except (AttributeError, OSError):
            return None


def wait_idle(max_load=None, timeout_s=None, poll_s=10.0):
    """Wait until the 1-minute load average is below `max_load` (default 1.0) and return
    {"load1", "load5", "load15", "max_load", "waited_s", "idle"}. After `timeout_s` (default 900)
    it records "idle": false and goes on (or raises with FLOWXAI_BENCH_REQUIRE_IDLE=1): a run on a
    busy machine is kept, but marked as such, never passed off as idle."""
    global _LAST_IDLE
    max_load = float(os.environ.get("FLOWXAI_BENCH_MAX_LOAD", 1.0) if max_load is None else max_load)
    timeout_s = float(os.environ.get("FLOWXAI_BENCH_IDLE_TIMEOUT", 900) if timeout_s is None else timeout_s)
    t0 = time.monotonic()
    load = loadavg()
    if load is None:
        _LAST_IDLE = {"load1": None, "max_load": max_load, "waited_s": 0.0, "idle": None,
                      "note": "no load average on this system"}
        return _LAST_IDLE
    said = False
    while load[0] >= max_load and time.monotonic() - t0 < timeout_s:
        if not said:
            print(f"waiting for the 1-minute load average to fall below {max_load} "
                  f"(now {load[0]:.2f}; at most {timeout_s:.0f} s)", flush=True)
            said = True
        time.sleep(poll_s)
        load = loadavg()
    idle = load[0] < max_load
    _LAST_IDLE = {"load1": load[0], "load5": load[1], "load15": load[2], "max_load": max_load,
                  "waited_s": round(time.monotonic() - t0, 1), "idle": idle}
    if not idle:
        msg = f"load {load[0]:.2f} still >= {max_load} after {timeout_s:.0f} s"
        if os.environ.get("FLOWXAI_BENCH_REQUIRE_IDLE") == "1":
            raise RuntimeError(msg)
        print(f"WARNING: {msg}; measuring anyway, recorded as \"idle\": false", flush=True)
    else:
        print(f"load {load[0]:.2f} < {max_load}: measuring", flush=True)
    return _LAST_IDLE


def _git(*args):
    try:
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpuinfo():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if model is None and key in ("model name", "Model", "cpu model"):
                    model = val.strip()
                elif not flags and key in ("flags", "Features"):
                    flags = set(val.split())
    except OSError:
        pass
    return model or platform.processor() or None, flags


_PACKAGES = {"numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn", "torch": "torch",
             "onnxruntime": "onnxruntime", "onnx": "onnx", "shap": "shap", "polars": "polars",
             "pyarrow": "pyarrow", "pandas": "pandas", "threadpoolctl": "threadpoolctl"}


def machine():
    """What the numbers were measured on: time, commit, CPU, SIMD flags, load, versions."""
    model, flags = _cpuinfo()
    status = _git("status", "--porcelain", "--untracked-files=no")
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    m = {
        "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "cpus_in_affinity": affinity,
        "simd": {f: f in flags for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni")},
        "loadavg": loadavg(),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "threads": dict(_PINNED),
        "thread_env": {k: os.environ.get(k) for k in ("FLOWXAI_BENCH_THREADS", "RAYON_NUM_THREADS",
                                                      "MATMUL_NUM_THREADS") + _THREAD_ENV},
        "packages": {},
    }
    for mod, name in _PACKAGES.items():
        if mod in sys.modules:
            m["packages"][name] = getattr(sys.modules[mod], "__version__", None)
    if "threadpoolctl" in sys.modules:
        try:
            m["threadpools"] = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                                for p in sys.modules["threadpoolctl"].threadpool_info()]
        except Exception as e:  # informative only
            m["threadpools"] = str(e)
    if "torch" in sys.modules and getattr(sys.modules["torch"], "cuda", None) is not None:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            m["cuda"] = {"device": torch.cuda.get_device_name(), "torch_cuda": torch.version.cuda}
    return m


def stats(samples_s, cpu_samples_s=None):
    """Summary of per-call seconds: mean (the statistic compared with criterion's mean), min,
    median, standard deviation, and the same for CPU seconds when given."""
    out = {"samples_s": list(samples_s), "repeats": len(samples_s),
           "mean_s": statistics.fmean(samples_s), "min_s": min(samples_s),
           "median_s": statistics.median(samples_s),
           "stdev_s": statistics.stdev(samples_s) if len(samples_s) > 1 else 0.0}
    if cpu_samples_s:
        out["cpu_samples_s"] = list(cpu_samples_s)
        out["cpu_mean_s"] = statistics.fmean(cpu_samples_s)
    load = loadavg()
    out["load1_after"] = load[0] if load else None
    return out


def measure(fn, repeats, warmup=1, cpu=True):
    """Call `fn` `warmup` times untimed, then `repeats` times timed (wall clock, perf_counter;
    and process CPU seconds of all threads, process_time, when `cpu`). Returns stats()."""
    for _ in range(warmup):
        fn()
    load = loadavg()
    wall, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        t1, c1 = time.perf_counter(), time.process_time()
        wall.append(t1 - t0)
        cpus.append(c1 - c0)
    out = stats(wall, cpus if cpu else None)
    out["warmup"] = warmup
    out["load1_before"] = load[0] if load else None
    return out


def criterion_home():
    """Where criterion 0.5 writes: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else the
    workspace's target/criterion (what `cargo metadata` gives for this repository)."""
    if os.environ.get("CRITERION_HOME"):
        return pathlib.Path(os.environ["CRITERION_HOME"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return pathlib.Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"
    return ROOT / "target" / "criterion"


def _safe(s):
    """criterion 0.5's make_filename_safe (report.rs): these characters become '_', at most 64
    bytes, trimmed."""
    for c in '?"/\\*<>:|^':
        s = s.replace(c, "_")
    b = s.encode()[:64]
    while True:
        try:
            return b.decode().strip()
        except UnicodeDecodeError:
            b = b[:-1]


def _rel(p):
    try:
        return str(pathlib.Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def criterion(group, bench_id):
    """criterion's numbers for `group`/`bench_id` from <criterion home>/<group>/<id>/new/: the
    mean (estimates.json, ns per iteration) and the throughput per iteration (benchmark.json,
    Elements or Bytes). A BenchmarkId::new("f", "v") id is "f/v" (one directory per part, as
    criterion 0.5 lays them out). Returns None when the bench has not run."""
    d = criterion_home().joinpath(_safe(group), *[_safe(p) for p in bench_id.split("/")]) / "new"
    est_path = d / "estimates.json"
    if not est_path.exists():
        return None
    est = json.loads(est_path.read_text())
    mean_s = est["mean"]["point_estimate"] / 1e9
    out = {"group": group, "bench_id": bench_id, "dir": _rel(d),
           "files_utc": datetime.datetime.fromtimestamp(est_path.stat().st_mtime, datetime.timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "mean_s_per_iter": mean_s,
           "mean_ci_s": [est["mean"]["confidence_interval"]["lower_bound"] / 1e9,
                         est["mean"]["confidence_interval"]["upper_bound"] / 1e9],
           "median_s_per_iter": est["median"]["point_estimate"] / 1e9,
           "std_dev_s": est["std_dev"]["point_estimate"] / 1e9,
           "throughput_kind": None, "throughput_per_iter": None, "per_s": None}
    if est.get("slope"):
        out["slope_s_per_iter"] = est["slope"]["point_estimate"] / 1e9
    bm_path = d / "benchmark.json"
    if bm_path.exists():
        thr = json.loads(bm_path.read_text()).get("throughput")
        if thr:
            kind, n = next(iter(thr.items()))
            out["throughput_kind"], out["throughput_per_iter"] = kind, n
            out["per_s"] = n / mean_s
    sample_path = d / "sample.json"
    if sample_path.exists():
        s = json.loads(sample_path.read_text())
        out["samples"] = len(s["iters"])
        out["sampling_mode"] = s.get("sampling_mode")
        out["min_s_per_iter"] = min(t / i for t, i in zip(s["times"], s["iters"])) / 1e9
    stamp = os.environ.get("FLOWXAI_BENCH_STAMP")
    if stamp:  # where benches/run_pairs.sh keeps a copy of these files
        out["archived_dir"] = _rel(RESULTS / f"criterion-{_safe(group)}-{stamp}"
                                   / d.parent.relative_to(criterion_home() / _safe(group)))
    return out


def criterion_ids(group):
    """The bench ids of `group` that have criterion results (e.g. "dynamic/Avx512Vnni")."""
    base = criterion_home() / _safe(group)
    if not base.is_dir():
        return []
    return sorted(str(p.parent.parent.relative_to(base)) for p in base.glob("**/new/estimates.json"))


def compare(crit, peer, units_per_call):
    """A ratio with both sides' numbers: `crit` from criterion() (or None), `peer` from measure()
    or stats(), `units_per_call` the flows/bytes/samples one timed peer call processes.
    ratio_mean = ours per second (criterion mean) / peer per second (mean of the peer's calls);
    > 1 means flowxai is faster."""
    out = {"peer_units_per_call": units_per_call,
           "peer_mean_s": peer["mean_s"], "peer_min_s": peer["min_s"],
           "peer_per_s_mean": units_per_call / peer["mean_s"],
           "peer_per_s_best": units_per_call / peer["min_s"]}
    if peer.get("cpu_mean_s"):
        out["peer_per_cpu_s"] = units_per_call / peer["cpu_mean_s"]
    if crit is not None:
        out["criterion"] = crit
        if crit.get("per_s"):
            out["ours_per_s_mean"] = crit["per_s"]
            out["ratio_mean"] = crit["per_s"] / out["peer_per_s_mean"]
    return out


def _json_default(o):
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if isinstance(o, pathlib.Path):
        return str(o)
    return str(o)


def stamp():
    return os.environ.get("FLOWXAI_BENCH_STAMP") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def save(name, payload):
    """Write benches/results/<name>-<UTC YYYYMMDDTHHMMSSZ>.json with machine(), the idle record of
    the last wait_idle() and `payload`; print and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"peer": name, "script": _rel(sys.argv[0]) if sys.argv and sys.argv[0] else None,
           "argv": sys.argv[1:], "threads": _PINNED.get("threads", THREADS),
           "idle": _LAST_IDLE, "machine": machine(), **payload}
    path = RESULTS / f"{name}-{stamp()}.json"
    n = 1
    while path.exists():  # never overwrite an earlier run
        path = RESULTS / f"{name}-{stamp()}-{n}.json"
        n += 1
    text = json.dumps(doc, indent=2, default=_json_default, allow_nan=True)
    path.write_text(text + "\n")
    print(f"saved {_rel(path)}", flush=True)
    return path


def fmt_rate(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.0f}"
