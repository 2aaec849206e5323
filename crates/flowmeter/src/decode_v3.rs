//! The packet decoder of CICFlowMeter V3 (jnetpcap 1.3), reproduced with its quirks, so flows
//! carry the numbers of the published CIC-IDS2017 and CIC-DDoS2019 CSVs.
//!
//! docs/CICFLOWMETER_V3.md §2 gives every rule and how it was verified against the V3 jar; the
//! short version: every frame is scanned as Ethernet whatever the capture's link type (802.1Q
//! tags, 802.3/LLC/SNAP with jnetpcap's length bug, 4in6), the outermost IPv4 header gives the
//! addresses, the first TCP (else UDP) header found anywhere in the chain gives ports and sizes
//! (ICMP errors quoting a UDP/TCP header and IP-in-IP included), a frame without one is decoded
//! again as IPv4 from byte 0 (where IPv6 and ARP frames become "mangled" Protocol-0 packets),
//! payload is the bytes captured after the transport header (Ethernet padding counted or not,
//! [`V3Decoder::padding_as_payload`]), and a UDP packet's header length is the length of the
//! last TCP header this capture showed (−1 before any).
use std::net::{IpAddr, Ipv4Addr};

use crate::capture::Frame;
use crate::packet::{Packet, Reject};

/// A decoded IPv4 header: its offset in the frame, recorded length and addresses.
#[derive(Debug, Clone, Copy)]
struct Ip4 {
    len: usize,
    src: [u8; 4],
    dst: [u8; 4],
}

/// The first TCP and the first UDP header the scan found (in scan order, inner headers of
/// ICMP quotes and IP-in-IP included).
#[derive(Debug, Clone, Copy, Default)]
struct L4 {
    /// TCP at `offset`: (offset, recorded header length, payload bytes).
    tcp: Option<(usize, usize, usize)>,
    /// UDP: (offset, payload bytes).
    udp: Option<(usize, usize)>,
}

/// The per-capture state of V3's decoder.
#[derive(Debug, Clone)]
pub struct V3Decoder {
    /// Whether Ethernet padding counts as payload. V3 decides this per Java process at random
    /// (jnetpcap 1.3 reads an uninitialised variable, docs/CICFLOWMETER_V3.md §2.5); the
    /// published CIC-IDS2017 CSVs show it counted, so that is the default.
    pub padding_as_payload: bool,
    /// Whether a UDP packet's header length is the last TCP header's (V3), else 8.
    pub udp_header_stale: bool,
    /// Whether an empty TCP segment on port 5060 loses its TCP header (V3).
    pub sip_5060: bool,
    /// Length of the TCP header the reader's TCP object was last bound to (−1: none yet);
    /// V3 reports it as every UDP packet's header length.
    stale_tcp_header: i64,
}

impl Default for V3Decoder {
    fn default() -> Self {
        Self::new(true)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl V3Decoder {
    /// A decoder for one capture, with every V3 quirk but the padding choice.
    pub fn new(padding_as_payload: bool) -> Self {
        Self {
            padding_as_payload,
            udp_header_stale: true,
            sip_5060: true,
            stale_tcp_header: -1,
        }
    }

    /// A decoder for one capture with the decoder switches of `quirks`.
    pub fn from_quirks(quirks: &crate::quirks::Quirks) -> Self {
        Self {
            udp_header_stale: quirks.udp_header_stale,
            sip_5060: quirks.sip_5060,
            ..Self::new(quirks.padding_as_payload)
        }
    }

    /// One frame to a packet, or why V3 ignores it.
    pub fn decode(&mut self, frame: &Frame) -> Result<Packet, Reject> {
        // libpcap refuses a record whose wire length is below its captured length.
        if (frame.wire_len as usize) < frame.data.len() {
            return Err(Reject::WireShorterThanCaptured);
        }
        let buf = &frame.data[..];
        let mut l4 = L4::default();
        let ip = self.scan_ethernet(buf, &mut l4);
        match self.packet(frame, buf, ip, l4) {
            Some(p) => Ok(p),
            None => {
                // Stage B: the frame again as IPv4 from its first byte.
                let mut l4 = L4::default();
                let (ip, _) = self.scan_ip4(buf, 0, buf.len(), false, &mut l4);
                self.packet(frame, buf, ip, l4).ok_or(Reject::NotIp)
            }
        }
    }

    /// jnetpcap's Ethernet scan: the EtherType chain and the first IPv4 header with its
    /// transport headers.
    fn scan_ethernet(&self, buf: &[u8], l4: &mut L4) -> Option<Ip4> {
        let mut end = buf.len();
        if end < 14 {
            return None;
        }
        let mut ether_type = be16(buf, 12);
        let mut o = 14;
        let mut right_after_ethernet = true;
        loop {
            if ether_type < 0x600 {
                // IEEE 802.3: jnetpcap takes the length field for the whole frame's length.
                end = end.min(ether_type as usize);
                if end < o + 3 {
                    return None;
                }
                // Its LLC length test `control & 0x3 == 0x3` parses as `control & 1`.
                let llc = if buf[o + 2] & 1 == 1 { 3 } else { 4 };
                if buf[o] != 0xaa {
                    return None;
                }
                let snap = o + llc;
                if end < snap + 5 || !matches!(&buf[snap..snap + 3], [0, 0, 0] | [0, 0, 0xf8]) {
                    return None;
                }
                ether_type = be16(buf, snap + 3);
                o = snap + 5;
                right_after_ethernet = false;
                continue;
            }
            match ether_type {
                0x8100 => {
                    if end < o + 4 {
                        return None;
                    }
                    ether_type = be16(buf, o + 2);
                    o += 4;
                    right_after_ethernet = false;
                }
                0x0800 => return self.scan_ip4(buf, o, end, right_after_ethernet, l4).0,
                // IPv6 is read only when it carries IPv4 (4in6).
                0x86dd if end >= o + 40 && buf[o + 6] == 4 => {
                    return self.scan_ip4(buf, o + 40, end, false, l4).0;
                }
                _ => return None,
            }
        }
    }

    /// An IPv4 header at `o` (frame bytes up to `end`) and what follows it (transport headers
    /// into `l4`). Returns the header and the (possibly lowered) end of the frame.
    fn scan_ip4(
        &self,
        buf: &[u8],
        o: usize,
        mut end: usize,
        right_after_ethernet: bool,
        l4: &mut L4,
    ) -> (Option<Ip4>, usize) {
        if end < o + 20 {
            return (None, end);
        }
        let ihl = usize::from(buf[o] & 0x0f) * 4;
        if ihl == 0 {
            return (None, end);
        }
        let total = usize::from(be16(buf, o + 2));
        // Mode S: jnetpcap drops an Ethernet trailer after an IPv4 datagram that follows the
        // 14-byte Ethernet header directly.
        if !self.padding_as_payload && right_after_ethernet && total <= end {
            let trailer = end as isize - 14 - total as isize;
            if trailer > 0 {
                end -= trailer as usize;
            }
        }
        let ip = Ip4 {
            len: ihl.min(end.saturating_sub(o)),
            src: [buf[o + 12], buf[o + 13], buf[o + 14], buf[o + 15]],
            dst: [buf[o + 16], buf[o + 17], buf[o + 18], buf[o + 19]],
        };
        // A non-first fragment carries no transport header.
        if be16(buf, o + 6) & 0x1fff != 0 {
            return (Some(ip), end);
        }
        let next = o + ihl;
        if end <= next {
            return (Some(ip), end);
        }
        end = self.scan_l4(buf, next, end, buf[o + 9], l4);
        (Some(ip), end)
    }

    /// The transport header of protocol `proto` at `o` into `l4` (the first of each kind
    /// wins); returns the end.
    fn scan_l4(&self, buf: &[u8], o: usize, end: usize, proto: u8, l4: &mut L4) -> usize {
        match proto {
            6 if end >= o + 20 => {
                let data_offset = usize::from(buf[o + 12] >> 4) * 4;
                if data_offset > 0 && l4.tcp.is_none() {
                    l4.tcp = Some((
                        o,
                        data_offset.min(end - o),
                        end.saturating_sub(o + data_offset),
                    ));
                }
                end
            }
            17 if end >= o + 8 => {
                if l4.udp.is_none() {
                    l4.udp = Some((o, end - o - 8));
                }
                end
            }
            // ICMP destination unreachable and parameter problem quote an IPv4 header.
            1 if end >= o + 4 && matches!(buf[o], 3 | 12) => {
                self.scan_ip4(buf, o + 8, end, false, l4).1
            }
            // IP-in-IP.
            4 => self.scan_ip4(buf, o, end, false, l4).1,
            _ => end,
        }
    }

    /// V3's packet record from the outermost IPv4 header and the first TCP/UDP header.
    fn packet(&mut self, frame: &Frame, buf: &[u8], ip: Option<Ip4>, l4: L4) -> Option<Packet> {
        let ip = ip.filter(|ip| ip.len >= 20)?;
        let (mut tcp, mut udp) = (l4.tcp, l4.udp);
        // jnetpcap's SIP binding: an empty TCP segment on port 5060 loses its TCP header.
        if let (Some((o, _, 0)), true) = (tcp, self.sip_5060) {
            if be16(buf, o) == 5060 || be16(buf, o + 2) == 5060 {
                tcp = None;
                udp = None;
            }
        }
        let mut p = Packet {
            frame: frame.number,
            timestamp_us: frame.timestamp_us,
            src: IpAddr::V4(Ipv4Addr::from(ip.src)),
            dst: IpAddr::V4(Ipv4Addr::from(ip.dst)),
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            payload: 0,
            header: 0,
            flags: 0,
            window: -1,
        };
        if let Some((o, header, payload)) = tcp {
            self.stale_tcp_header = header as i64;
            // Reading the window of a header shorter than 16 bytes throws in V3.
            if header < 16 {
                return None;
            }
            p.protocol = 6;
            p.src_port = be16(buf, o);
            p.dst_port = be16(buf, o + 2);
            p.flags = buf[o + 13];
            p.window = i32::from(be16(buf, o + 14));
            p.payload = payload as i64;
            p.header = header as i64;
        } else if let Some((o, payload)) = udp {
            p.protocol = 17;
            p.src_port = be16(buf, o);
            p.dst_port = be16(buf, o + 2);
            p.payload = payload as i64;
            p.header = if self.udp_header_stale {
                self.stale_tcp_header
            } else {
                8
            };
        }
        Some(p)
    }
}
