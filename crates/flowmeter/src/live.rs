//! Live capture from a network interface through libpcap (the `pcap` crate), behind the `live`
//! feature: the same frames as a capture file, fed to the same [`Meter`].
//!
//! Capturing needs the right to open the interface (root, or `CAP_NET_RAW` and
//! `CAP_NET_ADMIN`); building needs libpcap's development files (Debian: `libpcap-dev`).
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capture::Frame;
use crate::error::{FlowmeterError, Result};
use crate::meter::{FlowRecord, Meter, MeterOptions, MeterReport, Progress, PROGRESS_EVERY};

/// How the interface is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes kept of each frame (the headers the features read are in the first ~120).
    pub snaplen: i32,
    /// Receive frames addressed to other hosts too.
    pub promiscuous: bool,
    /// The kernel's capture buffer; frames arriving while it is full are dropped and counted
    /// in [`MeterReport::capture_dropped`].
    pub buffer_bytes: i32,
    /// How long a read waits for a frame before the meter's clock advances on its own (flows
    /// past their timeout are written even on a quiet link).
    pub read_timeout: Duration,
    /// A BPF filter (tcpdump syntax) applied in the kernel, e.g. `"tcp or udp"`.
    pub filter: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            snaplen: 65_535,
            promiscuous: false,
            buffer_bytes: 64 << 20,
            read_timeout: Duration::from_millis(100),
            filter: None,
        }
    }
}

/// Frames from a network interface, as [`crate::Capture`] gives them from a file.
///
/// ```no_run
/// let mut live = flowmeter::LiveCapture::open("eth0", &flowmeter::LiveOptions::default()).unwrap();
/// let mut frame = flowmeter::Frame::default();
/// if live.next_frame_into(&mut frame).unwrap() {
///     println!("#{}: {} bytes", frame.number, frame.data.len());
/// }
/// ```
pub struct LiveCapture {
    interface: String,
    capture: pcap::Capture<pcap::Active>,
    link_type: u16,
    frames: u64,
    /// poll(2)'s timeout, ms.
    timeout_ms: i32,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("link_type", &self.link_type)
            .field("frames", &self.frames)
            .finish()
    }
}

/// libpcap's counters for a live capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveStats {
    /// Frames the kernel received for this capture.
    pub received: u64,
    /// Frames dropped because the capture buffer was full.
    pub dropped_by_kernel: u64,
    /// Frames dropped by the interface or its driver.
    pub dropped_by_interface: u64,
}

impl LiveCapture {
    /// Opens `interface` (e.g. `eth0`, `lo`); the error says why it cannot be opened (no such
    /// interface, no permission, a bad filter).
    pub fn open(interface: &str, options: &LiveOptions) -> Result<Self> {
        let failed = |why: String| FlowmeterError::Live {
            interface: interface.to_string(),
            why,
        };
        let timeout_ms = i32::try_from(options.read_timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let mut capture = pcap::Capture::from_device(interface)
            .map_err(|e| failed(e.to_string()))?
            .snaplen(options.snaplen)
            .promisc(options.promiscuous)
            .buffer_size(options.buffer_bytes)
            .timeout(timeout_ms)
            // Frames reach the meter as they arrive, not when a kernel block fills.
            .immediate_mode(true)
            .open()
            // Non-blocking, with our own poll(2): libpcap's read timeout does not fire on a
            // quiet Linux interface, and the meter's clock must advance there too.
            .and_then(|c| c.setnonblock())
            .map_err(|e| failed(e.to_string()))?;
        if let Some(filter) = &options.filter {
            capture
                .filter(filter, true)
                .map_err(|e| failed(format!("filter {filter:?}: {e}")))?;
        }
        let link_type = u16::try_from(capture.get_datalink().0)
            .map_err(|_| failed(format!("link type {}", capture.get_datalink().0)))?;
        Ok(Self {
            interface: interface.to_string(),
            capture,
            link_type,
            frames: 0,
            timeout_ms,
        })
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The next frame into `out` (its buffer reused); `false` when the read timeout passed
    /// with no frame.
    pub fn next_frame_into(&mut self, out: &mut Frame) -> Result<bool> {
        if self.read_into(out)? {
            return Ok(true);
        }
        let mut poll = libc::pollfd {
            fd: self.capture.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, self.timeout_ms) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(FlowmeterError::Live {
                    interface: self.interface.clone(),
                    why: format!("poll: {error}"),
                });
            }
        }
        if ready > 0 {
            return self.read_into(out);
        }
        Ok(false)
    }

    /// One frame if libpcap has one now.
    fn read_into(&mut self, out: &mut Frame) -> Result<bool> {
        match self.capture.next_packet() {
            Ok(packet) => {
                self.frames += 1;
                let h = packet.header;
                out.number = self.frames;
                // time_t and suseconds_t are i64 here, i32 on some targets.
                #[allow(clippy::useless_conversion)]
                let (sec, usec) = (i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec));
                out.timestamp_us = sec * 1_000_000 + usec;
                out.link_type = self.link_type;
                out.wire_len = h.len;
                out.data.clear();
                out.data.extend_from_slice(packet.data);
                Ok(true)
            }
            Err(pcap::Error::TimeoutExpired) => Ok(false),
            Err(e) => Err(FlowmeterError::Live {
                interface: self.interface.clone(),
                why: format!("after frame {}: {e}", self.frames),
            }),
        }
    }

    /// libpcap's counters so far.
    pub fn stats(&mut self) -> Result<LiveStats> {
        let s = self.capture.stats().map_err(|e| FlowmeterError::Live {
            interface: self.interface.clone(),
            why: format!("statistics: {e}"),
        })?;
        Ok(LiveStats {
            received: u64::from(s.received),
            dropped_by_kernel: u64::from(s.dropped),
            dropped_by_interface: u64::from(s.if_dropped),
        })
    }
}

/// When [`extract_live`] stops on its own (besides `stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveLimits {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub frames: Option<u64>,
}

/// Meters `interface` until `stop` is set (e.g. by a Ctrl-C handler) or a limit is reached,
/// then writes every open flow and returns the accounting, with the frames the kernel or the
/// interface dropped in [`MeterReport::capture_dropped`]. Flows go to `on_flow` as they end;
/// `on_progress` is called every [`PROGRESS_EVERY`] frames and at every read timeout.
///
/// ```no_run
/// use std::sync::atomic::AtomicBool;
/// let stop = AtomicBool::new(false);
/// let report = flowmeter::extract_live(
///     "eth0",
///     &flowmeter::MeterOptions::default(),
///     &flowmeter::LiveOptions::default(),
///     flowmeter::LiveLimits { duration: Some(std::time::Duration::from_secs(10)), frames: None },
///     &stop,
///     |flow| println!("{}", flow.cells[0]),
///     |_| {},
/// )
/// .unwrap();
/// assert_eq!(report.frames, report.packets_in_flows + report.rejected_total());
/// ```
pub fn extract_live(
    interface: &str,
    options: &MeterOptions,
    live: &LiveOptions,
    limits: LiveLimits,
    stop: &AtomicBool,
    mut on_flow: impl FnMut(FlowRecord),
    mut on_progress: impl FnMut(Progress),
) -> Result<MeterReport> {
    let mut capture = LiveCapture::open(interface, live)?;
    let mut meter = Meter::new(options, 0);
    let mut frame = Frame::with_capacity(2048);
    let started = Instant::now();
    let progress = |meter: &Meter| Progress {
        capture: 0,
        frames: meter.frames(),
        open_flows: meter.open_flows(),
    };
    while !stop.load(Ordering::Relaxed)
        && limits.frames.is_none_or(|n| meter.frames() < n)
        && limits.duration.is_none_or(|d| started.elapsed() < d)
    {
        if capture.next_frame_into(&mut frame)? {
            meter.push(&frame, &mut on_flow);
            if meter.frames().is_multiple_of(PROGRESS_EVERY) {
                on_progress(progress(&meter));
            }
        } else {
            // A quiet link: time still passes for the flows waiting on their timeout.
            meter.advance_to(now_us(), &mut on_flow);
            on_progress(progress(&meter));
        }
    }
    let stats = capture.stats()?;
    let mut report = meter.finish(&mut on_flow);
    report.capture_dropped = stats.dropped_by_kernel + stats.dropped_by_interface;
    Ok(report)
}

/// Wall-clock time in µs since the Unix epoch (libpcap's timestamps are on the same clock).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
