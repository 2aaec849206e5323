//! Captures in, finished flows out, with the accounting of every frame.
use std::collections::BTreeMap;
use std::path::Path;

use crate::capture::Capture;
use crate::capture::Frame;
use crate::decode_std::StdDecoder;
use crate::decode_v3::V3Decoder;
use crate::error::Result;
use crate::flow::Flow;
use crate::packet::Packet;
use crate::packet::Reject;
use crate::quirks::Quirks;
use crate::record::{flow_row, Cell, RecordOptions};
use crate::table::{EndReason, FlowTable, TableOptions};

/// How the meter turns packets into flows: a preset of [`Quirks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// CICFlowMeter V3 (the tool behind CIC-IDS2017 and CIC-DDoS2019), quirks included, so
    /// models trained on the published CSVs see the same numbers ([`Quirks::V3`]).
    #[default]
    CicFlowMeter,
    /// The documented fixes of V3 (TCP teardown on the FIN exchange or RST, flags counted over
    /// every packet, no padding as payload, IPv6 and every common link type read, …;
    /// [`Quirks::CORRECTED`]).
    Corrected,
}

impl Mode {
    /// The switches of this mode.
    pub fn quirks(self) -> Quirks {
        match self {
            Mode::CicFlowMeter => Quirks::V3,
            Mode::Corrected => Quirks::CORRECTED,
        }
    }
}

/// Options of [`extract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterOptions {
    /// Each V3 behaviour on or off (`Mode::quirks` gives the presets).
    pub quirks: Quirks,
    /// Timeouts and the flow-table bound.
    pub table: TableOptions,
    /// How rows are written.
    pub record: RecordOptions,
}

impl MeterOptions {
    /// The defaults with `mode`'s switches.
    pub fn of_mode(mode: Mode) -> Self {
        Self {
            quirks: mode.quirks(),
            ..Self::default()
        }
    }
}

/// The decoder the switches ask for.
enum Decoder {
    V3(V3Decoder),
    Std(StdDecoder),
}

impl Decoder {
    fn decode(&mut self, frame: &Frame) -> std::result::Result<Packet, Reject> {
        match self {
            Decoder::V3(d) => d.decode(frame),
            Decoder::Std(d) => d.decode(frame),
        }
    }
}

/// A finished flow as written: its V3 cells, why it ended and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// The 85 cells of a CICFlowMeter V3 row (`record::V3_HEADER`).
    pub cells: Vec<Cell>,
    /// Why the flow ended.
    pub end: EndReason,
    /// Flow start, µs since the Unix epoch.
    pub start_us: i64,
    /// Packets in the flow.
    pub packets: u64,
    /// Frame number of the flow's first packet in its capture.
    pub first_frame: u64,
    /// Index of the flow's capture in the list given to [`extract`].
    pub capture: usize,
}

/// The accounting of one extraction: `frames == packets_in_flows + Σ rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct MeterReport {
    /// Frames read from the captures.
    pub frames: u64,
    /// Packets inside written flows.
    pub packets_in_flows: u64,
    /// Frames not in any written flow, by reason (`Reject::as_str`).
    pub rejected: BTreeMap<String, u64>,
    /// Flows written, by why they ended (`EndReason::as_str`).
    pub flows: BTreeMap<String, u64>,
    /// The most flows open at once.
    pub peak_open_flows: usize,
    /// Frames the capture never delivered: a live capture's drops by the kernel or the
    /// interface (libpcap's statistics); 0 for files. Not part of `frames`.
    pub capture_dropped: u64,
}

impl MeterReport {
    /// Frames rejected, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Flows written, all reasons.
    pub fn flows_total(&self) -> u64 {
        self.flows.values().sum()
    }
}

/// Frames in, finished flows out, for one capture: its decoder and flow table, and the
/// accounting of every frame pushed. [`extract`] runs one per capture file; a live capture
/// pushes frames as they arrive and advances the clock between them.
///
/// ```
/// use flowmeter::{Frame, Meter, MeterOptions};
///
/// let mut meter = Meter::new(&MeterOptions::default(), 0);
/// let mut flows = Vec::new();
/// // An ARP frame: read, counted, in no flow.
/// let mut arp = vec![0u8; 60];
/// arp[12..14].copy_from_slice(&[0x08, 0x06]);
/// let frame = Frame { number: 1, timestamp_us: 0, link_type: 1, wire_len: 60, data: arp };
/// meter.push(&frame, &mut |f| flows.push(f));
/// let report = meter.finish(&mut |f| flows.push(f));
/// assert_eq!((report.frames, report.rejected["not_ip"], flows.len()), (1, 1, 0));
/// ```
pub struct Meter {
    options: MeterOptions,
    decoder: Decoder,
    table: FlowTable,
    capture: usize,
    frames: u64,
    packets_in_flows: u64,
    peak_open_flows: usize,
    /// By `Reject::as_str` and `EndReason::as_str`: no allocation per frame or flow.
    rejected: BTreeMap<&'static str, u64>,
    flows: BTreeMap<&'static str, u64>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("capture", &self.capture)
            .field("frames", &self.frames)
            .field("open_flows", &self.table.len())
            .finish()
    }
}

impl Meter {
    /// An empty meter; its flows carry `capture` as [`FlowRecord::capture`].
    pub fn new(options: &MeterOptions, capture: usize) -> Self {
        let q = options.quirks;
        Self {
            options: *options,
            decoder: if q.v3_decoder {
                Decoder::V3(V3Decoder::from_quirks(&q))
            } else {
                Decoder::Std(StdDecoder::new())
            },
            table: FlowTable::with_quirks(options.table, q),
            capture,
            frames: 0,
            packets_in_flows: 0,
            peak_open_flows: 0,
            rejected: BTreeMap::new(),
            flows: BTreeMap::new(),
        }
    }

    /// Reads one frame; flows it ends (and flows whose timeout its timestamp passes) go to
    /// `on_flow`, in the order they end.
    pub fn push(&mut self, frame: &Frame, on_flow: &mut impl FnMut(FlowRecord)) {
        self.frames += 1;
        match self.decoder.decode(frame) {
            Ok(p) => {
                let (table, mut sink) = self.split(on_flow);
                table.add(&p, &mut |f, end| sink.done(f, end));
                self.peak_open_flows = self.peak_open_flows.max(self.table.len());
            }
            Err(reason) => *self.rejected.entry(reason.as_str()).or_default() += 1,
        }
    }

    /// The clock reached `timestamp_us` (µs since the Unix epoch) with no frame: flows whose
    /// flow timeout has passed are written. A live capture calls this while the link is quiet.
    pub fn advance_to(&mut self, timestamp_us: i64, on_flow: &mut impl FnMut(FlowRecord)) {
        let (table, mut sink) = self.split(on_flow);
        table.advance_to(timestamp_us, &mut |f, end| sink.done(f, end));
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flows open right now.
    pub fn open_flows(&self) -> usize {
        self.table.len()
    }

    /// The accounting so far (open flows' packets are not yet in it).
    pub fn report(&self) -> MeterReport {
        MeterReport {
            frames: self.frames,
            packets_in_flows: self.packets_in_flows,
            rejected: self
                .rejected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            flows: self
                .flows
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            peak_open_flows: self.peak_open_flows,
            capture_dropped: 0,
        }
    }

    /// The input ended: every open flow is written (in order of its first packet) and the
    /// accounting returned, `frames == packets_in_flows + Σ rejected`.
    pub fn finish(mut self, on_flow: &mut impl FnMut(FlowRecord)) -> MeterReport {
        let (table, mut sink) = self.split(on_flow);
        table.finish(&mut |f, end| sink.done(f, end));
        self.report()
    }
}

impl Meter {
    /// The flow table, and where the flows it finishes go (borrowed apart so both can be used).
    fn split<'a, F: FnMut(FlowRecord)>(
        &'a mut self,
        on_flow: &'a mut F,
    ) -> (&'a mut FlowTable, FlowSink<'a, F>) {
        let Self {
            options,
            table,
            capture,
            packets_in_flows,
            rejected,
            flows,
            ..
        } = self;
        let sink = FlowSink {
            options,
            capture: *capture,
            packets_in_flows,
            rejected,
            flows,
            on_flow,
        };
        (table, sink)
    }
}

/// Where the table's finished flows go: counted, then written unless single-packet.
struct FlowSink<'a, F: FnMut(FlowRecord)> {
    options: &'a MeterOptions,
    capture: usize,
    packets_in_flows: &'a mut u64,
    rejected: &'a mut BTreeMap<&'static str, u64>,
    flows: &'a mut BTreeMap<&'static str, u64>,
    on_flow: &'a mut F,
}

impl<F: FnMut(FlowRecord)> FlowSink<'_, F> {
    fn done(&mut self, f: Flow, end: EndReason) {
        if f.packets() < 2 {
            // CICFlowMeter writes no single-packet flow.
            *self
                .rejected
                .entry(Reject::SinglePacketFlow.as_str())
                .or_default() += f.packets();
            return;
        }
        *self.packets_in_flows += f.packets();
        *self.flows.entry(end.as_str()).or_default() += 1;
        (self.on_flow)(FlowRecord {
            cells: flow_row(&f, self.options.record, &self.options.quirks),
            end,
            start_us: f.start_us,
            packets: f.packets(),
            first_frame: f.first_frame,
            capture: self.capture,
        });
    }
}

impl MeterReport {
    /// Adds another capture's accounting to this one.
    pub fn merge(&mut self, other: &MeterReport) {
        self.frames += other.frames;
        self.packets_in_flows += other.packets_in_flows;
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.flows {
            *self.flows.entry(k.clone()).or_default() += v;
        }
        self.peak_open_flows = self.peak_open_flows.max(other.peak_open_flows);
        self.capture_dropped += other.capture_dropped;
    }
}

/// Reads the captures in order (each with a fresh decoder and flow table, as V3 does per file)
/// and hands every finished flow of two or more packets to `on_flow`, in the order the flows
/// end. Returns the accounting.
///
/// ```no_run
/// let report = flowmeter::extract(&["traffic.pcap"], &flowmeter::MeterOptions::default(), |flow| {
///     println!("{} ({} packets)", flow.cells[0], flow.packets);
/// })
/// .unwrap();
/// assert_eq!(report.frames, report.packets_in_flows + report.rejected_total());
/// ```
pub fn extract<P: AsRef<Path>>(
    captures: &[P],
    options: &MeterOptions,
    on_flow: impl FnMut(FlowRecord),
) -> Result<MeterReport> {
    extract_with_progress(captures, options, on_flow, |_| {})
}

/// Frames read so far, reported by [`extract_with_progress`] every [`PROGRESS_EVERY`] frames
/// and at the end of each capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Index of the capture being read.
    pub capture: usize,
    /// Frames read from it so far.
    pub frames: u64,
    /// Flows open right now.
    pub open_flows: usize,
}

/// Frames between two [`Progress`] reports.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// [`extract`], calling `on_progress` as frames are read (for a progress bar on long captures).
pub fn extract_with_progress<P: AsRef<Path>>(
    captures: &[P],
    options: &MeterOptions,
    mut on_flow: impl FnMut(FlowRecord),
    mut on_progress: impl FnMut(Progress),
) -> Result<MeterReport> {
    let mut report = MeterReport::default();
    for (capture_index, path) in captures.iter().enumerate() {
        let mut capture = Capture::open(path.as_ref())?;
        let mut meter = Meter::new(options, capture_index);
        let mut frame = Frame::with_capacity(2048);
        while capture.next_frame_into(&mut frame)? {
            meter.push(&frame, &mut on_flow);
            if meter.frames().is_multiple_of(PROGRESS_EVERY) {
                on_progress(Progress {
                    capture: capture_index,
                    frames: meter.frames(),
                    open_flows: meter.open_flows(),
                });
            }
        }
        on_progress(Progress {
            capture: capture_index,
            frames: meter.frames(),
            open_flows: meter.open_flows(),
        });
        report.merge(&meter.finish(&mut on_flow));
    }
    Ok(report)
}
