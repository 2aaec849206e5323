//! The corrected decoder (`Quirks::v3_decoder` off): headers read by `etherparse` according to
//! the capture's link type, IPv4 and IPv6 (extension headers skipped), payload from the IP
//! length (Ethernet padding is not payload), header length = the transport header, and the
//! fragments of a datagram counted in its flow.
use std::collections::VecDeque;
use std::net::IpAddr;

use etherparse::{
    EtherType, Icmpv4Slice, Icmpv6Slice, IpNumber, Ipv6ExtensionSlice, LaxNetSlice,
    LaxSlicedPacket, TcpSlice, TransportSlice, UdpSlice,
};
use rustc_hash::FxHashMap;

use crate::capture::Frame;
use crate::packet::{flags, Packet, Reject};

/// Datagrams whose first fragment was seen and whose last was not, remembered at once; past
/// this the oldest are forgotten (their later fragments then count with ports 0).
const REMEMBERED_DATAGRAMS: usize = 1 << 14;

/// A fragmented datagram: source, destination, protocol and IP identification.
type DatagramKey = (IpAddr, IpAddr, u8, u32);

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy)]
struct Fragment {
    id: u32,
    /// Offset in 8-byte units; 0 for the first fragment.
    offset: u16,
    more: bool,
}

/// The corrected decoder. Fragments after the first carry no transport header: they get the
/// ports of their datagram's first fragment (seen earlier), so each fragment counts as one
/// packet of the datagram's flow and the flow's payload is the datagram's, as on the wire.
#[derive(Debug, Default)]
pub struct StdDecoder {
    ports: FxHashMap<DatagramKey, (u16, u16)>,
    order: VecDeque<DatagramKey>,
}

impl StdDecoder {
    /// A decoder that has seen no fragment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame by its link type; `Err` says why it is not a packet of a flow.
    pub fn decode(&mut self, frame: &Frame) -> Result<Packet, Reject> {
        decode_std(frame, self)
    }

    fn remember(&mut self, key: DatagramKey, ports: (u16, u16)) {
        if self.ports.insert(key, ports).is_none() {
            self.order.push_back(key);
        }
        while self.ports.len() > REMEMBERED_DATAGRAMS {
            match self.order.pop_front() {
                Some(old) => {
                    self.ports.remove(&old);
                }
                None => break,
            }
        }
        // Keys already removed by their last fragment wait in the queue: trim them as well.
        if self.order.len() > 2 * REMEMBERED_DATAGRAMS {
            let ports = &self.ports;
            self.order.retain(|k| ports.contains_key(k));
        }
    }

    fn later_fragment(&mut self, key: DatagramKey, last: bool) -> Option<(u16, u16)> {
        if last {
            self.ports.remove(&key)
        } else {
            self.ports.get(&key).copied()
        }
    }
}

/// Link types (`LINKTYPE_*`) this decoder reads.
mod link {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW_OLD: u16 = 12;
    pub const LOOP: u16 = 108;
    pub const RAW: u16 = 101;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;
}

/// Decodes one frame by its link type; `fragments` holds the ports of datagrams whose later
/// fragments are still to come.
fn decode_std(frame: &Frame, fragments: &mut StdDecoder) -> Result<Packet, Reject> {
    let d = &frame.data[..];
    let sliced = match frame.link_type {
        link::ETHERNET => LaxSlicedPacket::from_ethernet(d).map_err(|_| Reject::Truncated)?,
        link::RAW | link::RAW_OLD | link::IPV4 | link::IPV6 => {
            LaxSlicedPacket::from_ip(d).map_err(|_| Reject::Truncated)?
        }
        link::LINUX_SLL => {
            let proto = d.get(14..16).ok_or(Reject::Truncated)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                d.get(16..).ok_or(Reject::Truncated)?,
            )
        }
        link::LINUX_SLL2 => {
            let proto = d.get(0..2).ok_or(Reject::Truncated)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                d.get(20..).ok_or(Reject::Truncated)?,
            )
        }
        // BSD loopback: a 4-byte address family (host order) before the IP header.
        link::NULL | link::LOOP => LaxSlicedPacket::from_ip(d.get(4..).ok_or(Reject::Truncated)?)
            .map_err(|_| Reject::Truncated)?,
        _ => return Err(Reject::UnsupportedLinkType),
    };
    let (src, dst, ip_payload, fragment) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let fragment = v4.payload().fragmented.then(|| Fragment {
                id: u32::from(h.identification()),
                offset: h.fragments_offset().value(),
                more: h.more_fragments(),
            });
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                fragment,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let fragment = if v6.payload().fragmented {
                v6.extensions().clone().into_iter().find_map(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) => Some(Fragment {
                        id: f.identification(),
                        offset: f.fragment_offset().value(),
                        more: f.more_fragments(),
                    }),
                    _ => None,
                })
            } else {
                None
            };
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                fragment,
            )
        }
        Some(LaxNetSlice::Arp(_)) | None => {
            return Err(if sliced.stop_err.is_some() && sliced.link.is_none() {
                Reject::Truncated
            } else {
                Reject::NotIp
            })
        }
    };
    // The IP payload is bounded by the IP length (trailers are not payload); a capture cut
    // short gives what was captured.
    let ip_payload_len = ip_payload.payload.len() as i64;
    let mut p = Packet {
        frame: frame.number,
        timestamp_us: frame.timestamp_us,
        src,
        dst,
        src_port: 0,
        dst_port: 0,
        protocol: ip_payload.ip_number.0,
        payload: ip_payload_len,
        header: 0,
        flags: 0,
        window: -1,
    };
    // etherparse leaves a fragmented payload undecoded: the first fragment's transport header
    // is read here; later fragments take their datagram's ports.
    let first_fragment_transport;
    let transport = match fragment {
        None => sliced.transport.as_ref(),
        Some(f) if f.offset == 0 => {
            let data = ip_payload.payload;
            first_fragment_transport = match ip_payload.ip_number {
                IpNumber::TCP => TcpSlice::from_slice(data).ok().map(TransportSlice::Tcp),
                IpNumber::UDP => UdpSlice::from_slice_lax(data).ok().map(TransportSlice::Udp),
                IpNumber::ICMP => Icmpv4Slice::from_slice(data)
                    .ok()
                    .map(TransportSlice::Icmpv4),
                IpNumber::IPV6_ICMP => Icmpv6Slice::from_slice(data)
                    .ok()
                    .map(TransportSlice::Icmpv6),
                _ => None,
            };
            first_fragment_transport.as_ref()
        }
        Some(_) => None,
    };
    match transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let header = i64::from(tcp.data_offset()) * 4;
            p.src_port = tcp.source_port();
            p.dst_port = tcp.destination_port();
            p.header = header;
            p.payload = (ip_payload_len - header).max(0);
            p.window = i32::from(tcp.window_size());
            for (set, bit) in [
                (tcp.fin(), flags::FIN),
                (tcp.syn(), flags::SYN),
                (tcp.rst(), flags::RST),
                (tcp.psh(), flags::PSH),
                (tcp.ack(), flags::ACK),
                (tcp.urg(), flags::URG),
                (tcp.ece(), flags::ECE),
                (tcp.cwr(), flags::CWR),
            ] {
                if set {
                    p.flags |= bit;
                }
            }
        }
        Some(TransportSlice::Udp(udp)) => {
            p.src_port = udp.source_port();
            p.dst_port = udp.destination_port();
            p.header = 8;
            p.payload = (ip_payload_len - 8).max(0);
        }
        Some(TransportSlice::Icmpv4(_)) | Some(TransportSlice::Icmpv6(_)) => {
            p.header = 8;
            p.payload = (ip_payload_len - 8).max(0);
        }
        // Other protocols, and fragments after the first (no transport header): the whole IP
        // payload; ports from the datagram's first fragment when it was seen.
        _ => {}
    }
    if let Some(f) = fragment {
        let key = (src, dst, p.protocol, f.id);
        if f.offset == 0 {
            if f.more && (p.src_port, p.dst_port) != (0, 0) {
                fragments.remember(key, (p.src_port, p.dst_port));
            }
        } else if let Some((sp, dp)) = fragments.later_fragment(key, !f.more) {
            p.src_port = sp;
            p.dst_port = dp;
        }
    }
    Ok(p)
}
