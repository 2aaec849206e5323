//! The corrected decoder (`Quirks::v3_decoder` off): headers read by `etherparse` according to
//! the capture's link type, IPv4 and IPv6, payload from the IP length (Ethernet padding is not
//! payload), header length = the transport header.
use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::capture::Frame;
use crate::packet::{flags, Packet, Reject};

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

/// Decodes one frame by its link type; `Err` says why it is not a packet of a flow.
pub fn decode_std(frame: &Frame) -> Result<Packet, Reject> {
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
    let (src, dst, ip_payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
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
    match &sliced.transport {
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
        // payload, ports 0.
        _ => {}
    }
    Ok(p)
}
