//! Corrected mode counts every fragment of a datagram in the datagram's flow (one packet per
//! fragment, the datagram's payload in total), over IPv4 and over IPv6's fragment header, on
//! the real capture `nfstream_tests/pcaps/dns_fragmented.pcap` (DNS answers too big for one
//! frame). Expected numbers are read off `tcpdump -vnr` of that capture (see each assertion).
use std::path::{Path, PathBuf};

use flowmeter::{extract, FlowRecord, MeterOptions, Mode, V3_HEADER};

fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/pcaps/nfstream_tests/pcaps/dns_fragmented.pcap")
}

fn cell(flow: &FlowRecord, name: &str) -> String {
    let c = V3_HEADER.iter().position(|h| h.trim() == name).unwrap();
    flow.cells[c].to_string()
}

fn number(flow: &FlowRecord, name: &str) -> f64 {
    cell(flow, name).parse().unwrap()
}

fn flows(mode: Mode) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let report = extract(&[capture()], &MeterOptions::of_mode(mode), |f| out.push(f)).unwrap();
    assert_eq!(
        report.frames,
        report.packets_in_flows + report.rejected_total()
    );
    out
}

fn find<'a>(flows: &'a [FlowRecord], src: &str, src_port: &str) -> &'a FlowRecord {
    flows
        .iter()
        .find(|f| cell(f, "Source IP") == src && cell(f, "Source Port") == src_port)
        .unwrap_or_else(|| panic!("no flow from {src}:{src_port}"))
}

#[test]
fn ipv4_fragments_count_in_their_datagrams_flow() {
    let flows = flows(Mode::Corrected);
    // 172.217.40.76.56680 > 193.24.227.238.53: a 40-byte query; the answer is IP id 53502 in
    // two fragments: IP length 1500 (offset 0, MF: 1480 bytes = 8 UDP + 1472) and IP length
    // 250 (offset 1480: 230 bytes).
    let f = find(&flows, "172.217.40.76", "56680");
    assert_eq!(cell(f, "Destination Port"), "53");
    assert_eq!(number(f, "Total Fwd Packets"), 1.0);
    assert_eq!(number(f, "Total Backward Packets"), 2.0);
    assert_eq!(number(f, "Total Length of Fwd Packets"), 40.0);
    assert_eq!(number(f, "Total Length of Bwd Packets"), 1472.0 + 230.0);
}

#[test]
fn ipv6_fragments_count_in_their_datagrams_flow() {
    let flows = flows(Mode::Corrected);
    // 2a00:1450:4013:c03::10a.46433 > 2001:470:765b::a25:53.53: a 58-byte query; the answer
    // is fragment id 0x28403c0b: 0|1448 (8 UDP + 1440) and 1448|61.
    let f = find(&flows, "2a00:1450:4013:c03::10a", "46433");
    assert_eq!(cell(f, "Destination Port"), "53");
    assert_eq!(number(f, "Total Fwd Packets"), 1.0);
    assert_eq!(number(f, "Total Backward Packets"), 2.0);
    assert_eq!(number(f, "Total Length of Fwd Packets"), 58.0);
    assert_eq!(number(f, "Total Length of Bwd Packets"), 1440.0 + 61.0);
}

#[test]
fn no_fragment_is_left_without_ports_in_corrected_mode() {
    // Every datagram's first fragment precedes the others in this capture.
    for f in flows(Mode::Corrected) {
        if cell(&f, "Protocol") == "17" {
            assert_ne!(
                (cell(&f, "Source Port"), cell(&f, "Destination Port")),
                ("0".to_string(), "0".to_string()),
                "{f:?}"
            );
        }
    }
}
