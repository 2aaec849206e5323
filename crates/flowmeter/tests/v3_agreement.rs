//! `cicflowmeter` mode against the genuine CICFlowMeter V3 jar on every real capture in
//! `../shared/pcaps` (its CSVs in `generated/v3/`, made with TZ=UTC): flows are matched by
//! Flow ID, start timestamp and source, then compared cell by cell (numbers within a relative
//! 1e-6, text exactly). Goal (issue #24): ≥ 99 % of V3's flows matched and ≥ 99 % of cells equal
//! on every capture.
//!
//! The per-capture and per-feature tables of docs/FLOWMETER_AGREEMENT.md are this test's
//! numbers: it fails when the file differs from what it computed, and
//! `FLOWXAI_WRITE_DOCS=1 cargo test -p flowmeter --test v3_agreement` rewrites it.
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flowmeter::{CANONICAL_COLUMNS, V3_HEADER};

fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps")
}

/// Every capture listed in STATS.txt with its V3 CSV.
fn corpus() -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(pcaps().join("STATS.txt")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("PCAP "))
        .map(|rel| {
            let rel = rel.trim();
            let (dir, name) = rel.rsplit_once('/').unwrap();
            let staged = if name.ends_with(".pcap") {
                name.to_string()
            } else {
                format!("{name}.pcap")
            };
            let csv = pcaps()
                .join("generated/v3")
                .join(dir.replace('/', "_"))
                .join(format!("{staged}_ISCX.csv"));
            (rel.to_string(), csv)
        })
        .collect()
}

/// V3 counts Ethernet padding as payload in some Java runs and not in others
/// (docs/CICFLOWMETER_V3.md §2.5); these reference CSVs were made in runs that did not.
const PADDING_STRIPPED: [&str; 5] = [
    "Win7_eternalblue_scan",
    "latria_cicflowmetersample",
    "synscan",
    "amp.UDP.bacnet",
    "pkt.TCP.synflood.spoofed",
];

#[test]
fn cicflowmeter_mode_agrees_with_the_v3_jar_on_every_capture() {
    let mut failures = Vec::new();
    let (mut all_cells, mut all_equal, mut all_flows, mut all_matched) = (0, 0, 0, 0);
    let mut rows = Vec::new();
    for (rel, csv) in corpus() {
        let stripped = PADDING_STRIPPED.iter().any(|p| rel.contains(p));
        let a = common::agreement(&pcaps().join(&rel), &csv, !stripped);
        rows.push((rel.clone(), stripped, a.clone()));
        let flows_pct = if a.v3_flows == 0 {
            100.0
        } else {
            100.0 * a.matched as f64 / a.v3_flows as f64
        };
        let cells_pct = if a.cells == 0 {
            100.0
        } else {
            100.0 * a.equal as f64 / a.cells as f64
        };
        let worst: Vec<String> = a
            .by_column
            .iter()
            .map(|(c, n)| format!("{}: {n}", V3_HEADER[*c].trim()))
            .collect();
        eprintln!(
            "{rel}: V3 {} flows, ours {}, matched {:.2} %, cells equal {:.3} % {}",
            a.v3_flows,
            a.ours,
            flows_pct,
            cells_pct,
            if worst.is_empty() {
                String::new()
            } else {
                format!("[{}]", worst.join(", "))
            }
        );
        if flows_pct < 99.0 || cells_pct < 99.0 {
            failures.push(format!(
                "{rel}: flows {flows_pct:.2} %, cells {cells_pct:.3} %"
            ));
        }
        all_cells += a.cells;
        all_equal += a.equal;
        all_flows += a.v3_flows;
        all_matched += a.matched;
    }
    eprintln!(
        "all: {all_matched} of {all_flows} V3 flows matched, {all_equal} of {all_cells} cells equal"
    );
    assert!(failures.is_empty(), "below 99 %:\n{}", failures.join("\n"));

    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FLOWMETER_AGREEMENT.md");
    let text = agreement_doc(&rows);
    if std::env::var("FLOWXAI_WRITE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&doc, &text).unwrap();
    } else {
        let on_disk = std::fs::read_to_string(&doc).unwrap_or_default();
        assert!(
            on_disk == text,
            "docs/FLOWMETER_AGREEMENT.md ({}) is not what this run computed: rewrite it with \
             FLOWXAI_WRITE_DOCS=1 cargo test -p flowmeter --test v3_agreement",
            doc.display()
        );
    }
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else if part == whole {
        "100".into()
    } else {
        // Never rounds up to 100.
        format!(
            "{:.3}",
            (100.0 * part as f64 / whole as f64 * 1000.0).floor() / 1000.0
        )
    }
}

/// docs/FLOWMETER_AGREEMENT.md: per capture, per feature, and every (capture, column) pair
/// that is not 100 % equal.
fn agreement_doc(rows: &[(String, bool, common::Agreement)]) -> String {
    let name = |c: usize| V3_HEADER[c].trim().to_string();
    let canonical = |c: usize| {
        CANONICAL_COLUMNS
            .iter()
            .position(|&k| k == c)
            .map(|i| format!("`{}`", flowdata::FEATURES[i].canonical))
            .or_else(|| {
                (0..c)
                    .find(|&k| V3_HEADER[k].trim() == V3_HEADER[c].trim())
                    .map(|k| format!("(a copy of #{k})"))
            })
            .unwrap_or_else(|| "(identifier)".into())
    };
    let mut d = String::new();
    d.push_str(
        "# Flow meter agreement with CICFlowMeter V3, per capture and per feature\n\n\
         Generated by `FLOWXAI_WRITE_DOCS=1 cargo test -p flowmeter --test v3_agreement` (the \
         test fails when this file differs from what it computes): `cicflowmeter` mode (what \
         `cargo xtask extract` runs by default) against the CSVs the genuine V3 jar wrote from each real capture in \
         `../shared/pcaps` (`generated/v3/`, TZ=UTC). Flows are matched by Flow ID (address/port \
         pair and protocol), start timestamp and source; cells are equal when the text is equal \
         or both are numbers within a relative 1e-6. Timestamps are compared at V3's \
         resolution (its printed form, to the second). Captures marked \u{2020} were compared \
         with padding-as-payload off: V3 counts Ethernet padding as payload in some runs and \
         not in others, and the reference CSVs of those were made in runs that did not \
         (docs/CICFLOWMETER_V3.md \u{a7}2.5). Why cells differ where they do: \
         docs/CICFLOWMETER_V3.md \u{a7}2.6 and \u{a7}11.\n\n",
    );
    let (mut flows, mut matched, mut cells, mut equal) = (0, 0, 0, 0);
    for (_, _, a) in rows {
        flows += a.v3_flows;
        matched += a.matched;
        cells += a.cells;
        equal += a.equal;
    }
    let _ = writeln!(
        d,
        "All {} captures: {matched} of {flows} V3 flows matched ({} %), {equal} of {cells} \
         cells equal ({} %).\n",
        rows.len(),
        percent(matched, flows),
        percent(equal, cells)
    );
    d.push_str("## Per capture\n\n");
    d.push_str(
        "| capture | V3 flows | our flows | matched | matched % | cells compared | cells equal % | columns not equal |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (rel, stripped, a) in rows {
        let differing: Vec<String> = a
            .by_column
            .iter()
            .map(|(c, n)| format!("{} [#{c}] ({n})", name(*c)))
            .collect();
        let _ = writeln!(
            d,
            "| `{rel}`{} | {} | {} | {} | {} | {} | {} | {} |",
            if *stripped { " \u{2020}" } else { "" },
            a.v3_flows,
            a.ours,
            a.matched,
            percent(a.matched, a.v3_flows),
            a.cells,
            percent(a.equal, a.cells),
            if differing.is_empty() {
                "–".into()
            } else {
                differing.join(", ")
            }
        );
    }
    d.push_str(
        "\n## Per feature\n\nEach of V3's 85 columns over every matched flow of every capture, \
         with the canonical feature it becomes (`flowdata::FEATURES`).\n\n\
         | # | V3 column | canonical feature | cells compared | equal | equal % | captures below 100 % |\n\
         |---:|---|---|---:|---:|---:|---|\n",
    );
    for c in 0..V3_HEADER.len() {
        let compared: usize = rows.iter().map(|(_, _, a)| a.matched).sum();
        let differing: usize = rows
            .iter()
            .map(|(_, _, a)| a.by_column.get(&c).copied().unwrap_or(0))
            .sum();
        let below: Vec<String> = rows
            .iter()
            .filter(|(_, _, a)| a.by_column.contains_key(&c))
            .map(|(rel, _, _)| format!("`{rel}`"))
            .collect();
        let _ = writeln!(
            d,
            "| {c} | {} | {} | {compared} | {} | {} | {} |",
            name(c),
            canonical(c),
            compared - differing,
            percent(compared - differing, compared),
            if below.is_empty() {
                "–".into()
            } else {
                below.join(", ")
            }
        );
    }
    d.push_str("\n## Every (capture, column) pair below 100 %\n\n");
    let mut pairs: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for (rel, _, a) in rows {
        for (c, n) in &a.by_column {
            pairs.insert((rel.clone(), *c), *n);
        }
    }
    if pairs.is_empty() {
        d.push_str("None: every feature of every capture is 100 % equal.\n");
    } else {
        d.push_str(
            "Every other entry of the capture \u{d7} feature matrix is 100 %.\n\n\
             | capture | # | V3 column | cells not equal | of | equal % |\n|---|---:|---|---:|---:|---:|\n",
        );
        for ((rel, c), n) in &pairs {
            let m = rows
                .iter()
                .find(|(r, _, _)| r == rel)
                .map_or(0, |(_, _, a)| a.matched);
            let _ = writeln!(
                d,
                "| `{rel}` | {c} | {} | {n} | {m} | {} |",
                name(*c),
                percent(m - n, m)
            );
        }
    }
    d
}
