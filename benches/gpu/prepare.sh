#!/usr/bin/env bash
# Builds, on this machine, everything benches/gpu/run.sh needs on a GPU machine that has no Rust
# toolchain (x86-64 Linux with an NVIDIA driver and a CUDA toolkit or NVRTC wheel):
#   .gpu/bin/backends   mlp-core's device tests (tests/backends.rs) with the `cuda` feature
#   .gpu/bin/gpu-bench  the criterion bench benches/gpu.rs
#   .gpu/bin/xtask      `cargo xtask` with the `cuda` feature (for `reproduce --device cuda`)
# and a link .shared → ../shared, so the device call can carry `.shared/datasets` (the real
# samples travel with the call; nothing is copied into the project). `.gpu/` and `.shared` are
# ignored (.git/info/exclude). Release builds, stripped.
set -euo pipefail
cd "$(dirname "$0")/../.."
exe() { # the executable a `cargo … --no-run --message-format=json` build produced
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
rm -rf .gpu && mkdir -p .gpu/bin
cp "$(cargo test --release -p mlp-core --features cuda --test backends --no-run --message-format=json | exe backends | tail -1)" .gpu/bin/backends
cp "$(cargo bench --bench gpu --features cuda --no-run --message-format=json | exe gpu | tail -1)" .gpu/bin/gpu-bench
cargo build --release -p xtask --features cuda
cp target/release/xtask .gpu/bin/xtask
strip .gpu/bin/*
pwd > .gpu/checkout
ln -sfn ../shared .shared
for p in /.gpu/ /.shared; do grep -qxF "$p" .git/info/exclude || echo "$p" >> .git/info/exclude; done
du -sh .gpu/bin/* .shared/datasets/
