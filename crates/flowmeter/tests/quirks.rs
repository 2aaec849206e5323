//! Every V3 quirk is one switch: turning that switch alone off (from `Quirks::V3`) changes
//! exactly what docs/CICFLOWMETER_V3.md §8 says it changes, on a capture built for it.
mod common;

use etherparse::{PacketBuilder, TcpHeader};
use flowmeter::{extract, flags, MeterOptions, Quirks, V3_HEADER};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

/// An Ethernet/IPv4/TCP frame.
fn tcp(
    from: [u8; 4],
    to: [u8; 4],
    ports: (u16, u16),
    fl: u8,
    window: u16,
    payload: usize,
) -> Vec<u8> {
    let mut h = TcpHeader::new(ports.0, ports.1, 1, window);
    h.fin = fl & flags::FIN != 0;
    h.syn = fl & flags::SYN != 0;
    h.rst = fl & flags::RST != 0;
    h.psh = fl & flags::PSH != 0;
    h.ack = fl & flags::ACK != 0;
    h.urg = fl & flags::URG != 0;
    h.ece = fl & flags::ECE != 0;
    h.cwr = fl & flags::CWR != 0;
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, from[3]], [2, 0, 0, 0, 0, to[3]])
        .ipv4(from, to, 64)
        .tcp_header(h);
    let data = vec![0x61u8; payload];
    let mut v = Vec::new();
    b.write(&mut v, &data).unwrap();
    v
}

/// An Ethernet/IPv4/UDP frame.
fn udp(from: [u8; 4], to: [u8; 4], ports: (u16, u16), payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, from[3]], [2, 0, 0, 0, 0, to[3]])
        .ipv4(from, to, 64)
        .udp(ports.0, ports.1);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x62u8; payload]).unwrap();
    v
}

/// The rows `quirks` gives for `frames` (µs timestamps), by Flow ID then start.
fn rows(frames: &[(i64, Vec<u8>)], quirks: Quirks) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("q.pcap");
    common::write_pcap(&pcap, frames);
    let options = MeterOptions {
        quirks,
        ..MeterOptions::default()
    };
    let mut out = Vec::new();
    extract(&[&pcap], &options, |f| {
        out.push(f.cells.iter().map(|c| c.to_string()).collect::<Vec<_>>())
    })
    .unwrap();
    out.sort_by(|a: &Vec<String>, b| (&a[0], &a[6]).cmp(&(&b[0], &b[6])));
    out
}

fn col(name: &str) -> usize {
    V3_HEADER.iter().position(|h| h.trim() == name).unwrap()
}

/// `column` of each row, V3 against V3 with `off` applied.
fn compare(
    frames: &[(i64, Vec<u8>)],
    off: impl Fn(&mut Quirks),
    column: &str,
) -> (Vec<String>, Vec<String>) {
    let mut q = Quirks::V3;
    off(&mut q);
    let c = col(column);
    let v3 = rows(frames, Quirks::V3)
        .iter()
        .map(|r| r[c].clone())
        .collect();
    let fixed = rows(frames, q).iter().map(|r| r[c].clone()).collect();
    (v3, fixed)
}

const S: i64 = 1_000_000;
const T0: i64 = 1_700_000_000 * S;

#[test]
fn padding_as_payload() {
    // Bare SYN/ACK frames are 54 bytes: Ethernet pads them to 60.
    let pad = |mut f: Vec<u8>| {
        f.resize(60, 0);
        f
    };
    let frames = [
        (T0, pad(tcp(A, B, (1000, 80), flags::SYN, 100, 0))),
        (T0 + 10, pad(tcp(A, B, (1000, 80), flags::ACK, 100, 0))),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.padding_as_payload = false,
        "Total Length of Fwd Packets",
    );
    assert_eq!(
        (v3, fixed),
        (vec!["12.0".to_string()], vec!["0.0".to_string()])
    );
}

#[test]
fn udp_header_stale() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 1, udp(A, B, (5000, 53), 30)),
        (T0 + 2, udp(B, A, (53, 5000), 30)),
    ];
    let (v3, fixed) = compare(&frames, |q| q.udp_header_stale = false, "Fwd Header Length");
    // The TCP flow has one packet (dropped); the UDP flow's forward packet counts 20 (the
    // last TCP header) in V3, 8 fixed.
    assert_eq!((v3, fixed), (vec!["20".to_string()], vec!["8".to_string()]));
}

#[test]
fn sip_5060() {
    let frames = [
        (T0, tcp(A, B, (1000, 5060), flags::SYN, 100, 0)),
        (T0 + 10, tcp(A, B, (1000, 5060), flags::SYN, 100, 0)),
    ];
    let (v3, fixed) = compare(&frames, |q| q.sip_5060 = false, "Protocol");
    assert_eq!((v3, fixed), (vec!["0".to_string()], vec!["6".to_string()]));
}

#[test]
fn v3_decoder() {
    let frame = |payload: usize| {
        let b = PacketBuilder::ethernet2([0x78, 0, 0, 0, 0, 1], [0x78, 0, 0, 0, 0, 2])
            .ipv6(
                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .udp(5000, 53);
        let mut v = Vec::new();
        b.write(&mut v, &vec![0u8; payload]).unwrap();
        v
    };
    let frames = [(T0, frame(20)), (T0 + 10, frame(20))];
    let (v3, fixed) = compare(&frames, |q| q.v3_decoder = false, "Source IP");
    // V3 reads the frame as IPv4 from byte 0: a "mangled" address.
    assert_eq!(v3, vec!["134.221.96.0".to_string()]);
    assert_eq!(fixed, vec!["2001:db8::1".to_string()]);
}

#[test]
fn close_on_first_fin() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (
            T0 + 10,
            tcp(A, B, (1000, 80), flags::FIN | flags::ACK, 100, 0),
        ),
        (
            T0 + 20,
            tcp(B, A, (80, 1000), flags::FIN | flags::ACK, 100, 0),
        ),
        (T0 + 30, tcp(A, B, (1000, 80), flags::ACK, 100, 0)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.close_on_first_fin = false,
        "Total Fwd Packets",
    );
    // V3: the first FIN closes a 2-packet flow; the peer's FIN and the last ACK make another.
    assert_eq!(v3, vec!["2".to_string(), "1".to_string()]);
    assert_eq!(fixed, vec!["3".to_string()]);
}

#[test]
fn rst_ignored() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(B, A, (80, 1000), flags::RST, 0, 0)),
        (T0 + 20, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 30, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
    ];
    let (v3, fixed) = compare(&frames, |q| q.rst_ignored = false, "Total Fwd Packets");
    assert_eq!(v3, vec!["3".to_string()]);
    // Ended by the RST (1 fwd + the RST), then a new flow of the two later packets.
    assert_eq!(fixed, vec!["1".to_string(), "2".to_string()]);
}

fn handshake_then_data() -> Vec<(i64, Vec<u8>)> {
    vec![
        (T0, tcp(A, B, (1000, 80), flags::SYN, 100, 0)),
        (
            T0 + 10,
            tcp(B, A, (80, 1000), flags::SYN | flags::ACK, 200, 0),
        ),
        (
            T0 + 20,
            tcp(A, B, (1000, 80), flags::PSH | flags::ACK, 100, 10),
        ),
        (
            T0 + 30,
            tcp(B, A, (80, 1000), flags::PSH | flags::ACK, 300, 20),
        ),
        (
            T0 + 40,
            tcp(A, B, (1000, 80), flags::PSH | flags::ACK, 100, 30),
        ),
    ]
}

#[test]
fn flags_of_first_packet() {
    let f = handshake_then_data();
    let (v3, fixed) = compare(&f, |q| q.flags_of_first_packet = false, "Fwd PSH Flags");
    assert_eq!((v3, fixed), (vec!["0".to_string()], vec!["2".to_string()]));
    let (v3, fixed) = compare(&f, |q| q.flags_of_first_packet = false, "Bwd PSH Flags");
    assert_eq!((v3, fixed), (vec!["0".to_string()], vec!["1".to_string()]));
    // ACK Flag Count holds the ACK column in both orders: first packet vs all packets.
    let (v3, fixed) = compare(&f, |q| q.flags_of_first_packet = false, "ACK Flag Count");
    assert_eq!((v3, fixed), (vec!["0".to_string()], vec!["4".to_string()]));
}

#[test]
fn flag_columns_permuted() {
    let f = handshake_then_data();
    let (v3, fixed) = compare(&f, |q| q.flag_columns_permuted = false, "SYN Flag Count");
    // V3 puts the first packet's PSH under SYN; fixed, SYN is SYN.
    assert_eq!((v3, fixed), (vec!["0".to_string()], vec!["1".to_string()]));
    let (v3, fixed) = compare(&f, |q| q.flag_columns_permuted = false, "PSH Flag Count");
    assert_eq!((v3, fixed), (vec!["1".to_string()], vec!["0".to_string()]));
}

#[test]
fn first_payload_twice() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(A, B, (1000, 80), flags::ACK, 100, 20)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.first_payload_twice = false,
        "Packet Length Mean",
    );
    assert_eq!(
        (v3, fixed),
        (
            vec!["13.333333333333334".to_string()],
            vec!["15.0".to_string()]
        )
    );
}

#[test]
fn init_win_bwd_last() {
    let f = handshake_then_data();
    let (v3, fixed) = compare(
        &f,
        |q| q.init_win_bwd_last = false,
        "Init_Win_bytes_backward",
    );
    assert_eq!(
        (v3, fixed),
        (vec!["300".to_string()], vec!["200".to_string()])
    );
}

#[test]
fn act_data_skips_first() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.act_data_skips_first = false,
        "act_data_pkt_fwd",
    );
    assert_eq!((v3, fixed), (vec!["1".to_string()], vec!["2".to_string()]));
}

#[test]
fn active_idle_unfinished() {
    let p = || tcp(A, B, (1000, 80), flags::ACK, 100, 10);
    let frames = [
        (T0, p()),
        (T0 + S, p()),
        (T0 + 10 * S, p()),
        (T0 + 12 * S, p()),
    ];
    let (v3, fixed) = compare(&frames, |q| q.active_idle_unfinished = false, "Active Max");
    // Active periods 1 s (recorded by both) and the final 2 s (recorded only when fixed).
    assert_eq!(
        (v3, fixed),
        (vec!["1000000.0".to_string()], vec!["2000000.0".to_string()])
    );
}

#[test]
fn subflow_is_total() {
    let p = || tcp(A, B, (1000, 80), flags::ACK, 100, 10);
    let frames = [
        (T0, p()),
        (T0 + 10, p()),
        (T0 + 3 * S, p()),
        (T0 + 3 * S + 10, p()),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.subflow_is_total = false,
        "Subflow Fwd Packets",
    );
    assert_eq!(
        (v3, fixed),
        (vec!["4".to_string()], vec!["2.0".to_string()])
    );
}

#[test]
fn bulk_zero() {
    let frames: Vec<(i64, Vec<u8>)> = (0..5)
        .map(|i| (T0 + i * 1000, tcp(A, B, (1000, 80), flags::ACK, 100, 100)))
        .collect();
    let (v3, fixed) = compare(&frames, |q| q.bulk_zero = false, "Fwd Avg Bytes/Bulk");
    // One bulk of 5 packets × 100 bytes.
    assert_eq!(
        (v3, fixed),
        (vec!["0".to_string()], vec!["500.0".to_string()])
    );
}

#[test]
fn timeout_inherits_direction() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 130 * S, tcp(B, A, (80, 1000), flags::ACK, 100, 10)),
        (
            T0 + 130 * S + 10,
            tcp(B, A, (80, 1000), flags::ACK, 100, 10),
        ),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.timeout_inherits_direction = false,
        "Source IP",
    );
    assert_eq!(v3, vec!["10.0.0.1".to_string(), "10.0.0.1".to_string()]);
    assert_eq!(fixed, vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]);
}

#[test]
fn down_up_integer_division() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0 + 20, tcp(B, A, (80, 1000), flags::ACK, 100, 10)),
        (T0 + 30, tcp(B, A, (80, 1000), flags::ACK, 100, 10)),
        (T0 + 40, tcp(B, A, (80, 1000), flags::ACK, 100, 10)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.down_up_integer_division = false,
        "Down/Up Ratio",
    );
    assert_eq!(
        (v3, fixed),
        (vec!["1.0".to_string()], vec!["1.5".to_string()])
    );
}

#[test]
fn zero_duration_rates_infinite() {
    let frames = [
        (T0, tcp(A, B, (1000, 80), flags::ACK, 100, 10)),
        (T0, tcp(B, A, (80, 1000), flags::ACK, 100, 10)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.zero_duration_rates_infinite = false,
        "Flow Bytes/s",
    );
    assert_eq!(
        (v3, fixed),
        (vec!["Infinity".to_string()], vec!["0.0".to_string()])
    );
}

#[test]
fn direction_by_address_only() {
    // A host talking to itself: V3 makes one one-way flow per direction; fixed, one flow.
    let frames = [
        (T0, tcp(A, A, (40000, 80), flags::ACK, 100, 10)),
        (T0 + 10, tcp(A, A, (80, 40000), flags::ACK, 100, 20)),
        (T0 + 20, tcp(A, A, (40000, 80), flags::ACK, 100, 10)),
        (T0 + 30, tcp(A, A, (80, 40000), flags::ACK, 100, 20)),
    ];
    let (v3, fixed) = compare(
        &frames,
        |q| q.direction_by_address_only = false,
        "Total Backward Packets",
    );
    assert_eq!(
        (v3, fixed),
        (
            vec!["0".to_string(), "0".to_string()],
            vec!["2".to_string()]
        )
    );
}

/// The corrected preset is every switch off, and its names list covers every switch.
#[test]
fn the_presets_are_all_on_and_all_off() {
    assert!(Quirks::V3.named().iter().all(|(_, on)| *on));
    assert!(Quirks::CORRECTED.named().iter().all(|(_, on)| !*on));
    let names: Vec<&str> = Quirks::V3.named().iter().map(|(n, _)| *n).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}
