//! Differential test: the genuine CICFlowMeter V3 jar (`../shared/pcaps/oracle`) and
//! `cicflowmeter` mode on captures generated here (random TCP/UDP traffic between a few hosts,
//! FINs, gaps past the activity and flow timeouts, non-IP frames). Needs a Java runtime and
//! libpcap (CI installs both: openjdk-17-jre-headless, libpcap0.8); without them it says why it
//! did not run, and under `CI=true` it fails.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps/oracle/cicflowmeter-v3")
}

fn java_and_libpcap() -> Result<(), String> {
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Err("no Java runtime (apt-get install openjdk-17-jre-headless)".into());
    }
    let ldconfig = Command::new("ldconfig").arg("-p").output();
    match ldconfig {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("libpcap.so") => Ok(()),
        _ => Err("no libpcap (apt-get install libpcap0.8)".into()),
    }
}

#[test]
fn generated_captures_agree_with_the_v3_jar() {
    if let Err(why) = java_and_libpcap() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "CI=true but the V3 oracle cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shape = common::TrafficShape {
        frames: 3000,
        hosts: 6,
        ..common::TrafficShape::default()
    };
    let mut total = (0, 0, 0, 0);
    for seed in 1..=4u64 {
        let pcap = dir.path().join(format!("gen{seed}.pcap"));
        common::write_pcap(&pcap, &common::random_traffic(seed, shape));
        let out = dir.path().join(format!("out{seed}"));
        let run = Command::new("bash")
            .arg(oracle())
            .arg(&pcap)
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let csv = PathBuf::from(String::from_utf8_lossy(&run.stdout).trim().to_string());
        // Every generated frame is ≥ 60 bytes without padding: both padding modes agree.
        let a = common::agreement(&pcap, &csv, true);
        eprintln!(
            "seed {seed}: V3 {} flows, ours {}, matched {}, cells {} of {} equal {:?}",
            a.v3_flows, a.ours, a.matched, a.equal, a.cells, a.by_column
        );
        assert!(a.v3_flows > 100, "seed {seed}: too few flows to test");
        assert_eq!(
            (a.matched, a.ours),
            (a.v3_flows, a.v3_flows),
            "seed {seed}: flows"
        );
        assert_eq!(
            a.equal, a.cells,
            "seed {seed}: cells differ {:?}",
            a.by_column
        );
        total = (
            total.0 + a.v3_flows,
            total.1 + a.matched,
            total.2 + a.cells,
            total.3 + a.equal,
        );
    }
    eprintln!(
        "all: {} of {} flows, {} of {} cells",
        total.1, total.0, total.3, total.2
    );
}
