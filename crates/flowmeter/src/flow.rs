//! One bidirectional flow and what it accumulates (CICFlowMeter's `BasicFlow`), and the flow key.
use std::net::IpAddr;

use crate::packet::{flags, Packet};
use crate::quirks::Quirks;
use crate::stats::RunningStats;

/// A gap longer than this starts a new subflow, and ends a bulk (corrected semantics).
const SUBFLOW_GAP_US: i64 = 1_000_000;

/// Packets with payload in a row, one direction, that make a bulk.
const BULK_PACKETS: u32 = 4;

/// Bulk detection of one direction (corrected semantics): runs of ≥ 4 payload-carrying
/// packets of that direction, each within 1 s of the last, with no bulk of the other direction
/// starting in between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Bulk {
    /// Start of the current candidate run (0: none).
    start_us: i64,
    last_us: i64,
    run_packets: u32,
    run_bytes: i64,
    /// Completed bulks, and their packets, bytes and duration.
    pub(crate) bulks: u64,
    pub(crate) packets: u64,
    pub(crate) bytes: i64,
    pub(crate) duration_us: i64,
}

impl Bulk {
    /// A payload packet of this direction at `t`; `other_last_bulk_us` is when the other
    /// direction's current run last grew.
    fn add(&mut self, t: i64, payload: i64, other_last_bulk_us: i64) {
        if other_last_bulk_us > self.start_us {
            self.start_us = 0;
        }
        if payload <= 0 {
            return;
        }
        if self.start_us == 0 || t - self.last_us > SUBFLOW_GAP_US {
            self.start_us = t;
            self.last_us = t;
            self.run_packets = 1;
            self.run_bytes = payload;
            return;
        }
        self.run_packets += 1;
        self.run_bytes += payload;
        if self.run_packets == BULK_PACKETS {
            self.bulks += 1;
            self.packets += u64::from(self.run_packets);
            self.bytes += self.run_bytes;
            self.duration_us += t - self.start_us;
        } else if self.run_packets > BULK_PACKETS {
            self.packets += 1;
            self.bytes += payload;
            self.duration_us += t - self.last_us;
        }
        self.last_us = t;
    }
}

/// The canonical key of a flow: both directions of a conversation map to the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The address CICFlowMeter writes first in the Flow ID.
    pub a: IpAddr,
    /// The other address.
    pub b: IpAddr,
    /// `a`'s port.
    pub a_port: u16,
    /// `b`'s port.
    pub b_port: u16,
    /// Protocol.
    pub protocol: u8,
}

impl FlowKey {
    /// The key of a packet, oriented as CICFlowMeter orients its Flow ID: the addresses compared
    /// byte by byte as *signed* Java bytes (so 192.x sorts before 10.x), the smaller first; equal
    /// addresses keep the packet's order (so the two directions of a host talking to itself
    /// are two flows, as in V3).
    pub fn of(p: &Packet) -> Self {
        Self::oriented(p, true)
    }

    /// [`FlowKey::of`], or with `by_address_only` off, equal addresses ordered by port (the
    /// smaller first) so both directions of a host talking to itself share one key.
    pub fn oriented(p: &Packet, by_address_only: bool) -> Self {
        let reversed = if !by_address_only && p.src == p.dst {
            p.src_port > p.dst_port
        } else {
            signed_bytes_greater(&p.src, &p.dst)
        };
        if reversed {
            Self {
                a: p.dst,
                b: p.src,
                a_port: p.dst_port,
                b_port: p.src_port,
                protocol: p.protocol,
            }
        } else {
            Self {
                a: p.src,
                b: p.dst,
                a_port: p.src_port,
                b_port: p.dst_port,
                protocol: p.protocol,
            }
        }
    }

    /// CICFlowMeter's Flow ID: `a-b-a_port-b_port-protocol`.
    pub fn flow_id(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.a, self.b, self.a_port, self.b_port, self.protocol
        )
    }
}

/// Java's `Arrays`-style comparison of two addresses as signed bytes: `true` when `x > y` at
/// the first differing byte (V3's `BasicPacketInfo.generateFlowId`).
fn signed_bytes_greater(x: &IpAddr, y: &IpAddr) -> bool {
    fn greater(xb: &[u8], yb: &[u8]) -> bool {
        for (a, b) in xb.iter().zip(yb) {
            let (a, b) = (*a as i8, *b as i8);
            if a != b {
                return a > b;
            }
        }
        false
    }
    match (x, y) {
        (IpAddr::V4(a), IpAddr::V4(b)) => greater(&a.octets(), &b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => greater(&a.octets(), &b.octets()),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
        (IpAddr::V6(_), IpAddr::V4(_)) => true,
    }
}

/// The endpoints as the flow records them: the source is the first packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u16,
}

/// Everything a flow accumulates from its packets.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The flow's key.
    pub key: FlowKey,
    /// Its endpoints (the source is the first packet's source).
    pub ends: Endpoints,
    /// Time of the first packet, µs.
    pub start_us: i64,
    /// Time of the latest packet, µs.
    pub last_us: i64,
    /// Frame numbers of the first and the latest packet.
    pub first_frame: u64,
    /// See `first_frame`.
    pub last_frame: u64,
    pub(crate) fwd: RunningStats,
    pub(crate) bwd: RunningStats,
    /// Payload of every packet (CICFlowMeter V3 adds the first packet's twice).
    pub(crate) lengths: RunningStats,
    pub(crate) flow_iat: RunningStats,
    pub(crate) fwd_iat: RunningStats,
    pub(crate) bwd_iat: RunningStats,
    pub(crate) active: RunningStats,
    pub(crate) idle: RunningStats,
    pub(crate) fwd_bytes: i64,
    pub(crate) bwd_bytes: i64,
    pub(crate) fwd_header: i64,
    pub(crate) bwd_header: i64,
    pub(crate) fwd_last_us: i64,
    pub(crate) bwd_last_us: i64,
    pub(crate) start_active_us: i64,
    pub(crate) end_active_us: i64,
    /// TCP flags of the first packet.
    pub(crate) first_flags: u8,
    pub(crate) init_win_fwd: i32,
    pub(crate) init_win_bwd: i32,
    pub(crate) act_data_fwd: i64,
    pub(crate) min_seg_fwd: i64,
    /// Payload of the first packet.
    pub(crate) first_payload: i64,
    /// Window of the first backward packet (−1: none).
    pub(crate) first_win_bwd: i32,
    /// Packets carrying each flag bit (bit i of the flags byte), all packets.
    pub(crate) flag_counts: [u32; 8],
    /// PSH and URG per direction, all packets.
    pub(crate) fwd_psh: u32,
    pub(crate) bwd_psh: u32,
    pub(crate) fwd_urg: u32,
    pub(crate) bwd_urg: u32,
    /// Subflows (1 + gaps over 1 s).
    pub(crate) subflows: u64,
    pub(crate) fwd_bulk: Bulk,
    pub(crate) bwd_bulk: Bulk,
    /// FIN seen from the source / from the destination (corrected TCP teardown).
    pub(crate) fin_fwd: bool,
    pub(crate) fin_bwd: bool,
    /// `Quirks::direction_by_address_only`.
    by_address_only: bool,
}

impl Flow {
    /// A flow created by its first packet, which always counts as forward.
    pub fn new(p: &Packet, quirks: &Quirks) -> Self {
        let mut f = Flow {
            key: FlowKey::oriented(p, quirks.direction_by_address_only),
            ends: Endpoints {
                src: p.src,
                src_port: p.src_port,
                dst: p.dst,
                dst_port: p.dst_port,
            },
            start_us: p.timestamp_us,
            last_us: p.timestamp_us,
            first_frame: p.frame,
            last_frame: p.frame,
            fwd: RunningStats::default(),
            bwd: RunningStats::default(),
            lengths: RunningStats::default(),
            flow_iat: RunningStats::default(),
            fwd_iat: RunningStats::default(),
            bwd_iat: RunningStats::default(),
            active: RunningStats::default(),
            idle: RunningStats::default(),
            fwd_bytes: p.payload,
            bwd_bytes: 0,
            fwd_header: p.header,
            bwd_header: 0,
            fwd_last_us: p.timestamp_us,
            bwd_last_us: 0,
            start_active_us: p.timestamp_us,
            end_active_us: p.timestamp_us,
            first_flags: p.flags,
            init_win_fwd: p.window,
            init_win_bwd: -1,
            act_data_fwd: 0,
            min_seg_fwd: p.header,
            first_payload: p.payload,
            first_win_bwd: -1,
            flag_counts: [0; 8],
            fwd_psh: 0,
            bwd_psh: 0,
            fwd_urg: 0,
            bwd_urg: 0,
            subflows: 1,
            fwd_bulk: Bulk::default(),
            bwd_bulk: Bulk::default(),
            fin_fwd: p.has(flags::FIN),
            fin_bwd: false,
            by_address_only: quirks.direction_by_address_only,
        };
        let payload = p.payload as f64;
        f.lengths.add(payload);
        if quirks.first_payload_twice {
            // V3's firstPacket adds it to the length statistics twice.
            f.lengths.add(payload);
        }
        f.fwd.add(payload);
        f.count_flags(p, true);
        f.fwd_bulk.add(p.timestamp_us, p.payload, 0);
        f
    }

    fn count_flags(&mut self, p: &Packet, forward: bool) {
        for (bit, count) in self.flag_counts.iter_mut().enumerate() {
            *count += u32::from(p.flags >> bit & 1);
        }
        let (psh, urg) = if forward {
            (&mut self.fwd_psh, &mut self.fwd_urg)
        } else {
            (&mut self.bwd_psh, &mut self.bwd_urg)
        };
        *psh += u32::from(p.has(flags::PSH));
        *urg += u32::from(p.has(flags::URG));
    }

    /// Packets in the flow.
    pub fn packets(&self) -> u64 {
        self.fwd.count() + self.bwd.count()
    }

    /// Forward packets.
    pub fn fwd_packets(&self) -> u64 {
        self.fwd.count()
    }

    /// Backward packets.
    pub fn bwd_packets(&self) -> u64 {
        self.bwd.count()
    }

    /// V3's `updateActiveIdleTime`: a gap longer than `activity_timeout_us` since the end of
    /// the current active period closes it (recorded when longer than 0) and records the gap as
    /// idle time.
    pub fn update_active_idle(&mut self, t: i64, activity_timeout_us: i64) {
        if t - self.end_active_us > activity_timeout_us {
            if self.end_active_us - self.start_active_us > 0 {
                self.active
                    .add((self.end_active_us - self.start_active_us) as f64);
            }
            self.idle.add((t - self.end_active_us) as f64);
            self.start_active_us = t;
            self.end_active_us = t;
        } else {
            self.end_active_us = t;
        }
    }

    /// V3's `addPacket`: a later packet, forward when its source address is the flow's source
    /// (and, unless `direction_by_address_only`, its source port the flow's source port).
    pub fn add(&mut self, p: &Packet) {
        let t = p.timestamp_us;
        let payload = p.payload as f64;
        if t - self.last_us > SUBFLOW_GAP_US {
            self.subflows += 1;
        }
        self.lengths.add(payload);
        let forward =
            p.src == self.ends.src && (self.by_address_only || p.src_port == self.ends.src_port);
        self.count_flags(p, forward);
        if forward {
            self.fwd_bulk.add(t, p.payload, self.bwd_bulk.last_us);
            self.fin_fwd |= p.has(flags::FIN);
        } else {
            self.bwd_bulk.add(t, p.payload, self.fwd_bulk.last_us);
            self.fin_bwd |= p.has(flags::FIN);
            if self.first_win_bwd < 0 && self.bwd.count() == 0 {
                self.first_win_bwd = p.window;
            }
        }
        if forward {
            // `act_data_skips_first`: the first packet is never counted here.
            if p.payload >= 1 {
                self.act_data_fwd += 1;
            }
            self.fwd.add(payload);
            self.fwd_header += p.header;
            self.fwd_bytes += p.payload;
            if self.fwd.count() > 1 {
                self.fwd_iat.add((t - self.fwd_last_us) as f64);
            }
            self.fwd_last_us = t;
            self.min_seg_fwd = self.min_seg_fwd.min(p.header);
        } else {
            self.bwd.add(payload);
            // `init_win_bwd_last`: every backward packet overwrites it.
            self.init_win_bwd = p.window;
            self.bwd_header += p.header;
            self.bwd_bytes += p.payload;
            if self.bwd.count() > 1 {
                self.bwd_iat.add((t - self.bwd_last_us) as f64);
            }
            self.bwd_last_us = t;
        }
        self.flow_iat.add((t - self.last_us) as f64);
        self.last_us = t;
        self.last_frame = p.frame;
    }

    /// Whether the first packet had `flag`.
    pub(crate) fn first_has(&self, flag: u8) -> bool {
        self.first_flags & flag != 0
    }

    /// `true` when the flow's first packet carried FIN.
    pub fn started_with_fin(&self) -> bool {
        self.first_has(flags::FIN)
    }

    /// Records the active period still open when the flow ends (corrected semantics; V3 never
    /// does).
    pub fn close_active_period(&mut self) {
        if self.end_active_us - self.start_active_us > 0 {
            self.active
                .add((self.end_active_us - self.start_active_us) as f64);
        }
        self.start_active_us = self.end_active_us;
    }
}
