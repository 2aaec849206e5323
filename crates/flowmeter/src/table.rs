//! The flow table: packets in, finished flows out (CICFlowMeter's `FlowGenerator`), in bounded
//! memory.
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::flow::{Endpoints, Flow, FlowKey};
use crate::packet::{flags, Packet};
use crate::quirks::Quirks;

/// Why a flow was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndReason {
    /// A FIN closed it (CICFlowMeter: the first FIN of an existing flow; the FIN belongs to it;
    /// corrected: the ACK after FINs from both sides).
    Fin,
    /// An RST closed it (corrected semantics; the RST belongs to it).
    Rst,
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
            EndReason::Rst => "rst",
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
    /// How many timed-out flows keep their direction for a later packet of the same key
    /// (V3 gives such a packet's new flow the old flow's direction; past this bound the oldest
    /// are forgotten and a later packet of theirs starts a flow oriented by itself). Small
    /// enough to stay in cache: looking it up is on every new flow's path.
    pub remembered_directions: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            flow_timeout_us: 120_000_000,
            activity_timeout_us: 5_000_000,
            max_flows: 1 << 20,
            remembered_directions: 1 << 16,
        }
    }
}

/// Open flows, a queue of them in order of start (to expire them in O(1)), and the endpoints
/// of flows that timed out (CICFlowMeter gives a flow re-created after a timeout the old flow's
/// direction), each bounded.
#[derive(Debug)]
pub struct FlowTable {
    options: TableOptions,
    quirks: Quirks,
    /// Boxed: a flow is ~800 bytes, and the table's probes and moves stay small.
    open: FxHashMap<FlowKey, (u64, Box<Flow>)>,
    /// (start, serial, key) of every flow created, oldest first: the serial tells whether the
    /// entry is still the open flow of that key.
    by_start: VecDeque<(i64, u64, FlowKey)>,
    /// Direction of flows written by a timeout or by expiry, for a later packet of the same key.
    expired_ends: FxHashMap<FlowKey, (u64, Endpoints)>,
    /// (serial, key) of `expired_ends`, oldest first, to forget the oldest past the bound.
    expired_order: VecDeque<(u64, FlowKey)>,
    serial: u64,
    latest_us: i64,
}

impl FlowTable {
    /// An empty table with V3's semantics ([`Quirks::V3`]).
    pub fn new(options: TableOptions) -> Self {
        Self::with_quirks(options, Quirks::V3)
    }

    /// An empty table whose flows follow `quirks`.
    pub fn with_quirks(options: TableOptions, quirks: Quirks) -> Self {
        Self {
            options,
            quirks,
            open: FxHashMap::default(),
            by_start: VecDeque::new(),
            expired_ends: FxHashMap::default(),
            expired_order: VecDeque::new(),
            serial: 0,
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
        self.advance_to(t, done);
        let q = self.quirks;
        let key = FlowKey::oriented(p, q.direction_by_address_only);
        match self.open.get_mut(&key) {
            Some((_, f)) if t - f.start_us > self.options.flow_timeout_us => {
                let old = self.open.remove(&key).map(|(_, mut f)| {
                    let ends = f.ends;
                    if !q.active_idle_unfinished {
                        f.close_active_period();
                    }
                    done(*f, EndReason::FlowTimeout);
                    ends
                });
                let mut fresh = Flow::new(p, &q);
                if let (Some(ends), true) = (old, q.timeout_inherits_direction) {
                    // V3 keeps the old flow's endpoints.
                    fresh.ends = ends;
                }
                self.insert(key, fresh, done);
            }
            Some((_, f)) if q.close_on_first_fin && p.has(flags::FIN) => {
                // The first FIN of an existing flow closes it and belongs to it; no
                // active/idle update for it (V3).
                if !q.active_idle_unfinished {
                    f.update_active_idle(t, self.options.activity_timeout_us);
                }
                f.add(p);
                if let Some((_, mut f)) = self.open.remove(&key) {
                    if !q.active_idle_unfinished {
                        f.close_active_period();
                    }
                    done(*f, EndReason::Fin);
                }
            }
            Some((_, f)) => {
                // Corrected teardown: an ACK after FINs from both sides ends the flow.
                let teardown_done =
                    !q.close_on_first_fin && f.fin_fwd && f.fin_bwd && p.has(flags::ACK);
                f.update_active_idle(t, self.options.activity_timeout_us);
                f.add(p);
                let end = if !q.rst_ignored && p.has(flags::RST) {
                    Some(EndReason::Rst)
                } else if teardown_done {
                    Some(EndReason::Fin)
                } else {
                    None
                };
                if let Some(end) = end {
                    if let Some((_, mut f)) = self.open.remove(&key) {
                        if !q.active_idle_unfinished {
                            f.close_active_period();
                        }
                        done(*f, end);
                    }
                }
            }
            None => {
                let mut fresh = Flow::new(p, &q);
                if let Some((_, ends)) = self.expired_ends.remove(&key) {
                    if q.timeout_inherits_direction {
                        fresh.ends = ends;
                    }
                }
                if !q.rst_ignored && p.has(flags::RST) {
                    // A lone RST is a flow of one packet, ended at once.
                    done(fresh, EndReason::Rst);
                } else {
                    self.insert(key, fresh, done);
                }
            }
        }
    }

    /// The clock reached `timestamp_us` with no packet (a live capture on a quiet link): flows
    /// whose flow timeout has passed are written, as a packet at that time would write them.
    pub fn advance_to(&mut self, timestamp_us: i64, done: &mut impl FnMut(Flow, EndReason)) {
        if timestamp_us > self.latest_us {
            self.latest_us = timestamp_us;
            self.expire(done);
        }
    }

    fn insert(&mut self, key: FlowKey, flow: Flow, done: &mut impl FnMut(Flow, EndReason)) {
        if self.open.len() >= self.options.max_flows.max(1) {
            self.evict(done);
        }
        self.serial += 1;
        self.by_start.push_back((flow.start_us, self.serial, key));
        self.open.insert(key, (self.serial, Box::new(flow)));
        // Entries of flows already written (FIN, timeout, eviction) wait in the queue until
        // their start is old; under a flood of short flows, drop them early so the queue stays
        // within twice the open flows.
        if self.by_start.len() > 2 * self.options.max_flows.max(1) + 1024 {
            let open = &self.open;
            self.by_start
                .retain(|(_, serial, key)| open.get(key).is_some_and(|(s, _)| s == serial));
        }
    }

    /// Full: writes the eighth of the flows that waited longest for a packet, at once, so
    /// eviction costs O(log n) per flow rather than a scan per new flow.
    fn evict(&mut self, done: &mut impl FnMut(Flow, EndReason)) {
        let mut by_age: Vec<(i64, u64, FlowKey)> = self
            .open
            .iter()
            .map(|(k, (serial, f))| (f.last_us, *serial, *k))
            .collect();
        let n = (by_age.len() / 8).max(1);
        by_age.select_nth_unstable(n - 1);
        let mut victims = by_age[..n].to_vec();
        victims.sort();
        for (_, _, k) in victims {
            if let Some((_, mut f)) = self.open.remove(&k) {
                if !self.quirks.active_idle_unfinished {
                    f.close_active_period();
                }
                done(*f, EndReason::Evicted);
            }
        }
    }

    /// Writes the flows whose flow timeout has passed at the latest timestamp seen (CICFlowMeter
    /// would write them when the next packet of their key came, or at the end: same numbers),
    /// keeping their direction for such a packet.
    fn expire(&mut self, done: &mut impl FnMut(Flow, EndReason)) {
        let now = self.latest_us;
        let timeout = self.options.flow_timeout_us;
        while let Some(&(start, serial, key)) = self.by_start.front() {
            if now - start <= timeout {
                break;
            }
            self.by_start.pop_front();
            let still_open = self.open.get(&key).is_some_and(|(s, _)| *s == serial);
            if !still_open {
                continue;
            }
            if let Some((_, mut f)) = self.open.remove(&key) {
                if self.quirks.timeout_inherits_direction {
                    self.expired_ends.insert(key, (serial, f.ends));
                    self.expired_order.push_back((serial, key));
                }
                if !self.quirks.active_idle_unfinished {
                    f.close_active_period();
                }
                done(*f, EndReason::Expired);
            }
        }
        // Bounded: past the cap, forget the oldest directions.
        while self.expired_ends.len() > self.options.remembered_directions {
            let Some((serial, key)) = self.expired_order.pop_front() else {
                break;
            };
            if self
                .expired_ends
                .get(&key)
                .is_some_and(|(s, _)| *s == serial)
            {
                self.expired_ends.remove(&key);
            }
        }
        // Entries whose key was reused are stale: drop them from the front as they surface.
        while let Some(&(serial, key)) = self.expired_order.front() {
            if self
                .expired_ends
                .get(&key)
                .is_some_and(|(s, _)| *s == serial)
            {
                break;
            }
            self.expired_order.pop_front();
        }
    }

    /// The capture ended: every open flow, in order of its first packet.
    pub fn finish(&mut self, done: &mut impl FnMut(Flow, EndReason)) {
        let mut flows: Vec<Box<Flow>> = self.open.drain().map(|(_, (_, f))| f).collect();
        flows.sort_by_key(|f| f.first_frame);
        for mut f in flows {
            if !self.quirks.active_idle_unfinished {
                f.close_active_period();
            }
            done(*f, EndReason::EndOfCapture);
        }
        self.by_start.clear();
        self.expired_ends.clear();
        self.expired_order.clear();
    }
}
