//! Capture files (pcap, with microsecond or nanosecond timestamps, and pcapng) read frame by
//! frame through `pcap-parser`, with a bounded buffer whatever the file size.
use std::fs::File;
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use crate::error::{FlowmeterError, Result};

/// Bytes of the capture kept in memory at once (grown only for a larger frame).
const BUFFER_BYTES: usize = 1 << 20;

/// One captured frame: where it came from, when, and its bytes as captured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// 1-based position of the frame in its capture (what Wireshark shows as the frame number).
    pub number: u64,
    /// Capture time in microseconds since the Unix epoch (nanosecond captures are truncated to
    /// microseconds, the resolution CICFlowMeter works in).
    pub timestamp_us: i64,
    /// The link-layer type of the frame (`LINKTYPE_*`: 1 Ethernet, 101 raw IP, 113 Linux SLL,
    /// 276 Linux SLL2, …).
    pub link_type: u16,
    /// Length of the frame on the wire (may exceed `data.len()` when the capture was cut).
    pub wire_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

impl Frame {
    /// An empty frame whose buffer holds `bytes` without growing (for `next_frame_into`).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }
}

/// Link type and timestamp scale of one pcapng interface.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u16,
    /// Timestamp units per second.
    units_per_second: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

/// Reads frames from a pcap or pcapng file.
///
/// ```no_run
/// let mut capture = flowmeter::Capture::open("traffic.pcap".as_ref()).unwrap();
/// while let Some(frame) = capture.next_frame().unwrap() {
///     println!("#{} at {} µs: {} bytes", frame.number, frame.timestamp_us, frame.data.len());
/// }
/// ```
pub struct Capture {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Legacy pcap: the link type and whether timestamps are nanoseconds.
    legacy: Option<(u16, bool)>,
    interfaces: Vec<Interface>,
    frames: u64,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Capture {
    /// Opens a capture; the format (pcap or pcapng, either byte order) is read from its header.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| FlowmeterError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let reader = create_reader(BUFFER_BYTES, file).map_err(|e| FlowmeterError::Capture {
            path: path.to_path_buf(),
            frame: 0,
            why: match e {
                PcapError::Eof => "empty file".into(),
                other => format!("not a pcap or pcapng file ({other})"),
            },
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            legacy: None,
            interfaces: Vec::new(),
            frames: 0,
        })
    }

    /// The capture's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next frame, `None` at the end of the capture. A file cut in the middle of a frame
    /// ends with an error naming the frame.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let mut frame = Frame::default();
        Ok(self.next_frame_into(&mut frame)?.then_some(frame))
    }

    /// [`Capture::next_frame`] into `frame`, reusing its buffer (no allocation per frame);
    /// `false` at the end of the capture.
    pub fn next_frame_into(&mut self, out: &mut Frame) -> Result<bool> {
        loop {
            let (consumed, frame) = match self.reader.next() {
                Ok((consumed, block)) => {
                    let frame = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            // 0xa1b23c4d (and its byte swap): nanosecond timestamps.
                            let nanos = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                            self.legacy = Some((h.network.0 as u16, nanos));
                            None
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let (link_type, nanos) = self.legacy.unwrap_or((1, false));
                            let sub = if nanos { b.ts_usec / 1000 } else { b.ts_usec };
                            out.timestamp_us = i64::from(b.ts_sec) * 1_000_000 + i64::from(sub);
                            out.link_type = link_type;
                            out.wire_len = b.origlen;
                            out.data.clear();
                            out.data.extend_from_slice(b.data);
                            Some(())
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            // Interface ids are numbered per section.
                            self.interfaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.interfaces.push(Interface {
                                link_type: idb.linktype.0 as u16,
                                units_per_second: idb.ts_resolution().unwrap_or(1_000_000),
                                offset_s: idb.if_tsoffset,
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let iface =
                                *self.interfaces.get(epb.if_id as usize).ok_or_else(|| {
                                    FlowmeterError::Capture {
                                        path: self.path.clone(),
                                        frame: self.frames + 1,
                                        why: format!(
                                            "packet of undeclared interface {}",
                                            epb.if_id
                                        ),
                                    }
                                })?;
                            let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                            out.timestamp_us = ticks_to_us(ticks, iface.units_per_second)
                                + iface.offset_s * 1_000_000;
                            out.link_type = iface.link_type;
                            out.wire_len = epb.origlen;
                            out.data.clear();
                            out.data.extend_from_slice(data);
                            Some(())
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let iface = self.interfaces.first().copied().ok_or_else(|| {
                                FlowmeterError::Capture {
                                    path: self.path.clone(),
                                    frame: self.frames + 1,
                                    why: "simple packet block before any interface".into(),
                                }
                            })?;
                            // A simple packet block has no timestamp.
                            out.timestamp_us = 0;
                            out.link_type = iface.link_type;
                            out.wire_len = spb.origlen;
                            out.data.clear();
                            out.data.extend_from_slice(spb.data);
                            Some(())
                        }
                        PcapBlockOwned::NG(_) => None,
                    };
                    (consumed, frame)
                }
                Err(PcapError::Eof) => return Ok(false),
                Err(PcapError::UnexpectedEof) => return Err(self.cut_off()),
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.reader_exhausted() {
                        return Err(self.cut_off());
                    }
                    let before = self.reader.data().len();
                    self.reader.refill().map_err(|e| FlowmeterError::Capture {
                        path: self.path.clone(),
                        frame: self.frames + 1,
                        why: format!("read failed ({e})"),
                    })?;
                    // A frame larger than the buffer: grow it once to fit.
                    if self.reader.data().len() == before
                        && !self.reader.grow(before.max(BUFFER_BYTES) * 2)
                    {
                        return Err(self.cut_off());
                    }
                    continue;
                }
                Err(e) => {
                    return Err(FlowmeterError::Capture {
                        path: self.path.clone(),
                        frame: self.frames + 1,
                        why: format!("malformed block ({e})"),
                    })
                }
            };
            self.reader.consume(consumed);
            if frame.is_some() {
                self.frames += 1;
                out.number = self.frames;
                return Ok(true);
            }
        }
    }

    fn cut_off(&self) -> FlowmeterError {
        FlowmeterError::Capture {
            path: self.path.clone(),
            frame: self.frames + 1,
            why: "the file ends inside this frame (truncated capture)".into(),
        }
    }
}

/// `ticks` at `units_per_second` as microseconds (exact for µs and ns resolutions).
fn ticks_to_us(ticks: u64, units_per_second: u64) -> i64 {
    let us = if units_per_second == 1_000_000 {
        ticks
    } else if units_per_second > 1_000_000 && units_per_second.is_multiple_of(1_000_000) {
        ticks / (units_per_second / 1_000_000)
    } else {
        ((u128::from(ticks) * 1_000_000) / u128::from(units_per_second.max(1))) as u64
    };
    us as i64
}
