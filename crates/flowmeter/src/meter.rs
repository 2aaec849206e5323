//! Captures in, finished flows out, with the accounting of every frame.
use std::collections::BTreeMap;
use std::path::Path;

use crate::capture::Capture;
use crate::capture::Frame;
use crate::decode_std::decode_std;
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
    Std,
}

impl Decoder {
    fn decode(&mut self, frame: &Frame) -> std::result::Result<Packet, Reject> {
        match self {
            Decoder::V3(d) => d.decode(frame),
            Decoder::Std => decode_std(frame),
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
        let q = options.quirks;
        let mut decoder = if q.v3_decoder {
            Decoder::V3(V3Decoder::from_quirks(&q))
        } else {
            Decoder::Std
        };
        let mut table = FlowTable::with_quirks(options.table, q);
        let mut done = |f: Flow, end: EndReason| {
            if f.packets() < 2 {
                // CICFlowMeter writes no single-packet flow.
                *report
                    .rejected
                    .entry(Reject::SinglePacketFlow.as_str().into())
                    .or_default() += f.packets();
                return;
            }
            report.packets_in_flows += f.packets();
            *report.flows.entry(end.as_str().into()).or_default() += 1;
            on_flow(FlowRecord {
                cells: flow_row(&f, options.record, &q),
                end,
                start_us: f.start_us,
                packets: f.packets(),
                first_frame: f.first_frame,
                capture: capture_index,
            });
        };
        let mut peak = 0;
        let mut frames = 0u64;
        let mut decode_rejects: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut frame = Frame {
            number: 0,
            timestamp_us: 0,
            link_type: 0,
            wire_len: 0,
            data: Vec::with_capacity(2048),
        };
        while capture.next_frame_into(&mut frame)? {
            frames += 1;
            if frames.is_multiple_of(PROGRESS_EVERY) {
                on_progress(Progress {
                    capture: capture_index,
                    frames,
                    open_flows: table.len(),
                });
            }
            match decoder.decode(&frame) {
                Ok(p) => {
                    table.add(&p, &mut done);
                    peak = peak.max(table.len());
                }
                Err(reason) => *decode_rejects.entry(reason.as_str()).or_default() += 1,
            }
        }
        on_progress(Progress {
            capture: capture_index,
            frames,
            open_flows: table.len(),
        });
        table.finish(&mut done);
        report.frames += frames;
        for (reason, n) in decode_rejects {
            *report.rejected.entry(reason.into()).or_default() += n;
        }
        report.peak_open_flows = report.peak_open_flows.max(peak);
    }
    Ok(report)
}
