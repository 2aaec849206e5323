//! A finished flow as CICFlowMeter V3 writes it: its 85 columns, each rule cited from
//! docs/CICFLOWMETER_V3.md (§6 gives every column; `BasicFlow.dumpFlowBasedFeatures` in the
//! jar), printed the way Java prints them.
use crate::flow::{Bulk, Flow};
use crate::packet::flags;
use crate::quirks::Quirks;

/// One cell: V3 prints integers (`long`) and doubles (`Double.toString`) differently.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A Java long / int.
    Int(i64),
    /// A Java double.
    Num(f64),
    /// Text (Flow ID, addresses, timestamp, label).
    Text(String),
}

impl Cell {
    /// The value as a number (text: NaN).
    pub fn as_f64(&self) -> f64 {
        match self {
            Cell::Int(v) => *v as f64,
            Cell::Num(v) => *v,
            Cell::Text(_) => f64::NAN,
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Int(v) => write!(f, "{v}"),
            Cell::Num(v) => f.write_str(&java_double(*v)),
            Cell::Text(s) => f.write_str(s),
        }
    }
}

/// The header line of V3's `_ISCX.csv` files (85 columns; leading spaces and the duplicated
/// ` Fwd Header Length` as V3 writes them).
pub const V3_HEADER: [&str; 85] = [
    "Flow ID",
    " Source IP",
    " Source Port",
    " Destination IP",
    " Destination Port",
    " Protocol",
    " Timestamp",
    " Flow Duration",
    " Total Fwd Packets",
    " Total Backward Packets",
    "Total Length of Fwd Packets",
    " Total Length of Bwd Packets",
    " Fwd Packet Length Max",
    " Fwd Packet Length Min",
    " Fwd Packet Length Mean",
    " Fwd Packet Length Std",
    "Bwd Packet Length Max",
    " Bwd Packet Length Min",
    " Bwd Packet Length Mean",
    " Bwd Packet Length Std",
    "Flow Bytes/s",
    " Flow Packets/s",
    " Flow IAT Mean",
    " Flow IAT Std",
    " Flow IAT Max",
    " Flow IAT Min",
    "Fwd IAT Total",
    " Fwd IAT Mean",
    " Fwd IAT Std",
    " Fwd IAT Max",
    " Fwd IAT Min",
    "Bwd IAT Total",
    " Bwd IAT Mean",
    " Bwd IAT Std",
    " Bwd IAT Max",
    " Bwd IAT Min",
    "Fwd PSH Flags",
    " Bwd PSH Flags",
    " Fwd URG Flags",
    " Bwd URG Flags",
    " Fwd Header Length",
    " Bwd Header Length",
    "Fwd Packets/s",
    " Bwd Packets/s",
    " Min Packet Length",
    " Max Packet Length",
    " Packet Length Mean",
    " Packet Length Std",
    " Packet Length Variance",
    "FIN Flag Count",
    " SYN Flag Count",
    " RST Flag Count",
    " PSH Flag Count",
    " ACK Flag Count",
    " URG Flag Count",
    " CWE Flag Count",
    " ECE Flag Count",
    " Down/Up Ratio",
    " Average Packet Size",
    " Avg Fwd Segment Size",
    " Avg Bwd Segment Size",
    " Fwd Header Length",
    "Fwd Avg Bytes/Bulk",
    " Fwd Avg Packets/Bulk",
    " Fwd Avg Bulk Rate",
    " Bwd Avg Bytes/Bulk",
    " Bwd Avg Packets/Bulk",
    "Bwd Avg Bulk Rate",
    "Subflow Fwd Packets",
    " Subflow Fwd Bytes",
    " Subflow Bwd Packets",
    " Subflow Bwd Bytes",
    "Init_Win_bytes_forward",
    " Init_Win_bytes_backward",
    " act_data_pkt_fwd",
    " min_seg_size_forward",
    "Active Mean",
    " Active Std",
    " Active Max",
    " Active Min",
    "Idle Mean",
    " Idle Std",
    " Idle Max",
    " Idle Min",
    " Label",
];

/// The V3 column (0-based) of each of flowdata's 76 canonical features, in canonical order
/// (docs/CICFLOWMETER_V3.md §9; the flag features map by header name, whatever V3 put under it).
pub const CANONICAL_COLUMNS: [usize; 76] = [
    5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
    56, 57, 58, 59, 60, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80,
    81, 82, 83,
];

/// V3's flag columns 50–57 hold the first packet's flags in the iteration order of a Java
/// `HashMap` of their names, not in header order (§6): RST, PSH, ECE, SYN, ACK, FIN, URG, CWR.
const V3_FLAG_COLUMNS: [u8; 8] = [
    flags::RST,
    flags::PSH,
    flags::ECE,
    flags::SYN,
    flags::ACK,
    flags::FIN,
    flags::URG,
    flags::CWR,
];

/// Options of the written row that do not change the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordOptions {
    /// Seconds east of UTC for the Timestamp column (V3 prints in the JVM's time zone; the
    /// reference CSVs here were made with UTC).
    pub utc_offset_s: i32,
}

/// Flag bits in the order of V3's header (FIN, SYN, RST, PSH, ACK, URG, CWE, ECE): what the
/// corrected columns hold (CWE is read as CWR, the bit CICFlowMeter means).
const NAMED_FLAG_COLUMNS: [u8; 8] = [
    flags::FIN,
    flags::SYN,
    flags::RST,
    flags::PSH,
    flags::ACK,
    flags::URG,
    flags::CWR,
    flags::ECE,
];

/// The 85 cells of a flow in V3's columns, with V3's values ([`Quirks::V3`]).
pub fn v3_row(f: &Flow, options: RecordOptions) -> Vec<Cell> {
    flow_row(f, options, &Quirks::V3)
}

/// The 85 cells of a flow in V3's columns, computed as `quirks` says.
///
/// Each column follows the member of CICFlowMeter's `cic.cs.unb.ca.ifm.lib.BasicFlow` that
/// `dumpFlowBasedFeatures` prints (V3, 2017-10; docs/CICFLOWMETER_V3.md §6 gives every rule,
/// §8 what each switch of `quirks` changes):
///
/// | columns | `BasicFlow` member |
/// |---|---|
/// | Flow ID, Source/Destination IP and Port, Protocol | `getFlowId`, `getSrc`, `getSrcPort`, `getDst`, `getDstPort`, `getProtocol` (set by `firstPacket`) |
/// | Timestamp, Flow Duration | `getTimeStamp`; `flowLastSeen − flowStartTime` |
/// | Total Fwd/Backward Packets, Total Length of Fwd/Bwd Packets, Fwd/Bwd Packet Length Max/Min/Mean/Std | `fwdPktStats`, `bwdPktStats` (`SummaryStatistics`: `getN`, `getSum`, `getMax`, `getMin`, `getMean`, `getStandardDeviation`) |
/// | Flow Bytes/s, Flow Packets/s | `(forwardBytes + backwardBytes) / secs`, `packetCount() / secs` |
/// | Flow IAT, Fwd IAT, Bwd IAT | `flowIAT`, `forwardIAT`, `backwardIAT` (updated in `addPacket`) |
/// | Fwd/Bwd PSH Flags, Fwd/Bwd URG Flags | `fPSH_cnt`, `bPSH_cnt`, `fURG_cnt`, `bURG_cnt` (`checkFlags`) |
/// | Fwd/Bwd Header Length (and the copy at #61) | `fHeaderBytes`, `bHeaderBytes` |
/// | Fwd/Bwd Packets/s | `getfPktsPerSecond`, `getbPktsPerSecond` |
/// | Min/Max Packet Length, Packet Length Mean/Std/Variance | `flowLengthStats` |
/// | FIN … ECE Flag Count | `flagCounts` (a `HashMap` of flag names, printed in its iteration order) |
/// | Down/Up Ratio, Average Packet Size, Avg Fwd/Bwd Segment Size | `getDownUpRatio`, `getAvgPacketSize`, `fAvgSegmentSize`, `bAvgSegmentSize` |
/// | Fwd/Bwd Avg Bytes/Bulk, Packets/Bulk, Bulk Rate | `fAvgBytesPerBulk`, `fAvgPacketsPerBulk`, `fAvgBulkRate`, `bAvg…` (`updateForwardBulk`, `updateBackwardBulk`) |
/// | Subflow Fwd/Bwd Packets/Bytes | `getSflow_fpackets`, `getSflow_fbytes`, `getSflow_bpackets`, `getSflow_bbytes` (`detectUpdateSubflows`) |
/// | Init_Win_bytes_forward/backward, act_data_pkt_fwd, min_seg_size_forward | `getInit_Win_bytes_forward`, `getInit_Win_bytes_backward`, `getAct_data_pkt_forward`, `getmin_seg_size_forward` |
/// | Active, Idle Mean/Std/Max/Min | `getActiveMean`/`Std`/`Max`/`Min`, `getIdleMean`/`Std`/`Max`/`Min` over `flowActive`, `flowIdle` (`updateActiveIdleTime`) |
/// | Label | `getLabel` |
pub fn flow_row(f: &Flow, options: RecordOptions, q: &Quirks) -> Vec<Cell> {
    let mut c: Vec<Cell> = Vec::with_capacity(85);
    let dur = f.last_us - f.start_us;
    let secs = dur as f64 / 1e6;
    let n_fwd = f.fwd.count() as i64;
    let n_bwd = f.bwd.count() as i64;
    c.push(Cell::Text(f.key.flow_id()));
    c.push(Cell::Text(f.ends.src.to_string()));
    c.push(Cell::Int(i64::from(f.ends.src_port)));
    c.push(Cell::Text(f.ends.dst.to_string()));
    c.push(Cell::Int(i64::from(f.ends.dst_port)));
    c.push(Cell::Int(i64::from(f.key.protocol)));
    c.push(Cell::Text(timestamp_12h(f.start_us, options.utc_offset_s)));
    c.push(Cell::Int(dur));
    c.push(Cell::Int(n_fwd));
    c.push(Cell::Int(n_bwd));
    c.push(Cell::Num(f.fwd.sum()));
    c.push(Cell::Num(f.bwd.sum()));
    for s in [&f.fwd, &f.bwd] {
        // An empty direction prints integer zeros (`D/0`).
        push_or_zeros(
            &mut c,
            s.count() > 0,
            &[s.max(), s.min(), s.mean(), s.std()],
        );
    }
    // V3 does not guard the rates: a zero-length flow gives Infinity or NaN.
    let rate = |n: f64| {
        if dur == 0 && !q.zero_duration_rates_infinite {
            0.0
        } else {
            n / secs
        }
    };
    c.push(Cell::Num(rate((f.fwd_bytes + f.bwd_bytes) as f64)));
    c.push(Cell::Num(rate(f.packets() as f64)));
    let iat = &f.flow_iat;
    c.extend([iat.mean(), iat.std(), iat.max(), iat.min()].map(Cell::Num));
    for (n, s) in [(n_fwd, &f.fwd_iat), (n_bwd, &f.bwd_iat)] {
        push_or_zeros(
            &mut c,
            n > 1,
            &[s.sum(), s.mean(), s.std(), s.max(), s.min()],
        );
    }
    if q.flags_of_first_packet {
        c.push(Cell::Int(i64::from(f.first_has(flags::PSH))));
        c.push(Cell::Int(0));
        c.push(Cell::Int(i64::from(f.first_has(flags::URG))));
        c.push(Cell::Int(0));
    } else {
        c.extend([f.fwd_psh, f.bwd_psh, f.fwd_urg, f.bwd_urg].map(|n| Cell::Int(i64::from(n))));
    }
    c.push(Cell::Int(f.fwd_header));
    c.push(Cell::Int(f.bwd_header));
    let per_s = |n: i64| if dur > 0 { n as f64 / secs } else { 0.0 };
    c.push(Cell::Num(per_s(n_fwd)));
    c.push(Cell::Num(per_s(n_bwd)));
    let l = &f.lengths;
    c.extend([l.min(), l.max(), l.mean(), l.std(), l.variance()].map(Cell::Num));
    let order = if q.flag_columns_permuted {
        V3_FLAG_COLUMNS
    } else {
        NAMED_FLAG_COLUMNS
    };
    for flag in order {
        let n = if q.flags_of_first_packet {
            u32::from(f.first_has(flag))
        } else {
            f.flag_counts[flag.trailing_zeros() as usize]
        };
        c.push(Cell::Int(i64::from(n)));
    }
    c.push(Cell::Num(match (n_fwd, q.down_up_integer_division) {
        (0, _) => 0.0,
        (_, true) => (n_bwd / n_fwd) as f64,
        (_, false) => n_bwd as f64 / n_fwd as f64,
    }));
    c.push(Cell::Num(l.sum() / f.packets() as f64));
    c.push(Cell::Num(if n_fwd > 0 {
        f.fwd.sum() / n_fwd as f64
    } else {
        0.0
    }));
    c.push(Cell::Num(if n_bwd > 0 {
        f.bwd.sum() / n_bwd as f64
    } else {
        0.0
    }));
    c.push(Cell::Int(f.fwd_header));
    if q.bulk_zero {
        // V3 runs its bulk detection on the first packet only.
        c.extend((0..6).map(|_| Cell::Int(0)));
    } else {
        for b in [&f.fwd_bulk, &f.bwd_bulk] {
            c.extend(bulk_cells(b));
        }
    }
    if q.subflow_is_total {
        c.extend([n_fwd, f.fwd_bytes, n_bwd, f.bwd_bytes].map(Cell::Int));
    } else {
        let per = |v: i64| Cell::Num(v as f64 / f.subflows as f64);
        c.extend([per(n_fwd), per(f.fwd_bytes), per(n_bwd), per(f.bwd_bytes)]);
    }
    c.push(Cell::Int(i64::from(f.init_win_fwd)));
    c.push(Cell::Int(i64::from(if q.init_win_bwd_last {
        f.init_win_bwd
    } else {
        f.first_win_bwd
    })));
    c.push(Cell::Int(
        f.act_data_fwd + i64::from(!q.act_data_skips_first && f.first_payload >= 1),
    ));
    c.push(Cell::Int(f.min_seg_fwd));
    for s in [&f.active, &f.idle] {
        push_or_zeros(
            &mut c,
            s.count() > 0,
            &[s.mean(), s.std(), s.max(), s.min()],
        );
    }
    // V3 labels flows of a CTU-13 botnet host `BOTNET`; everything else `BENIGN`.
    let botnet = ["147.32.84.165"]
        .iter()
        .any(|ip| f.ends.src.to_string() == *ip || f.ends.dst.to_string() == *ip);
    c.push(Cell::Text(if botnet { "BOTNET" } else { "BENIGN" }.into()));
    c
}

/// Average bytes and packets per bulk and bytes per second of bulk, 0 without a bulk.
fn bulk_cells(b: &Bulk) -> [Cell; 3] {
    if b.bulks == 0 {
        return [Cell::Num(0.0), Cell::Num(0.0), Cell::Num(0.0)];
    }
    let rate = if b.duration_us > 0 {
        b.bytes as f64 / (b.duration_us as f64 / 1e6)
    } else {
        0.0
    };
    [
        Cell::Num(b.bytes as f64 / b.bulks as f64),
        Cell::Num(b.packets as f64 / b.bulks as f64),
        Cell::Num(rate),
    ]
}

/// Statistics as doubles when `present`, else V3's integer zeros.
fn push_or_zeros(c: &mut Vec<Cell>, present: bool, values: &[f64]) {
    if present {
        c.extend(values.iter().map(|&v| Cell::Num(v)));
    } else {
        c.extend(values.iter().map(|_| Cell::Int(0)));
    }
}

/// The 76 canonical features of a V3 row, in flowdata's order (`flowdata::FEATURES`).
pub fn canonical_features(row: &[Cell]) -> [f64; 76] {
    CANONICAL_COLUMNS.map(|col| row[col].as_f64())
}

/// `java.lang.Double.toString`: shortest round-trip digits; plain notation with at least one
/// fractional digit for 1e-3 ≤ |x| < 1e7, else `d.dddE±n`.
///
/// ```
/// use flowmeter::java_double;
/// assert_eq!(java_double(5.0), "5.0");
/// assert_eq!(java_double(19266997.0), "1.9266997E7");
/// assert_eq!(java_double(0.00015), "1.5E-4");
/// assert_eq!(java_double(33.333333333333336), "33.333333333333336");
/// assert_eq!(java_double(f64::INFINITY), "Infinity");
/// ```
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "1.9266997e7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        // Value = 0.d1d2… × 10^(exp + 1).
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{}E{}", &digits[..1], rest, exp)
    }
}

/// V3's timestamp: `dd/MM/yyyy hh:mm:ss` of the flow start (milliseconds, truncated), a
/// 12-hour clock without AM/PM, at `utc_offset_s` east of UTC.
pub fn timestamp_12h(us: i64, utc_offset_s: i32) -> String {
    let ms = us / 1000; // Java long division truncates toward zero
    let secs = ms.div_euclid(1000) + i64::from(utc_offset_s);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    format!("{d:02}/{m:02}/{y:04} {h12:02}:{mi:02}:{s:02}")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
