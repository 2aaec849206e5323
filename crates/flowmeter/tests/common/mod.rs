//! Captures made up for the tests: a pcap writer and a generator of random TCP/UDP traffic
//! between a few hosts (FINs, long gaps past the activity and flow timeouts, garbage frames).
#![allow(dead_code)]
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use etherparse::{PacketBuilder, TcpHeader};
use flowmeter::{extract, MeterOptions, V3_HEADER};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writes a classic little-endian pcap (µs timestamps, Ethernet link type).
pub fn write_pcap(path: &Path, frames: &[(i64, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (ts, data) in frames {
        out.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).unwrap();
}

/// What the generator may put in a capture.
#[derive(Debug, Clone, Copy)]
pub struct TrafficShape {
    /// Frames to write.
    pub frames: usize,
    /// Hosts taking part (10.0.0.1…); two hosts talk on a few port pairs.
    pub hosts: u8,
    /// Probability that a TCP packet carries FIN.
    pub fin: f64,
    /// Probability of a frame that is not IPv4 over Ethernet (random bytes, ARP-like).
    pub garbage: f64,
    /// Probability that a gap exceeds the 5 s activity timeout, and the 120 s flow timeout.
    pub long_gap: f64,
    /// See `long_gap`.
    pub timeout_gap: f64,
}

impl Default for TrafficShape {
    fn default() -> Self {
        Self {
            frames: 400,
            hosts: 4,
            fin: 0.03,
            garbage: 0.02,
            long_gap: 0.02,
            timeout_gap: 0.005,
        }
    }
}

/// Random traffic; every IPv4 frame is at least 60 bytes without padding (so both of V3's
/// padding modes give the same numbers).
pub fn random_traffic(seed: u64, shape: TrafficShape) -> Vec<(i64, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ts: i64 = 1_600_000_000_000_000 + rng.gen_range(0..1_000_000_000);
    let mut out = Vec::with_capacity(shape.frames);
    let ports = [80u16, 443, 53, 22, 40000, 40001, 51234];
    for _ in 0..shape.frames {
        let r: f64 = rng.gen();
        ts += if r < shape.timeout_gap {
            rng.gen_range(120_000_000..200_000_000)
        } else if r < shape.timeout_gap + shape.long_gap {
            rng.gen_range(5_000_001..20_000_000)
        } else {
            rng.gen_range(0..200_000)
        };
        if rng.gen_bool(shape.garbage) {
            let len = rng.gen_range(60..120);
            let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // An ARP-like EtherType so Stage A finds no IPv4.
            junk[12] = 0x08;
            junk[13] = 0x06;
            out.push((ts, junk));
            continue;
        }
        let a = rng.gen_range(1..=shape.hosts);
        let mut b = rng.gen_range(1..=shape.hosts);
        if b == a {
            b = a % shape.hosts + 1;
        }
        let (sp, dp) = (
            ports[rng.gen_range(0..ports.len())],
            ports[rng.gen_range(0..ports.len())],
        );
        let builder = PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, a], [0x02, 0, 0, 0, 0, b]).ipv4(
            [10, 0, 0, a],
            [10, 0, 0, b],
            64,
        );
        let frame = if rng.gen_bool(0.7) {
            let mut h = TcpHeader::new(sp, dp, rng.gen(), rng.gen());
            h.syn = rng.gen_bool(0.1);
            h.ack = rng.gen_bool(0.8);
            h.psh = rng.gen_bool(0.3);
            h.rst = rng.gen_bool(0.02);
            h.urg = rng.gen_bool(0.02);
            h.ece = rng.gen_bool(0.02);
            h.cwr = rng.gen_bool(0.02);
            h.fin = rng.gen_bool(shape.fin);
            let payload: Vec<u8> = vec![0x61; rng.gen_range(6..600)];
            let b = builder.tcp_header(h);
            let mut v = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut v, &payload).unwrap();
            v
        } else {
            let payload: Vec<u8> = vec![0x62; rng.gen_range(18..600)];
            let b = builder.udp(sp, dp);
            let mut v = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut v, &payload).unwrap();
            v
        };
        out.push((ts, frame));
    }
    out
}

/// Text equal, or numbers within a relative 1e-6 (NaN equals NaN).
pub fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-6 * x.abs().max(y.abs())
        }
        _ => false,
    }
}

/// How far our rows agree with V3's.
#[derive(Debug, Clone)]
pub struct Agreement {
    pub v3_flows: usize,
    pub ours: usize,
    pub matched: usize,
    pub cells: usize,
    pub equal: usize,
    /// Differing cells per V3 column.
    pub by_column: BTreeMap<usize, usize>,
}

/// Runs `cicflowmeter` mode on `capture` and compares its rows with the V3 jar's `csv`.
pub fn agreement(capture: &Path, csv: &Path, padding_as_payload: bool) -> Agreement {
    let options = MeterOptions {
        quirks: flowmeter::Quirks {
            padding_as_payload,
            ..flowmeter::Quirks::V3
        },
        ..MeterOptions::default()
    };
    let mut ours: Vec<Vec<String>> = Vec::new();
    let report = extract(&[capture], &options, |f| {
        ours.push(f.cells.iter().map(|c| c.to_string()).collect());
    })
    .unwrap();
    assert_eq!(
        report.frames,
        report.packets_in_flows + report.rejected_total(),
        "{}",
        capture.display()
    );
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, V3_HEADER, "{}: header", csv.display());
    let theirs: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let key = |r: &Vec<String>| (r[0].clone(), r[6].clone(), r[1].clone(), r[2].clone());
    let mut by_key: HashMap<_, Vec<&Vec<String>>> = HashMap::new();
    for r in &ours {
        by_key.entry(key(r)).or_default().push(r);
    }
    let mut a = Agreement {
        v3_flows: theirs.len(),
        ours: ours.len(),
        matched: 0,
        cells: 0,
        equal: 0,
        by_column: BTreeMap::new(),
    };
    for r in &theirs {
        let Some(candidates) = by_key.get_mut(&key(r)) else {
            continue;
        };
        if candidates.is_empty() {
            continue;
        }
        // Among flows with the same key (rare), take the one agreeing on most cells.
        let best = (0..candidates.len())
            .max_by_key(|&i| {
                candidates[i]
                    .iter()
                    .zip(r)
                    .filter(|(x, y)| same_cell(x, y))
                    .count()
            })
            .unwrap();
        let mine = candidates.swap_remove(best);
        a.matched += 1;
        for (col, (x, y)) in mine.iter().zip(r).enumerate() {
            a.cells += 1;
            if same_cell(x, y) {
                a.equal += 1;
            } else {
                *a.by_column.entry(col).or_default() += 1;
            }
        }
    }
    a
}
