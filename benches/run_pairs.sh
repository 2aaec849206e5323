#!/usr/bin/env bash
# Runs each criterion bench and its Python peer back to back on an idle machine, with the same
# thread count on both sides, and keeps both sides' raw results under benches/results/
# (see benches/results/README.md).
#
# Usage, from anywhere in the checkout:
#   benches/run_pairs.sh [pair ...]        pairs: convert preprocess mlp quant rf shap flowmeter
#                                          (default: all)
# Environment:
#   FLOWXAI_BENCH_THREADS  threads for both sides (default: online CPUs); the bench runs with
#                          RAYON_NUM_THREADS and MATMUL_NUM_THREADS (matrixmultiply's GEMM pool in
#                          mlp-core, which defaults to the physical cores) set to it, the peer
#                          reads it (benches/peers/peerlib.py)
#   PEER_PYTHON            the peers' interpreter (default .venv-peers/bin/python; make it with
#                          python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt)
#   FLOWXAI_BENCH_MAX_LOAD (default 1.0), FLOWXAI_BENCH_IDLE_TIMEOUT (s, default 900): wait before
#                          each run until the 1-minute load average is below MAX_LOAD; after the
#                          timeout the run goes on and is recorded as not idle, unless
#                          FLOWXAI_BENCH_REQUIRE_IDLE=1, which fails the pair instead.
#   QUANT_PEER_ARGS        extra arguments for quant_peers.py (e.g. "--ort-only --cpu-time")
#
# Per pair, with one UTC stamp S (also given to the peer as FLOWXAI_BENCH_STAMP):
#   benches/results/pair-<pair>-S.txt               threads, commit, CPU, SIMD flags, load before
#                                                   each run, commands and exit codes
#   benches/results/bench-<pair>-S.log              the cargo bench output (criterion's console,
#                                                   the bench's data/thread/FMA-probe lines)
#   benches/results/criterion-<group>-S/<id>/       estimates.json, benchmark.json, sample.json of
#                                                   every bench id this run measured
#   benches/results/peer-<pair>-S.log               the peer's console output
#   benches/results/<pair>_peers-S.json             the peer's raw numbers, machine, ratios
#   (shap: also shap_compare-S.json, the peer file's means beside criterion's)
# Exit status: 0 when every step of every pair succeeded; the other pairs still run after a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

all_pairs=(convert preprocess mlp quant rf shap flowmeter)
pairs=("$@")
[ ${#pairs[@]} -gt 0 ] || pairs=("${all_pairs[@]}")
for p in "${pairs[@]}"; do
  case " ${all_pairs[*]} " in *" $p "*) ;; *) echo "unknown pair '$p' (pairs: ${all_pairs[*]})" >&2; exit 2 ;; esac
done

T="${FLOWXAI_BENCH_THREADS:-$(getconf _NPROCESSORS_ONLN)}"
PY="${PEER_PYTHON:-.venv-peers/bin/python}"
MAX_LOAD="${FLOWXAI_BENCH_MAX_LOAD:-1.0}"
IDLE_TIMEOUT="${FLOWXAI_BENCH_IDLE_TIMEOUT:-900}"
export FLOWXAI_BENCH_THREADS="$T" FLOWXAI_BENCH_MAX_LOAD="$MAX_LOAD" FLOWXAI_BENCH_IDLE_TIMEOUT="$IDLE_TIMEOUT"
CRIT="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"
RES=benches/results
mkdir -p "$RES"
if [ ! -x "$PY" ]; then
  echo "$PY not found: python3 -m venv .venv-peers && .venv-peers/bin/pip install -r benches/peers/requirements.txt" >&2
  exit 2
fi

load1() { cut -d' ' -f1 /proc/loadavg; }

# Waits until the 1-minute load is below MAX_LOAD; echoes "load1=<x> waited_s=<n> idle=<yes|no>".
wait_idle() {
  local t0=$SECONDS said=0
  while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
    if (( SECONDS - t0 >= IDLE_TIMEOUT )); then
      echo "WARNING: load $(load1) still >= $MAX_LOAD after ${IDLE_TIMEOUT} s" >&2
      echo "load1=$(load1) waited_s=$((SECONDS - t0)) idle=no"
      return 0
    fi
    if [ $said = 0 ]; then echo "waiting for the 1-minute load to fall below $MAX_LOAD (now $(load1))" >&2; said=1; fi
    sleep 10
  done
  echo "load1=$(load1) waited_s=$((SECONDS - t0)) idle=yes"
}

groups_of() {
  case $1 in
    convert) echo convert ;;
    preprocess) echo preprocess ;;
    mlp) echo mlp ;;
    quant) echo mlp_infer_int8 mlp_infer_int8_single_flow ;;
    rf) echo rf ;;
    shap) echo shap_kernel_mlp shap_tree_forest100 ;;
    flowmeter) echo flowmeter ;;
  esac
}

failed=0
for pair in "${pairs[@]}"; do
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  while [ -e "$RES/pair-$pair-$stamp.txt" ]; do sleep 1; stamp=$(date -u +%Y%m%dT%H%M%SZ); done
  export FLOWXAI_BENCH_STAMP="$stamp"
  info="$RES/pair-$pair-$stamp.txt"
  blog="$RES/bench-$pair-$stamp.log"
  plog="$RES/peer-$pair-$stamp.log"
  marker=$(mktemp)
  py=$PY
  if [ "$pair" = flowmeter ]; then py="${FLOWPEER_PYTHON:-.venv-flowpeers/bin/python}"; fi
  dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | head -c1 | wc -c)
  {
    echo "pair: $pair"
    echo "stamp: $stamp"
    echo "threads: $T (RAYON_NUM_THREADS and MATMUL_NUM_THREADS for the bench, FLOWXAI_BENCH_THREADS for the peer)"
    echo "git: $(git rev-parse --verify -q HEAD || echo unknown)$([ "$dirty" != 0 ] && echo ' (dirty)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "logical cpus: $(getconf _NPROCESSORS_ONLN)"
    echo "simd: $(for f in avx2 fma avx512f avx512bw avx512_vnni avx_vnni; do
        grep -m1 '^flags' /proc/cpuinfo | grep -qw "$f" && printf '%s ' "$f"; done)"
    echo "peer python: $py ($("$py" -V 2>&1))"
  } > "$info"
  echo "=== $pair ($stamp), $T threads"

  run_step() { # label, log, command...
    local label=$1 log=$2; shift 2
    local idle rc
    idle=$(wait_idle)
    echo "$label load before: $idle" >> "$info"
    if [ "${FLOWXAI_BENCH_REQUIRE_IDLE:-0}" = 1 ] && [[ $idle == *idle=no ]]; then
      echo "$label: skipped (not idle)" >> "$info"; return 1
    fi
    echo "$label command: $*" >> "$info"
    echo "--- $label: $*"
    if "$@" 2>&1 | tee "$log"; then rc=0; else rc=$?; fi
    echo "$label rc: $rc (log $log)" >> "$info"
    return "$rc"
  }
  bench() {
    run_step bench "$blog" env RAYON_NUM_THREADS="$T" MATMUL_NUM_THREADS="$T" \
      cargo bench --bench "$pair" -- --noplot
  }
  peer() { run_step peer "$plog" "$py" "benches/peers/${pair}_peers.py" "$@"; }

  ok=1
  case $pair in
    shap)  # the peer exports the models and rows the bench explains: it runs first
      peer && bench || ok=0 ;;
    quant)
      # shellcheck disable=SC2086
      bench && peer ${QUANT_PEER_ARGS:-} || ok=0 ;;
    *)
      bench && peer || ok=0 ;;
  esac

  for g in $(groups_of "$pair"); do
    [ -d "$CRIT/$g" ] || continue
    dest="$RES/criterion-$g-$stamp"
    n=0
    while IFS= read -r est; do
      d=$(dirname "$est")                 # <crit>/<group>/<id...>/new
      id=${d#"$CRIT/$g/"}; id=${id%/new}
      mkdir -p "$dest/$id"
      for f in estimates.json benchmark.json sample.json; do
        [ -f "$d/$f" ] && cp "$d/$f" "$dest/$id/"
      done
      n=$((n + 1))
    done < <(find "$CRIT/$g" -path '*/new/estimates.json' -newer "$marker")
    echo "criterion $g: $n bench ids copied to $dest" >> "$info"
  done
  rm -f "$marker"

  if [ "$pair" = shap ] && [ $ok = 1 ]; then
    pj=$(ls -t "$RES"/shap_peers-"$stamp"*.json 2>/dev/null | head -1 || true)
    if [ -n "$pj" ]; then
      # No timing here (it reads two files), so no wait for an idle machine.
      echo "compare command: $PY benches/peers/shap_peers.py --compare $pj" >> "$info"
      if "$PY" benches/peers/shap_peers.py --compare "$pj" 2>&1 | tee "$RES/compare-shap-$stamp.log"; then
        echo "compare rc: 0" >> "$info"
      else
        echo "compare rc: $?" >> "$info"; ok=0
      fi
    fi
  fi
  grep -h "FP32 FMA peak" "$blog" >> "$info" 2>/dev/null || true
  echo "peer json: $(ls "$RES"/"${pair}"_peers-"$stamp"*.json 2>/dev/null | tr '\n' ' ')" >> "$info"
  echo "result: $([ $ok = 1 ] && echo ok || echo FAILED)" >> "$info"
  [ $ok = 1 ] || failed=1
  echo "=== $pair: $([ $ok = 1 ] && echo ok || echo FAILED); see $info"
done
exit $failed
