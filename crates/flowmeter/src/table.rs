//! The flow table: packets in, finished flows out (CICFlowMeter's `FlowGenerator`), in bounded
//! memory.
use std::collections::HashMap;

use crate::flow::{Endpoints, Flow, FlowKey};
use crate::packet::{flags, Packet};

/// Why a flow was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndReason {
    /// A FIN closed it (CICFlowMeter: the first FIN of an existing flow; the FIN belongs to it).
    Fin,
    /// A packet of its key arrived more than the flow timeout after the flow's start.
    FlowTimeout,
    /// The flow timeout passed with no new packet; the table's sweep wrote it (same content as
    /// CICFlowMeter, which would have written it at the end of the capture).
    Expired,
    /// The capture ended.
    EndOfCapture,
    /// The table was full: the flow that had waited longest for a packet was written early.
    Evicted,
}

impl EndReason {
    /// Stable snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::FlowTimeout => "flow_timeout",
            EndReason::Expired => "expired",
            EndReason::EndOfCapture => "end_of_capture",
            EndReason::Evicted => "evicted",
        }
    }
}

/// Timeouts and bounds of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// A packet more than this after its flow's start ends the flow and starts a new one
    /// (CICFlowMeter: 120 s, measured from the flow's first packet, strict `>`).
    pub flow_timeout_us: i64,
    /// A gap longer than this closes an active period and counts as idle time (5 s).
    pub activity_timeout_us: i64,
    /// Most flows kept open at once; past it the flow that waited longest is written early
    /// (counted as evicted).
    pub max_flows: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            flow_timeout_us: 120_000_000,
            activity_timeout_us: 5_000_000,
            max_flows: 1 << 20,
        }
    }
}

/// Packets every sweep of expired flows (the sweep keeps memory bounded on long captures).
const SWEEP_EVERY: u64 = 1 << 16;

/// Open flows and the endpoints of flows that timed out (CICFlowMeter gives a flow re-created
/// after a timeout the old flow's direction), with counters for the report.
#[derive(Debug)]
pub struct FlowTable {
    options: TableOptions,
    open: HashMap<FlowKey, Flow>,
    /// Direction of flows written by a timeout or the sweep, for a later packet of the same key.
    expired_ends: HashMap<FlowKey, (i64, Endpoints)>,
    packets: u64,
    latest_us: i64,
}

impl FlowTable {
    /// An empty table.
    pub fn new(options: TableOptions) -> Self {
        Self {
            options,
            open: HashMap::new(),
            expired_ends: HashMap::new(),
            packets: 0,
            latest_us: i64::MIN,
        }
    }

    /// Open flows right now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no flow is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Adds a packet; flows it ends go to `done` with the reason.
    pub fn add(&mut self, p: &Packet, done: &mut impl FnMut(Flow, EndReason)) {
        let t = p.timestamp_us;
        self.packets += 1;
        self.latest_us = self.latest_us.max(t);
        let key = FlowKey::of(p);
        match self.open.get_mut(&key) {
            Some(f) if t - f.start_us > self.options.flow_timeout_us => {
                let old = self.open.remove(&key).map(|f| {
                    let ends = f.ends;
                    done(f, EndReason::FlowTimeout);
                    ends
                });
                let mut fresh = Flow::new(p);
                if let Some(ends) = old {
                    // `timeout_inherits_direction`: V3 keeps the old flow's endpoints.
                    fresh.ends = ends;
                }
                self.insert(key, fresh, done);
            }
            Some(f) if p.has(flags::FIN) => {
                // The first FIN of an existing flow closes it and belongs to it; no
                // active/idle update for it (V3).
                f.add(p);
                if let Some(f) = self.open.remove(&key) {
                    done(f, EndReason::Fin);
                }
            }
            Some(f) => {
                f.update_active_idle(t, self.options.activity_timeout_us);
                f.add(p);
            }
            None => {
                let mut fresh = Flow::new(p);
                if let Some((_, ends)) = self.expired_ends.remove(&key) {
                    fresh.ends = ends;
                }
                self.insert(key, fresh, done);
            }
        }
        if self.packets.is_multiple_of(SWEEP_EVERY) {
            self.sweep(done);
        }
    }

    fn insert(&mut self, key: FlowKey, flow: Flow, done: &mut impl FnMut(Flow, EndReason)) {
        if self.open.len() >= self.options.max_flows.max(1) {
            // Full: write the eighth of the flows that waited longest for a packet, at once,
            // so eviction costs O(log n) per flow rather than a scan per new flow.
            let mut by_age: Vec<(i64, u64, FlowKey)> = self
                .open
                .iter()
                .map(|(k, f)| (f.last_us, f.first_frame, *k))
                .collect();
            let n = (by_age.len() / 8).max(1);
            by_age.select_nth_unstable(n - 1);
            let mut victims = by_age[..n].to_vec();
            victims.sort();
            for (_, _, k) in victims {
                if let Some(f) = self.open.remove(&k) {
                    done(f, EndReason::Evicted);
                }
            }
        }
        self.open.insert(key, flow);
    }

    /// Writes the flows whose flow timeout has passed at the latest timestamp seen, keeping
    /// their direction for a later packet of the same key (V3 would give that packet's new flow
    /// the old direction).
    fn sweep(&mut self, done: &mut impl FnMut(Flow, EndReason)) {
        let now = self.latest_us;
        let timeout = self.options.flow_timeout_us;
        let mut expired: Vec<FlowKey> = self
            .open
            .iter()
            .filter(|(_, f)| now - f.start_us > timeout)
            .map(|(k, _)| *k)
            .collect();
        expired.sort_by_key(|k| self.open[k].first_frame);
        for key in expired {
            if let Some(f) = self.open.remove(&key) {
                self.expired_ends.insert(key, (f.start_us, f.ends));
                done(f, EndReason::Expired);
            }
        }
        // Bounded like the open flows: past the cap, forget the older half.
        if self.expired_ends.len() > self.options.max_flows.max(1) {
            let mut starts: Vec<i64> = self.expired_ends.values().map(|(s, _)| *s).collect();
            let mid = starts.len() / 2;
            let (_, median, _) = starts.select_nth_unstable(mid);
            let median = *median;
            self.expired_ends.retain(|_, (start, _)| *start >= median);
        }
    }

    /// The capture ended: every open flow, in order of its first packet.
    pub fn finish(&mut self, done: &mut impl FnMut(Flow, EndReason)) {
        let mut flows: Vec<Flow> = self.open.drain().map(|(_, f)| f).collect();
        flows.sort_by_key(|f| f.first_frame);
        for f in flows {
            done(f, EndReason::EndOfCapture);
        }
        self.expired_ends.clear();
    }
}
