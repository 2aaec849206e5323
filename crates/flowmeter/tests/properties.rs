//! Invariants on generated packet streams (any mix of TCP/UDP, FINs, long gaps, timeouts,
//! non-IP frames, any table size): every frame is accounted for, and each written flow is
//! internally consistent.
mod common;

use flowmeter::{extract, MeterOptions, Mode, TableOptions, V3_HEADER};
use proptest::prelude::*;

fn col(name: &str) -> usize {
    V3_HEADER.iter().position(|h| h.trim() == name).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn frames_are_accounted_and_flows_consistent(
        seed in any::<u64>(),
        frames in 1usize..1500,
        hosts in 2u8..8,
        fin in 0.0f64..0.2,
        garbage in 0.0f64..0.2,
        max_flows in prop::sample::select(vec![4usize, 64, 1 << 20]),
        corrected in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("g.pcap");
        let shape = common::TrafficShape { frames, hosts, fin, garbage, ..common::TrafficShape::default() };
        common::write_pcap(&pcap, &common::random_traffic(seed, shape));
        let mode = if corrected { Mode::Corrected } else { Mode::CicFlowMeter };
        let options = MeterOptions {
            table: TableOptions { max_flows, ..TableOptions::default() },
            ..MeterOptions::of_mode(mode)
        };
        let mut rows = Vec::new();
        let report = extract(&[&pcap], &options, |f| rows.push(f)).unwrap();
        prop_assert_eq!(report.frames, frames as u64);
        prop_assert_eq!(report.frames, report.packets_in_flows + report.rejected_total());
        prop_assert_eq!(report.flows_total(), rows.len() as u64);
        prop_assert_eq!(rows.iter().map(|r| r.packets).sum::<u64>(), report.packets_in_flows);
        prop_assert!(report.peak_open_flows <= max_flows.max(1));
        let (fwd, bwd, dur) = (col("Total Fwd Packets"), col("Total Backward Packets"), col("Flow Duration"));
        let (iat_mean, fwd_bytes, sub_bytes) = (col("Flow IAT Mean"), col("Total Length of Fwd Packets"), col("Subflow Fwd Bytes"));
        for r in &rows {
            let c = |i: usize| r.cells[i].as_f64();
            prop_assert!(r.packets >= 2);
            // Forward + backward = all packets.
            prop_assert_eq!(c(fwd) + c(bwd), r.packets as f64);
            // Flow IATs add up to the duration.
            let sum = c(iat_mean) * (r.packets - 1) as f64;
            prop_assert!((sum - c(dur)).abs() <= 1e-6 * c(dur).abs().max(1.0), "{} vs {}", sum, c(dur));
            // Timestamps only grow here, so the duration is never negative.
            prop_assert!(c(dur) >= 0.0);
            // V3's subflow is the whole flow; corrected, the total spread over subflows.
            if corrected {
                prop_assert!(c(sub_bytes) <= c(fwd_bytes));
            } else {
                prop_assert_eq!(c(fwd_bytes), c(sub_bytes));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]
    /// Frames of random bytes behind any EtherType (IPv4, VLAN, IPv6, 802.3 lengths, …) never
    /// make the decoder panic, and every frame is still accounted for.
    #[test]
    fn random_frames_never_panic(
        frames in prop::collection::vec(
            (prop::sample::select(vec![0x0800u16, 0x8100, 0x86dd, 0x0806, 0x0010, 0x05dc, 0x88a8]),
             prop::collection::vec(any::<u8>(), 0..200)),
            1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("r.pcap");
        let frames: Vec<(i64, Vec<u8>)> = frames
            .into_iter()
            .enumerate()
            .map(|(i, (ether_type, mut bytes))| {
                if bytes.len() >= 14 {
                    bytes[12..14].copy_from_slice(&ether_type.to_be_bytes());
                }
                (1_000_000 * i as i64, bytes)
            })
            .collect();
        let n = frames.len() as u64;
        common::write_pcap(&pcap, &frames);
        for mode in [Mode::CicFlowMeter, Mode::Corrected] {
            let report = extract(&[&pcap], &MeterOptions::of_mode(mode), |_| {}).unwrap();
            prop_assert_eq!(report.frames, n);
            prop_assert_eq!(report.frames, report.packets_in_flows + report.rejected_total());
        }
    }
}
