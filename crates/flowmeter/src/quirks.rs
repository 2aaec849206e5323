//! Every way CICFlowMeter V3 differs from the corrected flow semantics (Engelen et al., WTMC
//! 2021; Lanvin et al., 2022), as one named switch each. `Quirks::V3` reproduces the tool behind
//! the published CSVs; `Quirks::CORRECTED` computes what the feature names say.
//! docs/CICFLOWMETER_V3.md §8 describes each; `tests/quirks.rs` tests each on its own.

/// One switch per V3 behaviour (`true` = behave like V3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quirks {
    /// Decode frames as V3's jnetpcap 1.3 does (every frame scanned as Ethernet, IPv4 only,
    /// non-IPv4 frames re-read as IPv4 from byte 0 into "mangled" flows). Off: a standard
    /// decoder by link type (Ethernet, Linux SLL/SLL2, raw IP, loopback), IPv4 and IPv6, ARP and
    /// other non-IP frames rejected as `not_ip`.
    pub v3_decoder: bool,
    /// Count Ethernet padding as payload (V3 does in some runs, not in others). Off: payload is
    /// the IP length minus the IP and transport headers.
    pub padding_as_payload: bool,
    /// A UDP packet's header length is the last TCP header length of the capture (−1 before
    /// any; V3's stale header object). Off: 8.
    pub udp_header_stale: bool,
    /// An empty TCP segment to or from port 5060 loses its TCP header (jnetpcap's SIP
    /// binding). Off: decoded like any TCP segment.
    pub sip_5060: bool,
    /// The first FIN seen in an existing flow closes it (the rest of the teardown starts new
    /// flows). Off: a TCP flow ends on RST, or on the ACK that follows FINs from both sides.
    pub close_on_first_fin: bool,
    /// RST does not end a flow. Off: RST ends it (the RST packet included).
    pub rst_ignored: bool,
    /// Flag counts and Fwd PSH/URG describe the flow's first packet only, and Bwd PSH/URG are
    /// always 0. Off: counted over every packet (PSH/URG per direction).
    pub flags_of_first_packet: bool,
    /// The FIN…ECE count columns hold RST, PSH, ECE, SYN, ACK, FIN, URG, CWR in that order
    /// (V3 iterates a Java `HashMap` of flag names). Off: each under its own name.
    pub flag_columns_permuted: bool,
    /// The first packet's payload enters the packet-length statistics twice. Off: once.
    pub first_payload_twice: bool,
    /// Init_Win_bytes_backward is the window of the last backward packet. Off: the first.
    pub init_win_bwd_last: bool,
    /// act_data_pkt_fwd leaves out the first packet. Off: every forward packet with payload.
    pub act_data_skips_first: bool,
    /// The last active period is never recorded, and the packet that ends a flow (FIN,
    /// timeout) never updates active/idle time. Off: every packet does, and the last period is
    /// recorded when the flow ends.
    pub active_idle_unfinished: bool,
    /// Subflow features equal the totals (V3 counts one subflow). Off: a new subflow after
    /// every gap over 1 s, and the subflow features are the totals per subflow.
    pub subflow_is_total: bool,
    /// The bulk features are 0 (V3 runs its bulk detection on the first packet only). Off:
    /// bulks of ≥ 4 payload packets in one direction, gaps ≤ 1 s.
    pub bulk_zero: bool,
    /// A flow re-created after a flow timeout keeps the old flow's direction. Off: oriented by
    /// its own first packet.
    pub timeout_inherits_direction: bool,
    /// Flow key and direction look at addresses only: a packet is forward when its source
    /// address is the flow's, so the two directions of a host talking to itself (loopback,
    /// hairpin NAT) are two one-way flows. Off: address and port together.
    pub direction_by_address_only: bool,
    /// Down/Up Ratio is an integer division. Off: a real division.
    pub down_up_integer_division: bool,
    /// A flow of zero duration has Flow Bytes/s and Flow Packets/s of Infinity or NaN. Off: 0.
    pub zero_duration_rates_infinite: bool,
}

impl Quirks {
    /// CICFlowMeter V3 as released (padding counted, as in the published CIC-IDS2017 CSVs).
    pub const V3: Quirks = Quirks {
        v3_decoder: true,
        padding_as_payload: true,
        udp_header_stale: true,
        sip_5060: true,
        close_on_first_fin: true,
        rst_ignored: true,
        flags_of_first_packet: true,
        flag_columns_permuted: true,
        first_payload_twice: true,
        init_win_bwd_last: true,
        act_data_skips_first: true,
        active_idle_unfinished: true,
        subflow_is_total: true,
        bulk_zero: true,
        timeout_inherits_direction: true,
        direction_by_address_only: true,
        down_up_integer_division: true,
        zero_duration_rates_infinite: true,
    };

    /// Every switch off: what the feature names say.
    pub const CORRECTED: Quirks = Quirks {
        v3_decoder: false,
        padding_as_payload: false,
        udp_header_stale: false,
        sip_5060: false,
        close_on_first_fin: false,
        rst_ignored: false,
        flags_of_first_packet: false,
        flag_columns_permuted: false,
        first_payload_twice: false,
        init_win_bwd_last: false,
        act_data_skips_first: false,
        active_idle_unfinished: false,
        subflow_is_total: false,
        bulk_zero: false,
        timeout_inherits_direction: false,
        direction_by_address_only: false,
        down_up_integer_division: false,
        zero_duration_rates_infinite: false,
    };

    /// Every switch with its name, for reports and docs.
    pub fn named(&self) -> [(&'static str, bool); 18] {
        [
            ("v3_decoder", self.v3_decoder),
            ("padding_as_payload", self.padding_as_payload),
            ("udp_header_stale", self.udp_header_stale),
            ("sip_5060", self.sip_5060),
            ("close_on_first_fin", self.close_on_first_fin),
            ("rst_ignored", self.rst_ignored),
            ("flags_of_first_packet", self.flags_of_first_packet),
            ("flag_columns_permuted", self.flag_columns_permuted),
            ("first_payload_twice", self.first_payload_twice),
            ("init_win_bwd_last", self.init_win_bwd_last),
            ("act_data_skips_first", self.act_data_skips_first),
            ("active_idle_unfinished", self.active_idle_unfinished),
            ("subflow_is_total", self.subflow_is_total),
            ("bulk_zero", self.bulk_zero),
            (
                "timeout_inherits_direction",
                self.timeout_inherits_direction,
            ),
            ("direction_by_address_only", self.direction_by_address_only),
            ("down_up_integer_division", self.down_up_integer_division),
            (
                "zero_duration_rates_infinite",
                self.zero_duration_rates_infinite,
            ),
        ]
    }
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks::V3
    }
}
