#!/usr/bin/env bash
# The GPU checks of mlp-core's CUDA backend, in one run (from binaries made by prepare.sh; see
# docs/BENCHMARKS.md, section GPU, for what they showed):
#   1. the device tests on the real GPU (FLOWXAI_REQUIRE_CUDA=1: no device is a failure),
#   2. the criterion bench benches/gpu.rs (CUDA epoch and inference, CPU backend beside it),
#   3. the PyTorch peer benches/peers/mlp_gpu_peers.py on the same GPU,
#   4. `xtask reproduce --device cuda` on the real samples (results as results-gpu.tgz).
# Logs and results go to $OUT (default /tmp/flowxai-gpu). Steps run even when an earlier one
# fails; the exit status says whether any failed. Set RUN_STEPS (e.g. "1 2") to run fewer,
# BENCH_FILTER (a criterion filter, e.g. "gpu/") to bench less.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out="${OUT:-/tmp/flowxai-gpu}"
mkdir -p "$out"
steps="${RUN_STEPS:-1 2 3 4}"
failed=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc $rc in $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failed=1
  return 0
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu \
  --format=csv > "$out/nvidia-smi.csv" 2>&1
cat "$out/nvidia-smi.csv"

# libnvrtc: the CUDA toolkit's (matches the driver), else a pip wheel's. cudarc dlopens
# `libnvrtc.so` first, so a link by that name selects it; its directory holds the builtins.
nvrtc=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  $(python3 -c 'import site,glob; print(" ".join(glob.glob(site.getsitepackages()[0]+"/nvidia/*/lib")))' 2>/dev/null); do
  f=$(ls "$d"/libnvrtc.so.1[0-9]* 2>/dev/null | grep -v builtins | head -1)
  if [ -n "$f" ]; then nvrtc=$f; break; fi
done
echo "libnvrtc: ${nvrtc:-not found}"
mkdir -p /tmp/flowxai-nvrtc
[ -n "$nvrtc" ] && ln -sf "$nvrtc" /tmp/flowxai-nvrtc/libnvrtc.so
export LD_LIBRARY_PATH="/tmp/flowxai-nvrtc:${nvrtc:+$(dirname "$nvrtc"):}${LD_LIBRARY_PATH:-}"

# The binaries look for the samples at <checkout they were built in>/../shared/datasets
# (prepare.sh records that path); the call carries them as .shared/datasets.
data="$root/.shared/datasets"
built=$(cat .gpu/checkout 2>/dev/null || true)
if [ -n "$built" ] && [ ! -e "$built/../shared/datasets" ]; then
  mkdir -p "$built" && ln -sfn "$root/.shared" "$(dirname "$built")/shared"
fi
echo "samples: $(ls "$data" 2>&1 | tr '\n' ' ')"

for s in $steps; do case $s in
  1) step tests env FLOWXAI_REQUIRE_CUDA=1 .gpu/bin/backends --include-ignored --test-threads=1 cuda ;;
  2) step bench .gpu/bin/gpu-bench --bench --noplot ${BENCH_FILTER:-} ;;
  3) step peers python3 benches/peers/mlp_gpu_peers.py ;;
  4) step reproduce .gpu/bin/xtask reproduce --device cuda --data-dir "$data" --out /tmp/results-gpu
     tar czf "$out/results-gpu.tgz" -C /tmp results-gpu 2>/dev/null ;;
esac; done
for f in "$out"/*.log; do echo "----- $(basename "$f") (tail)"; tail -n 25 "$f"; done
exit $failed
