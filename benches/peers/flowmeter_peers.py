"""Peers of benches/flowmeter.rs: packets/s of NFStream, Python cicflowmeter and the CICFlowMeter
V3 jar on the bench's capture (target/flowmeter-bench/replay_10m.pcap: 10,000,000 frames,
**synthetic (replayed real traffic)**, written by the bench), beside flowxai's `extract`.

Each peer is timed once (wall clock and the CPU seconds of its processes, children included):
NFStream and the V3 jar on the whole capture (about 5 minutes each), Python cicflowmeter on its
first 1,000,000 frames (replay_1m.pcap; the 10M would take over an hour), so repeating them 10
times as criterion does would take hours; criterion's mean of its 10 runs of ours on the same
capture (`extract_v3`, `extract_v3_1m`) is compared with that one run.
- NFStream 6.6.0: NFStreamer(statistical_analysis=True, n_dissections=0), which computes the
  post-mortem statistics closest to CICFlowMeter's; n_meters = FLOWXAI_BENCH_THREADS.
- cicflowmeter 0.2.0 (pip, Python + scapy 2.5.0, needs tcpdump): `cicflowmeter -f CAPTURE -c OUT.csv`
  (with scapy >= 2.6 it writes no flow, so requirements-flowmeter.txt pins scapy).
- CICFlowMeter V3 jar: ../shared/pcaps/oracle/cicflowmeter-v3 (Java 17 + libpcap), with an
  18 GiB heap (FLOWXAI_V3_HEAP). It runs out of memory on the 10M frames (a failure is kept as
  the result), so `v3_1m` times it on the 1M prefix too.
flowxai runs on one thread; the peers' CPU seconds are recorded so a per-CPU-second comparison
is possible. Output: benches/results/flowmeter_peers-<UTC stamp>.json.

Run from the repository root, after `cargo bench --bench flowmeter` (which writes the capture):
    FLOWXAI_BENCH_THREADS=2 .venv-flowpeers/bin/python benches/peers/flowmeter_peers.py [PEER…]
(PEER: nfstream, cicflowmeter, v3, v3_1m; default all). The flow-meter peers pin numpy < 2, so they get
a venv of their own, on a fresh machine (from the repository root):
    python3 -m venv .venv-flowpeers && .venv-flowpeers/bin/pip install -r benches/peers/requirements-flowmeter.txt
    apt-get install tcpdump openjdk-17-jre-headless libpcap0.8
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

import peerlib  # first: sets the thread variables

CAPTURE = peerlib.ROOT / "target" / "flowmeter-bench" / "replay_10m.pcap"
FRAMES = 10_000_000
# Python cicflowmeter needs over an hour for the 10M frames (about 2.5k frames/s): it is timed
# on the first 1M frames of the same replay, beside the bench's `extract_v3_1m`.
PREFIX = peerlib.ROOT / "target" / "flowmeter-bench" / "replay_1m.pcap"
PREFIX_FRAMES = 1_000_000
ORACLE = peerlib.ROOT.parent / "shared" / "pcaps" / "oracle" / "cicflowmeter-v3"


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(run, frames):
    peerlib.wait_idle()
    c0, s0, t0 = children_cpu(), self_cpu(), time.perf_counter()
    flows = run()
    wall = time.perf_counter() - t0
    if not flows:
        # A peer that read the packets but wrote no flow did not do the work being timed
        # (cicflowmeter 0.2.0 with scapy >= 2.6 does exactly that).
        raise SystemExit(f"{run.__name__} wrote no flow: not a measurement of flow extraction")
    cpu = children_cpu() - c0 + self_cpu() - s0
    return {"frames": frames, "seconds": wall, "cpu_seconds": cpu, "frames_per_s": frames / wall,
            "frames_per_cpu_s": frames / cpu if cpu > 0 else None, "flows": flows}


def nfstream():
    from nfstream import NFStreamer
    streamer = NFStreamer(source=str(CAPTURE), statistical_analysis=True, n_dissections=0,
                          n_meters=peerlib.THREADS)
    return sum(1 for _ in streamer)


def cicflowmeter():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "flows.csv")
        exe = os.path.join(os.path.dirname(sys.executable), "cicflowmeter")
        subprocess.run([exe, "-f", str(PREFIX), "-c", out], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return max(0, sum(1 for _ in f) - 1)


# V3 keeps every flow in memory until the capture ends: with the JVM's default heap (a quarter
# of RAM, 6 GiB here) it dies of OutOfMemoryError on the 10M-frame capture (after 106 s on the
# 2-core, 24 GiB machine, 2026-12-08), so it runs with a larger heap.
V3_HEAP = os.environ.get("FLOWXAI_V3_HEAP", "18g")


class PeerFailed(Exception):
    pass


def v3_on(capture):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, JAVA_TOOL_OPTIONS=f"-Xmx{V3_HEAP}")
        r = subprocess.run(["bash", str(ORACLE), str(capture), d], capture_output=True,
                           text=True, env=env)
        if r.returncode != 0:
            logs = [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".log")]
            tail = open(logs[0]).read()[-600:] if logs else r.stderr[-600:]
            raise PeerFailed(f"the V3 jar failed (heap {V3_HEAP}):\n{tail}")
        with open(r.stdout.strip().splitlines()[-1]) as f:
            return max(0, sum(1 for _ in f) - 1)


def v3():
    return v3_on(CAPTURE)


def v3_1m():
    return v3_on(PREFIX)


# peer: (function, frames it reads, the criterion id timed on the same capture)
PEERS = {"nfstream": (nfstream, FRAMES, "extract_v3"),
         "cicflowmeter": (cicflowmeter, PREFIX_FRAMES, "extract_v3_1m"),
         "v3": (v3, FRAMES, "extract_v3"),
         # V3 runs out of memory on the 10M frames even with an 18 GiB heap (2026-12-08):
         # timed on the 1M prefix as well.
         "v3_1m": (v3_1m, PREFIX_FRAMES, "extract_v3_1m")}

for capture in (CAPTURE, PREFIX):
    if not capture.exists():
        sys.exit(f"{capture} missing: run `cargo bench --bench flowmeter` first (it writes it)")
wanted = sys.argv[1:] or list(PEERS)
criterion = {i: peerlib.criterion("flowmeter", i) for i in ("extract_v3", "extract_v3_1m")}
results = {}
for name in wanted:
    run, frames, ours_id = PEERS[name]
    ours = criterion[ours_id]
    print(f"{name}: running on {frames:,} frames …", flush=True)
    started = time.perf_counter()
    try:
        r = timed(run, frames)
    except PeerFailed as e:
        # Kept as a result: the tool could not process this capture.
        results[name] = {"frames": frames, "failed": str(e),
                         "seconds_until_failure": time.perf_counter() - started}
        print(f"{name}: FAILED after {results[name]['seconds_until_failure']:.0f} s: {e}", flush=True)
        continue
    r["ours"] = ours_id
    if ours and ours.get("per_s"):
        r["ratio_ours_per_s_mean"] = ours["per_s"] / r["frames_per_s"]
    results[name] = r
    print(f"{name}: {r['seconds']:.1f} s, {r['frames_per_s']:,.0f} frames/s "
          f"({peerlib.fmt_rate(r['frames_per_cpu_s'])} per CPU-s), {r['flows']} flows"
          + (f" | ours {ours['per_s']:,.0f} frames/s: {r['ratio_ours_per_s_mean']:.1f}x" if ours and ours.get('per_s') else ""),
          flush=True)
peerlib.save("flowmeter_peers", {
    "data": "synthetic (replayed real traffic): target/flowmeter-bench/replay_10m.pcap, 10,000,000 "
            "frames; replay_1m.pcap = its first 1,000,000 (Python cicflowmeter)",
    "statistic": "one timed run per peer (wall and CPU seconds); criterion: mean of 10 runs, one thread",
    "v3_heap": V3_HEAP,
    "criterion": criterion, "peers": results})
