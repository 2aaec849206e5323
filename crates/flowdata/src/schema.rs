//! The canonical feature table and the column roles of every supported dialect.
//!
//! One table maps each of the 76 canonical features (the thesis' CIC-DDoS2019 feature set, in raw
//! CIC-DDoS2019 file order, `protocol` first … `idle_min` last) to its header name in each dialect.
//! A model trained on one dataset can therefore score another: every reader emits the canonical
//! snake_case names, never the dialect's header spelling.

use serde::{Deserialize, Serialize};

/// One canonical feature and its header spelling in each dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Canonical snake_case name (the Parquet column name and `FlowFrame::feature_names` entry).
    pub canonical: &'static str,
    /// Header name in CIC-IDS2017 / CIC-DDoS2019 CSVs (after trimming the leading space).
    pub cic_long: &'static str,
    /// Header name in CSE-CIC-IDS2018 CSVs.
    pub cic_short: &'static str,
    /// Header name in CICFlowMeter-V4 CSVs (TII-SSRC-23).
    pub v4: &'static str,
}

macro_rules! features {
    ($(($c:literal, $l:literal, $s:literal, $v:literal)),* $(,)?) => {
        /// The 76 canonical features, in raw CIC-DDoS2019 file order.
        pub const FEATURES: &[FeatureSpec] = &[
            $(FeatureSpec { canonical: $c, cic_long: $l, cic_short: $s, v4: $v }),*
        ];
    };
}

features![
    ("protocol", "Protocol", "Protocol", "Protocol"),
    (
        "flow_duration",
        "Flow Duration",
        "Flow Duration",
        "Flow Duration"
    ),
    (
        "total_fwd_packets",
        "Total Fwd Packets",
        "Tot Fwd Pkts",
        "Total Fwd Packet"
    ),
    (
        "total_bwd_packets",
        "Total Backward Packets",
        "Tot Bwd Pkts",
        "Total Bwd packets"
    ),
    (
        "total_length_fwd_packets",
        "Total Length of Fwd Packets",
        "TotLen Fwd Pkts",
        "Total Length of Fwd Packet"
    ),
    (
        "total_length_bwd_packets",
        "Total Length of Bwd Packets",
        "TotLen Bwd Pkts",
        "Total Length of Bwd Packet"
    ),
    (
        "fwd_packet_length_max",
        "Fwd Packet Length Max",
        "Fwd Pkt Len Max",
        "Fwd Packet Length Max"
    ),
    (
        "fwd_packet_length_min",
        "Fwd Packet Length Min",
        "Fwd Pkt Len Min",
        "Fwd Packet Length Min"
    ),
    (
        "fwd_packet_length_mean",
        "Fwd Packet Length Mean",
        "Fwd Pkt Len Mean",
        "Fwd Packet Length Mean"
    ),
    (
        "fwd_packet_length_std",
        "Fwd Packet Length Std",
        "Fwd Pkt Len Std",
        "Fwd Packet Length Std"
    ),
    (
        "bwd_packet_length_max",
        "Bwd Packet Length Max",
        "Bwd Pkt Len Max",
        "Bwd Packet Length Max"
    ),
    (
        "bwd_packet_length_min",
        "Bwd Packet Length Min",
        "Bwd Pkt Len Min",
        "Bwd Packet Length Min"
    ),
    (
        "bwd_packet_length_mean",
        "Bwd Packet Length Mean",
        "Bwd Pkt Len Mean",
        "Bwd Packet Length Mean"
    ),
    (
        "bwd_packet_length_std",
        "Bwd Packet Length Std",
        "Bwd Pkt Len Std",
        "Bwd Packet Length Std"
    ),
    (
        "flow_bytes_per_s",
        "Flow Bytes/s",
        "Flow Byts/s",
        "Flow Bytes/s"
    ),
    (
        "flow_packets_per_s",
        "Flow Packets/s",
        "Flow Pkts/s",
        "Flow Packets/s"
    ),
    (
        "flow_iat_mean",
        "Flow IAT Mean",
        "Flow IAT Mean",
        "Flow IAT Mean"
    ),
    (
        "flow_iat_std",
        "Flow IAT Std",
        "Flow IAT Std",
        "Flow IAT Std"
    ),
    (
        "flow_iat_max",
        "Flow IAT Max",
        "Flow IAT Max",
        "Flow IAT Max"
    ),
    (
        "flow_iat_min",
        "Flow IAT Min",
        "Flow IAT Min",
        "Flow IAT Min"
    ),
    (
        "fwd_iat_total",
        "Fwd IAT Total",
        "Fwd IAT Tot",
        "Fwd IAT Total"
    ),
    (
        "fwd_iat_mean",
        "Fwd IAT Mean",
        "Fwd IAT Mean",
        "Fwd IAT Mean"
    ),
    ("fwd_iat_std", "Fwd IAT Std", "Fwd IAT Std", "Fwd IAT Std"),
    ("fwd_iat_max", "Fwd IAT Max", "Fwd IAT Max", "Fwd IAT Max"),
    ("fwd_iat_min", "Fwd IAT Min", "Fwd IAT Min", "Fwd IAT Min"),
    (
        "bwd_iat_total",
        "Bwd IAT Total",
        "Bwd IAT Tot",
        "Bwd IAT Total"
    ),
    (
        "bwd_iat_mean",
        "Bwd IAT Mean",
        "Bwd IAT Mean",
        "Bwd IAT Mean"
    ),
    ("bwd_iat_std", "Bwd IAT Std", "Bwd IAT Std", "Bwd IAT Std"),
    ("bwd_iat_max", "Bwd IAT Max", "Bwd IAT Max", "Bwd IAT Max"),
    ("bwd_iat_min", "Bwd IAT Min", "Bwd IAT Min", "Bwd IAT Min"),
    (
        "fwd_psh_flags",
        "Fwd PSH Flags",
        "Fwd PSH Flags",
        "Fwd PSH Flags"
    ),
    (
        "bwd_psh_flags",
        "Bwd PSH Flags",
        "Bwd PSH Flags",
        "Bwd PSH Flags"
    ),
    (
        "fwd_urg_flags",
        "Fwd URG Flags",
        "Fwd URG Flags",
        "Fwd URG Flags"
    ),
    (
        "bwd_urg_flags",
        "Bwd URG Flags",
        "Bwd URG Flags",
        "Bwd URG Flags"
    ),
    (
        "fwd_header_length",
        "Fwd Header Length",
        "Fwd Header Len",
        "Fwd Header Length"
    ),
    (
        "bwd_header_length",
        "Bwd Header Length",
        "Bwd Header Len",
        "Bwd Header Length"
    ),
    (
        "fwd_packets_per_s",
        "Fwd Packets/s",
        "Fwd Pkts/s",
        "Fwd Packets/s"
    ),
    (
        "bwd_packets_per_s",
        "Bwd Packets/s",
        "Bwd Pkts/s",
        "Bwd Packets/s"
    ),
    (
        "packet_length_min",
        "Min Packet Length",
        "Pkt Len Min",
        "Packet Length Min"
    ),
    (
        "packet_length_max",
        "Max Packet Length",
        "Pkt Len Max",
        "Packet Length Max"
    ),
    (
        "packet_length_mean",
        "Packet Length Mean",
        "Pkt Len Mean",
        "Packet Length Mean"
    ),
    (
        "packet_length_std",
        "Packet Length Std",
        "Pkt Len Std",
        "Packet Length Std"
    ),
    (
        "packet_length_variance",
        "Packet Length Variance",
        "Pkt Len Var",
        "Packet Length Variance"
    ),
    (
        "fin_flag_count",
        "FIN Flag Count",
        "FIN Flag Cnt",
        "FIN Flag Count"
    ),
    (
        "syn_flag_count",
        "SYN Flag Count",
        "SYN Flag Cnt",
        "SYN Flag Count"
    ),
    (
        "rst_flag_count",
        "RST Flag Count",
        "RST Flag Cnt",
        "RST Flag Count"
    ),
    (
        "psh_flag_count",
        "PSH Flag Count",
        "PSH Flag Cnt",
        "PSH Flag Count"
    ),
    (
        "ack_flag_count",
        "ACK Flag Count",
        "ACK Flag Cnt",
        "ACK Flag Count"
    ),
    (
        "urg_flag_count",
        "URG Flag Count",
        "URG Flag Cnt",
        "URG Flag Count"
    ),
    (
        "ece_flag_count",
        "ECE Flag Count",
        "ECE Flag Cnt",
        "ECE Flag Count"
    ),
    (
        "down_up_ratio",
        "Down/Up Ratio",
        "Down/Up Ratio",
        "Down/Up Ratio"
    ),
    (
        "average_packet_size",
        "Average Packet Size",
        "Pkt Size Avg",
        "Average Packet Size"
    ),
    (
        "fwd_segment_size_avg",
        "Avg Fwd Segment Size",
        "Fwd Seg Size Avg",
        "Fwd Segment Size Avg"
    ),
    (
        "bwd_segment_size_avg",
        "Avg Bwd Segment Size",
        "Bwd Seg Size Avg",
        "Bwd Segment Size Avg"
    ),
    (
        "fwd_bytes_per_bulk_avg",
        "Fwd Avg Bytes/Bulk",
        "Fwd Byts/b Avg",
        "Fwd Bytes/Bulk Avg"
    ),
    (
        "fwd_packets_per_bulk_avg",
        "Fwd Avg Packets/Bulk",
        "Fwd Pkts/b Avg",
        "Fwd Packet/Bulk Avg"
    ),
    (
        "fwd_bulk_rate_avg",
        "Fwd Avg Bulk Rate",
        "Fwd Blk Rate Avg",
        "Fwd Bulk Rate Avg"
    ),
    (
        "bwd_bytes_per_bulk_avg",
        "Bwd Avg Bytes/Bulk",
        "Bwd Byts/b Avg",
        "Bwd Bytes/Bulk Avg"
    ),
    (
        "bwd_packets_per_bulk_avg",
        "Bwd Avg Packets/Bulk",
        "Bwd Pkts/b Avg",
        "Bwd Packet/Bulk Avg"
    ),
    (
        "bwd_bulk_rate_avg",
        "Bwd Avg Bulk Rate",
        "Bwd Blk Rate Avg",
        "Bwd Bulk Rate Avg"
    ),
    (
        "subflow_fwd_packets",
        "Subflow Fwd Packets",
        "Subflow Fwd Pkts",
        "Subflow Fwd Packets"
    ),
    (
        "subflow_fwd_bytes",
        "Subflow Fwd Bytes",
        "Subflow Fwd Byts",
        "Subflow Fwd Bytes"
    ),
    (
        "subflow_bwd_packets",
        "Subflow Bwd Packets",
        "Subflow Bwd Pkts",
        "Subflow Bwd Packets"
    ),
    (
        "subflow_bwd_bytes",
        "Subflow Bwd Bytes",
        "Subflow Bwd Byts",
        "Subflow Bwd Bytes"
    ),
    (
        "init_win_bytes_fwd",
        "Init_Win_bytes_forward",
        "Init Fwd Win Byts",
        "FWD Init Win Bytes"
    ),
    (
        "init_win_bytes_bwd",
        "Init_Win_bytes_backward",
        "Init Bwd Win Byts",
        "Bwd Init Win Bytes"
    ),
    (
        "act_data_pkt_fwd",
        "act_data_pkt_fwd",
        "Fwd Act Data Pkts",
        "Fwd Act Data Pkts"
    ),
    (
        "min_seg_size_fwd",
        "min_seg_size_forward",
        "Fwd Seg Size Min",
        "Fwd Seg Size Min"
    ),
    ("active_mean", "Active Mean", "Active Mean", "Active Mean"),
    ("active_std", "Active Std", "Active Std", "Active Std"),
    ("active_max", "Active Max", "Active Max", "Active Max"),
    ("active_min", "Active Min", "Active Min", "Active Min"),
    ("idle_mean", "Idle Mean", "Idle Mean", "Idle Mean"),
    ("idle_std", "Idle Std", "Idle Std", "Idle Std"),
    ("idle_max", "Idle Max", "Idle Max", "Idle Max"),
    ("idle_min", "Idle Min", "Idle Min", "Idle Min"),
];

/// Number of canonical features (76).
pub const N_FEATURES: usize = 76;

/// Canonical names of all 76 features, in canonical order.
pub fn canonical_names() -> Vec<&'static str> {
    FEATURES.iter().map(|f| f.canonical).collect()
}

/// Index of a canonical feature by its snake_case name.
pub fn canonical_index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.canonical == name)
}

/// Identifier columns: they identify a flow (and leak its label), so they never become features.
/// Compared after trimming, case-insensitively. The empty name is the unnamed pandas index.
pub const IDENTIFIER_COLUMNS: &[&str] = &[
    "",
    "Unnamed: 0",
    "Flow ID",
    "Source IP",
    "Src IP",
    "Destination IP",
    "Dst IP",
    "Source Port",
    "Src Port",
    "Destination Port",
    "Dst Port",
    "Timestamp",
    "SimillarHTTP",
    "Inbound",
];

/// Columns the thesis drops although they are flow statistics: `CWE Flag Count` (CIC) and its
/// CICFlowMeter-V4 counterpart `CWR Flag Count`.
pub const THESIS_DROPPED_COLUMNS: &[&str] = &["CWE Flag Count", "CWR Flag Count", "CWE Flag Cnt"];

/// A CSV header dialect: how a CICFlowMeter version spells the same features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// CIC-IDS2017 / CIC-DDoS2019 long names with leading spaces (` Total Fwd Packets`).
    CicLong,
    /// CSE-CIC-IDS2018 short names (`Tot Fwd Pkts`, `Flow Byts/s`).
    CicShort,
    /// CICFlowMeter-V4 names as in TII-SSRC-23 (`Total Fwd Packet`, `Total Bwd packets`).
    CicFlowMeterV4,
}

impl Dialect {
    /// All dialects, in detection-priority order.
    pub const ALL: [Dialect; 3] = [Dialect::CicLong, Dialect::CicShort, Dialect::CicFlowMeterV4];

    /// Stable name used in reports, manifests and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::CicLong => "cic-long",
            Dialect::CicShort => "cic-short",
            Dialect::CicFlowMeterV4 => "cicflowmeter-v4",
        }
    }

    /// Parse a dialect name; also accepts the dataset names that use it.
    pub fn from_name(name: &str) -> Option<Dialect> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cic-long" | "cic-ddos2019" | "cic-ids2017" | "cicddos2019" | "cicids2017" => {
                Some(Dialect::CicLong)
            }
            "cic-short" | "cse-cic-ids2018" | "cic-ids2018" | "ids2018" => Some(Dialect::CicShort),
            "cicflowmeter-v4" | "v4" | "tii-ssrc-23" | "tii" => Some(Dialect::CicFlowMeterV4),
            _ => None,
        }
    }

    /// The header spelling of a canonical feature in this dialect.
    pub fn header_name(self, f: &FeatureSpec) -> &'static str {
        match self {
            Dialect::CicLong => f.cic_long,
            Dialect::CicShort => f.cic_short,
            Dialect::CicFlowMeterV4 => f.v4,
        }
    }

    /// The dataset manifest used for labels when none is given.
    pub fn default_dataset(self) -> &'static str {
        match self {
            Dialect::CicLong => "cic-ddos2019",
            Dialect::CicShort => "cse-cic-ids2018",
            Dialect::CicFlowMeterV4 => "tii-ssrc-23",
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Normalise a header name for matching: trim and lower-case.
pub(crate) fn norm(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

/// Count how many of `header`'s names are this dialect's *distinctive* feature names (names that
/// differ from at least one other dialect), to decide between dialects.
pub(crate) fn dialect_score(dialect: Dialect, header: &[String]) -> usize {
    let names: std::collections::HashSet<String> = header.iter().map(|h| norm(h)).collect();
    FEATURES
        .iter()
        .filter(|f| {
            let own = norm(dialect.header_name(f));
            let distinctive = Dialect::ALL
                .iter()
                .any(|d| *d != dialect && norm(d.header_name(f)) != own);
            distinctive && names.contains(&own)
        })
        .count()
}

/// Detect the dialect of a header; `None` if no canonical feature name is recognised at all.
pub fn detect_dialect(header: &[String]) -> Option<Dialect> {
    let mut best: Option<(Dialect, usize)> = None;
    for d in Dialect::ALL {
        let s = dialect_score(d, header);
        let better = match best {
            None => true,
            Some((_, b)) => s > b,
        };
        if s > 0 && better {
            best = Some((d, s));
        }
    }
    if let Some((d, _)) = best {
        return Some(d);
    }
    // Only names shared by all dialects (e.g. `Flow Duration`, `Protocol`): call it the long dialect.
    let any = header
        .iter()
        .any(|h| FEATURES.iter().any(|f| norm(f.cic_long) == norm(h)));
    any.then_some(Dialect::CicLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_76_unique_names() {
        assert_eq!(FEATURES.len(), N_FEATURES);
        let mut c = canonical_names();
        c.sort();
        c.dedup();
        assert_eq!(c.len(), N_FEATURES);
        assert_eq!(FEATURES[0].canonical, "protocol");
        assert_eq!(FEATURES[75].canonical, "idle_min");
    }

    #[test]
    fn detects_dialects() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            detect_dialect(&h(&[" Total Fwd Packets", " Label"])),
            Some(Dialect::CicLong)
        );
        assert_eq!(
            detect_dialect(&h(&["Tot Fwd Pkts", "Label"])),
            Some(Dialect::CicShort)
        );
        assert_eq!(
            detect_dialect(&h(&["Total Fwd Packet", "Label"])),
            Some(Dialect::CicFlowMeterV4)
        );
        assert_eq!(detect_dialect(&h(&["foo", "Label"])), None);
    }
}

#[cfg(test)]
mod table_file {
    /// `datasets/features.tsv` documents [`super::FEATURES`]; keep them equal.
    #[test]
    fn features_tsv_matches_the_table() {
        let tsv = include_str!("../../../datasets/features.tsv");
        let rows: Vec<Vec<&str>> = tsv
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(rows.len(), super::FEATURES.len());
        for (i, (r, f)) in rows.iter().zip(super::FEATURES).enumerate() {
            assert_eq!(
                r[..],
                [
                    i.to_string().as_str(),
                    f.canonical,
                    f.cic_long,
                    f.cic_short,
                    f.v4
                ]
            );
        }
    }

    #[test]
    fn no_header_name_maps_to_two_features() {
        let mut seen = std::collections::HashMap::new();
        for (i, f) in super::FEATURES.iter().enumerate() {
            for n in [f.cic_long, f.cic_short, f.v4] {
                let prev = seen.insert(super::norm(n), i);
                assert!(prev.is_none() || prev == Some(i), "{n}");
            }
        }
    }
}
