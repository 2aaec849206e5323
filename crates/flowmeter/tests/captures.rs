//! Every real capture in `../shared/pcaps` reads to the number of packets its STATS.txt entry
//! (dpkt) gives, with timestamps in order of the file and link types as recorded.
use std::path::{Path, PathBuf};

use flowmeter::Capture;

fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps")
}

/// (relative path, packets, link type) of every capture in STATS.txt.
fn stats() -> Vec<(String, u64, u16)> {
    let text = std::fs::read_to_string(pcaps().join("STATS.txt")).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line.strip_prefix("PCAP ") else {
            continue;
        };
        let info = lines.next().unwrap();
        let field = |key: &str| -> String {
            info.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("{path}: no {key} in {info}"))
                .to_string()
        };
        out.push((
            path.trim().to_string(),
            field("packets=").parse().unwrap(),
            field("linktype=").parse().unwrap(),
        ));
    }
    out
}

#[test]
fn every_capture_reads_to_its_recorded_packet_count() {
    let all = stats();
    assert!(all.len() >= 35, "{} captures in STATS.txt", all.len());
    for (path, packets, link_type) in all {
        let mut capture = Capture::open(&pcaps().join(&path)).unwrap();
        let mut n = 0u64;
        while let Some(frame) = capture.next_frame().unwrap() {
            n += 1;
            assert_eq!(frame.number, n, "{path}");
            assert_eq!(frame.link_type, link_type, "{path} frame {n}");
            assert!(frame.data.len() as u32 <= frame.wire_len.max(frame.data.len() as u32));
        }
        assert_eq!(n, packets, "{path}");
    }
}

#[test]
fn a_cut_capture_is_an_error_naming_the_frame() {
    let src = std::fs::read(pcaps().join("pcaphunt/ps-tcp_syn.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &src[..src.len() - 10]).unwrap();
    let mut capture = Capture::open(&cut).unwrap();
    let err = loop {
        match capture.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a cut file must not end cleanly"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("cut.pcap") && err.contains("truncated"),
        "{err}"
    );
    let text = dir.path().join("x.pcap");
    std::fs::write(&text, b"Flow ID,Src IP\n1,2\n").unwrap();
    let err = Capture::open(&text).unwrap_err().to_string();
    assert!(err.contains("not a pcap"), "{err}");
}

/// Both modes read every real capture with every frame accounted for; the corrected decoder
/// reads the IPv6 and non-Ethernet captures V3 cannot (more flows, fewer `not_ip` frames).
#[test]
fn both_modes_account_for_every_frame_of_every_capture() {
    use flowmeter::{extract, MeterOptions, Mode};
    let (mut v3_not_ip, mut fixed_not_ip) = (0, 0);
    for (path, packets, _) in stats() {
        for mode in [Mode::CicFlowMeter, Mode::Corrected] {
            let report =
                extract(&[pcaps().join(&path)], &MeterOptions::of_mode(mode), |_| {}).unwrap();
            assert_eq!(report.frames, packets, "{path} {mode:?}");
            assert_eq!(
                report.frames,
                report.packets_in_flows + report.rejected_total(),
                "{path} {mode:?}"
            );
            let not_ip = report.rejected.get("not_ip").copied().unwrap_or(0);
            match mode {
                Mode::CicFlowMeter => v3_not_ip += not_ip,
                Mode::Corrected => fixed_not_ip += not_ip,
            }
        }
    }
    eprintln!("frames rejected as not IP: V3 {v3_not_ip}, corrected {fixed_not_ip}");
}
