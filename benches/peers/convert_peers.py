"""Peers of `cargo bench --bench convert`: polars and pyarrow converting the same
synthetic (resampled) CIC-DDoS2019-shaped CSV to Parquet (zstd level 1, like flowdata), with the
same cleaning: strip header names, drop identifier / duplicated / CWE columns, features to
float32, drop rows with any non-finite feature (Infinity, NaN, empty), trim labels, map
UDP-lag -> UDPLag, add family / is_attack / dataset / source_file / source_line columns.

Statistic: the MEAN wall-clock time of --repeat conversions (default 10, criterion's sample_size
for group convert) after one untimed warm-up, as MB/s and flows/s, against criterion's mean of
convert/csv_to_parquet_zstd (throughput: the file's bytes); the min is kept beside it.
Threads: FLOWXAI_BENCH_THREADS (default: all CPUs) for polars (POLARS_MAX_THREADS) and pyarrow
(set_cpu_count); run the Rust bench with RAYON_NUM_THREADS set to the same number. Waits for the
1-minute load average to fall below 1 before timing (recorded).
Also checks once that flowdata's own Parquet output (target/flowdata-bench/convert_out.parquet)
is readable by pyarrow and polars and agrees with them row for row.
Output: benches/results/convert_peers-<UTC stamp>.json (raw samples, machine, criterion's
numbers, the ratios).

Run from the repository root, after the bench has generated the file:
    cargo bench --bench convert
    .venv-peers/bin/python benches/peers/convert_peers.py [csv] [--repeat 10] [--peers polars,pyarrow]
or both sides back to back: `benches/run_pairs.sh convert`.
Venv on a fresh machine (from the repository root):
    python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt
"""
import argparse, os, sys, time

import peerlib  # first: sets POLARS_MAX_THREADS and the BLAS variables before the imports below

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
DEFAULT = os.path.join(ROOT, "target/flowdata-bench/cicddos2019_synthetic_resampled.csv")
IDS = {"", "Unnamed: 0", "Flow ID", "Source IP", "Source Port", "Destination IP", "Destination Port",
       "Timestamp", "SimillarHTTP", "Inbound"}
DROP = {"Fwd Header Length.1", "CWE Flag Count"}
REFLECTION = {"DrDoS_DNS", "DrDoS_LDAP", "DrDoS_MSSQL", "DrDoS_NTP", "DrDoS_NetBIOS", "DrDoS_SNMP",
              "DrDoS_SSDP", "DrDoS_UDP", "LDAP", "MSSQL", "NetBIOS", "Portmap", "TFTP"}


def header(path):
    with open(path, "r", errors="replace") as f:
        return f.readline().rstrip("\r\n").split(",")


def family_expr(col):
    return (pl.when(col == "BENIGN").then(pl.lit("benign"))
            .when(col.is_in(list(REFLECTION))).then(pl.lit("reflection_ddos"))
            .otherwise(pl.lit("flood_dos")))


def run_polars(path, out):
    raw = header(path)
    names = [h.strip() for h in raw]
    feats = [n for n in names if n not in IDS | DROP | {"Label"}]
    # Every column as string first would be slow; give the features a Float64 schema so
    # `Infinity`/empty parse as inf/null, the rest as strings.
    schema = {r: (pl.Float64 if n in feats else pl.Utf8) for r, n in zip(raw, names)}
    df = pl.read_csv(path, schema=schema, truncate_ragged_lines=True, row_index_name="source_line",
                     row_index_offset=2)
    df = df.rename({r: n for r, n in zip(raw, names)})
    fcols = [pl.col(n).cast(pl.Float32) for n in feats]
    df = df.select(fcols + [pl.col("Label").str.strip_chars().alias("label_raw"), pl.col("source_line")])
    finite = pl.all_horizontal([pl.col(n).is_finite().fill_null(False) for n in feats])
    df = df.filter(finite)
    label = pl.when(pl.col("label_raw") == "UDP-lag").then(pl.lit("UDPLag")).otherwise(pl.col("label_raw"))
    df = df.with_columns(label.alias("label")).with_columns(
        family_expr(pl.col("label")).alias("family"),
        (pl.col("label") != "BENIGN").alias("is_attack"),
        pl.lit("cic-ddos2019").alias("dataset"),
        pl.lit(path).alias("source_file"),
    )
    df = df.select(feats + ["label", "label_raw", "family", "is_attack", "dataset", "source_file", "source_line"])
    df.write_parquet(out, compression="zstd", compression_level=1)
    return df.height


def run_pyarrow(path, out):
    raw = header(path)
    names = [h.strip() for h in raw]
    feats = [n for n in names if n not in IDS | DROP | {"Label"}]
    types = {r: (pa.float64() if n in feats else pa.string()) for r, n in zip(raw, names)}
    t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types=types, include_columns=[r for r, n in zip(raw, names) if n in feats or n == "Label"],
        null_values=[""], strings_can_be_null=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"))
    t = t.rename_columns([n.strip() for n in t.column_names])
    n = t.num_rows
    cols = {f: pc.cast(t[f], pa.float32()) for f in feats}
    mask = None
    for f in feats:
        ok = pc.fill_null(pc.is_finite(cols[f]), False)
        mask = ok if mask is None else pc.and_(mask, ok)
    label_raw = pc.utf8_trim_whitespace(t["Label"])
    label = pc.replace_substring(label_raw, "UDP-lag", "UDPLag")
    benign = pc.equal(label, "BENIGN")
    fam = pc.if_else(benign, "benign",
                     pc.if_else(pc.is_in(label, pa.array(sorted(REFLECTION))), "reflection_ddos", "flood_dos"))
    out_t = pa.table({**cols, "label": label, "label_raw": label_raw, "family": fam,
                      "is_attack": pc.invert(benign),
                      "dataset": pa.array(np.full(n, "cic-ddos2019", dtype=object), pa.string()),
                      "source_file": pa.array(np.full(n, path, dtype=object), pa.string()),
                      "source_line": pa.array(np.arange(2, n + 2, dtype=np.uint64))})
    out_t = out_t.filter(mask)
    pq.write_table(out_t, out, compression="zstd", compression_level=1)
    return out_t.num_rows


def check_flowdata_output(ours, polars_out):
    if not os.path.exists(ours):
        print(f"(skip check: {ours} not found; run the bench first)")
        return
    a = pq.read_table(ours)
    b = pl.read_parquet(ours)
    p = pl.read_parquet(polars_out)
    assert a.num_rows == b.height == p.height, (a.num_rows, b.height, p.height)
    for col in ["flow_bytes_per_s", "fwd_header_length", "idle_min"]:
        assert np.array_equal(b[col].to_numpy(), p[{"flow_bytes_per_s": "Flow Bytes/s",
                                                     "fwd_header_length": "Fwd Header Length",
                                                     "idle_min": "Idle Min"}[col]].to_numpy()), col
    assert b["label"].to_list() == p["label"].to_list()
    assert b["source_line"].to_list() == p["source_line"].cast(pl.UInt64).to_list()
    print(f"check: flowdata's Parquet read by pyarrow {pa.__version__} and polars {pl.__version__}: "
          f"{a.num_rows} rows, {a.num_columns} columns, features and labels equal to polars' own conversion")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=10, help="timed runs (criterion's sample_size)")
    ap.add_argument("--peers", default="polars,pyarrow")
    args = ap.parse_args()
    if not os.path.exists(args.csv):
        sys.exit(f"{args.csv}: not found; run `cargo bench --bench convert` first to generate it")
    peerlib.pin_threads()
    size = os.path.getsize(args.csv)
    print(f"input: {args.csv} (synthetic (resampled), {size / 1e6:.1f} MB), threads {peerlib.THREADS}, "
          f"{args.repeat} timed runs each")
    # Outputs always go to target/, never beside the input (the input may be shared data).
    outdir = os.path.join(ROOT, "target/flowdata-bench")
    os.makedirs(outdir, exist_ok=True)
    peers = {"polars": run_polars, "pyarrow": run_pyarrow}
    ours = peerlib.criterion("convert", "csv_to_parquet_zstd")
    peerlib.wait_idle()
    results = {}
    for name in args.peers.split(","):
        fn = peers[name]
        out = os.path.join(outdir, f"peer_{name}.parquet")
        rows = fn(args.csv, out)  # also the warm-up
        st = peerlib.measure(lambda: fn(args.csv, out), args.repeat, warmup=0)
        st["warmup"] = 1  # the call above
        r = peerlib.compare(ours, st, size)
        r.update({"version": pl.__version__ if name == "polars" else pa.__version__, "rows_kept": rows,
                  "flows_per_s_mean": rows / st["mean_s"], "mb_per_s_mean": size / st["mean_s"] / 1e6})
        results[name] = r
        line = (f"{name:8s} {r['version']:8s} mean {st['mean_s']:.3f} s  {r['mb_per_s_mean']:7.1f} MB/s  "
                f"{r['flows_per_s_mean']:,.0f} flows/s  (best {st['min_s']:.3f} s)  rows kept {rows}")
        if "ratio_mean" in r:
            line += f" | ours {r['ours_per_s_mean'] / 1e6:.1f} MB/s, ours/peer {r['ratio_mean']:.2f}x"
        print(line, flush=True)
    if "polars" in args.peers:
        check_flowdata_output(os.path.join(outdir, "convert_out.parquet"), os.path.join(outdir, "peer_polars.parquet"))
    peerlib.save("convert_peers", {
        "data": {"csv": args.csv, "bytes": size},
        "statistic": f"mean of {args.repeat} timed runs after 1 warm-up (min kept); criterion: mean of its samples",
        "criterion_csv_to_flowframe": peerlib.criterion("convert", "csv_to_flowframe"),
        "results": results,
    })


main()
