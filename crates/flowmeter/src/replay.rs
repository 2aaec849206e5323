//! A large capture made by replaying real ones, for speed tests: **synthetic (replayed real
//! traffic)**, never for accuracy.
use std::io::Write;
use std::path::Path;

use crate::capture::Capture;
use crate::error::{FlowmeterError, Result};

/// What [`write_replayed_capture`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Frames written.
    pub frames: u64,
    /// Distinct real frames replayed.
    pub real_frames: usize,
    /// Copies of them (the last one partial).
    pub copies: u64,
}

/// Writes `frames` frames to `out` (classic pcap, Ethernet, µs) by replaying every Ethernet
/// frame of `inputs` in order, copy after copy: each copy's gaps are the capture's own (at
/// most 1 s, never backwards), copies start 200 s apart (past the flow timeout) and the IPv4
/// addresses of copy `c` have their last byte XOR `c`, so copies do not merge into one flow.
///
/// ```no_run
/// let r = flowmeter::write_replayed_capture("big.pcap".as_ref(), 10_000_000, &["a.pcap"]).unwrap();
/// assert_eq!(r.frames, 10_000_000);
/// ```
pub fn write_replayed_capture<P: AsRef<Path>>(
    out: &Path,
    frames: u64,
    inputs: &[P],
) -> Result<Replayed> {
    let mut real: Vec<(i64, Vec<u8>)> = Vec::new();
    for path in inputs {
        let mut capture = Capture::open(path.as_ref())?;
        while let Some(f) = capture.next_frame()? {
            if f.link_type == 1 && f.data.len() as u32 <= f.wire_len {
                real.push((f.timestamp_us, f.data));
            }
        }
    }
    let io = |error| FlowmeterError::Io {
        path: out.to_path_buf(),
        error,
    };
    if real.is_empty() {
        return Err(FlowmeterError::Output {
            path: out.to_path_buf(),
            why: "no Ethernet frame in the inputs to replay".into(),
        });
    }
    let mut w = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(out).map_err(io)?);
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        w.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    let (mut written, mut copy, mut clock) = (0u64, 0u64, 1_700_000_000_000_000i64);
    'copies: loop {
        let mut prev = real[0].0;
        for (ts, data) in &real {
            clock += (ts - prev).clamp(0, 1_000_000);
            prev = *ts;
            let mut d = data.clone();
            if d.len() >= 34 && d[12] == 0x08 && d[13] == 0x00 {
                d[14 + 15] ^= copy as u8;
                d[14 + 19] ^= copy as u8;
            }
            for v in [
                (clock / 1_000_000) as u32,
                (clock % 1_000_000) as u32,
                d.len() as u32,
                d.len() as u32,
            ] {
                w.write_all(&v.to_le_bytes()).map_err(io)?;
            }
            w.write_all(&d).map_err(io)?;
            written += 1;
            if written >= frames {
                break 'copies;
            }
        }
        copy += 1;
        clock += 200_000_000;
    }
    w.flush().map_err(io)?;
    Ok(Replayed {
        frames: written,
        real_frames: real.len(),
        copies: copy + 1,
    })
}
