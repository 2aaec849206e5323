//! What the flow table needs of one packet, whichever decoder produced it.
use std::net::IpAddr;

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// A decoded packet: addresses, ports, protocol and the sizes the features count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// 1-based frame number in its capture.
    pub frame: u64,
    /// Capture time, µs since the Unix epoch.
    pub timestamp_us: i64,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 without TCP/UDP).
    pub src_port: u16,
    /// Destination port (0 without TCP/UDP).
    pub dst_port: u16,
    /// IP protocol as the flow records it (CICFlowMeter: 6, 17, or 0 for everything else).
    pub protocol: u8,
    /// Payload bytes: what the packet-length features count.
    pub payload: i64,
    /// Header bytes: what the header-length features count (CICFlowMeter: the TCP header only).
    pub header: i64,
    /// TCP flags (`flags::*`), 0 without TCP.
    pub flags: u8,
    /// TCP window, −1 without TCP.
    pub window: i32,
}

impl Packet {
    /// Whether a flag bit is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a frame did not become a packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    /// No IP header the decoder accepts (ARP, IPv6 where IPv6 is not read, unknown link layer…).
    NotIp,
    /// A link type the decoder does not read.
    UnsupportedLinkType,
    /// The headers stop before the fields a flow needs (short or damaged header).
    Truncated,
    /// The capture says the frame was shorter on the wire than captured (libpcap refuses it).
    WireShorterThanCaptured,
    /// The packet was valid but its flow kept only this packet (CICFlowMeter writes no such flow).
    SinglePacketFlow,
}

impl Reject {
    /// Every reason, in report order.
    pub const ALL: [Reject; 5] = [
        Reject::NotIp,
        Reject::UnsupportedLinkType,
        Reject::Truncated,
        Reject::WireShorterThanCaptured,
        Reject::SinglePacketFlow,
    ];

    /// Stable snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NotIp => "not_ip",
            Reject::UnsupportedLinkType => "unsupported_link_type",
            Reject::Truncated => "truncated",
            Reject::WireShorterThanCaptured => "wire_shorter_than_captured",
            Reject::SinglePacketFlow => "single_packet_flow",
        }
    }
}
