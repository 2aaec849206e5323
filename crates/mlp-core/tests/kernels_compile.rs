//! Every CUDA kernel source compiles with NVRTC (needs `libnvrtc` only, no GPU) and defines
//! exactly the entry points the host code launches.
//!
//! Without `libnvrtc` on the loader path the compile test prints "skipped: libnvrtc not found"
//! and passes, unless `FLOWXAI_REQUIRE_NVRTC=1` or `CI=true` (`.ci/nvrtc-check` installs the
//! library), where it fails. A compile error always fails. The compile test exists only with
//! `--features cuda`.
use mlp_core::backend::kernels::MODULES;

#[cfg(feature = "cuda")]
fn nvrtc_required() -> bool {
    std::env::var("FLOWXAI_REQUIRE_NVRTC").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The `extern "C" __global__ void NAME(` declarations of a source.
fn declared_kernels(src: &str) -> Vec<String> {
    src.split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn kernel_lists_match_sources() {
    for m in MODULES {
        let mut declared = declared_kernels(m.source);
        let mut listed: Vec<String> = m.functions.iter().map(|s| s.to_string()).collect();
        declared.sort();
        listed.sort();
        assert_eq!(declared, listed, "kernels/{}.cu", m.name);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn kernels_compile() {
    use mlp_core::backend::kernels::{compile_ptx, nvrtc_present};
    if !nvrtc_present() {
        assert!(
            !nvrtc_required(),
            "FLOWXAI_REQUIRE_NVRTC=1 or CI=true but libnvrtc could not be loaded \
             (LD_LIBRARY_PATH={:?}): run .ci/nvrtc-check, which installs it",
            std::env::var("LD_LIBRARY_PATH").unwrap_or_default()
        );
        eprintln!("skipped: libnvrtc not found");
        return;
    }
    for m in MODULES {
        let ptx = compile_ptx(m).unwrap_or_else(|e| panic!("{e}"));
        let text = ptx.to_src();
        for f in m.functions {
            assert!(
                text.contains(&format!(".entry {f}(")),
                "kernels/{}.cu: no PTX entry for {f}",
                m.name
            );
        }
        eprintln!("kernels/{}.cu: {} bytes of PTX", m.name, text.len());
    }
    // A broken source is a typed error carrying NVRTC's log, not a panic.
    let broken = mlp_core::backend::kernels::KernelModule {
        name: "broken",
        source: "extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }",
        functions: &["k"],
        arch: None,
    };
    match compile_ptx(&broken) {
        Err(mlp_core::BackendError::Compile { module, log }) => {
            assert_eq!(module, "broken");
            assert!(log.contains("undefined_name"), "log: {log}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}
