//! Random corruption of real lines of every dataset's samples never panics and every line is
//! accounted for: rows read = kept + Σ rejected, on 5,000+ generated files.

use std::path::PathBuf;

use flowdata::{read_csv, InvalidPolicy, ReadOptions};
use proptest::prelude::*;

/// Real files of the three datasets (three header dialects): CIC-DDoS2019, CSE-CIC-IDS2018 and
/// TII-SSRC-23.
const SAMPLES: [&str; 3] = [
    "cic-ddos2019/raw-heads/DrDoS_NTP.csv",
    "cse-cic-ids2018/ids2018_sample.csv",
    "tii-ssrc-23/10lines.csv",
];
const LINES: usize = 40;

fn sample_lines(which: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets")
        .join(SAMPLES[which]);
    let bytes = std::fs::read(p).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect();
    let header = lines.remove(0);
    // Short samples repeat their lines so every corruption index has a line to hit.
    let real = lines.len();
    let lines = (0..LINES).map(|i| lines[i % real].clone()).collect();
    (header, lines)
}

#[derive(Debug, Clone)]
enum Corruption {
    Flip {
        line: usize,
        at: usize,
        byte: u8,
    },
    Delete {
        line: usize,
        at: usize,
        len: usize,
    },
    Cut {
        line: usize,
        at: usize,
    },
    Insert {
        line: usize,
        at: usize,
        text: Vec<u8>,
    },
    DuplicateHeader {
        line: usize,
    },
    Crlf {
        line: usize,
    },
    /// Replace the `cell`-th comma-separated cell of a line with random bytes.
    Cell {
        line: usize,
        cell: usize,
        bytes: Vec<u8>,
    },
    /// Repeat a line's bytes `times` times (lines past the line cap).
    Stretch {
        line: usize,
        times: usize,
    },
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let tokens = prop::sample::select(vec![
        b"Infinity".to_vec(),
        b"-inf".to_vec(),
        b"NaN".to_vec(),
        b",".to_vec(),
        b"\"".to_vec(),
        b"\n".to_vec(),
        b"\r\n".to_vec(),
        b"\xff\xfe".to_vec(),
        b"1e999".to_vec(),
        b"-".to_vec(),
        b"".to_vec(),
    ]);
    prop_oneof![
        (0..40usize, 0..2000usize, any::<u8>()).prop_map(|(line, at, byte)| Corruption::Flip {
            line,
            at,
            byte
        }),
        (0..40usize, 0..2000usize, 0..50usize).prop_map(|(line, at, len)| Corruption::Delete {
            line,
            at,
            len
        }),
        (0..40usize, 0..2000usize).prop_map(|(line, at)| Corruption::Cut { line, at }),
        (0..40usize, 0..2000usize, tokens).prop_map(|(line, at, text)| Corruption::Insert {
            line,
            at,
            text
        }),
        (0..40usize).prop_map(|line| Corruption::DuplicateHeader { line }),
        (0..40usize).prop_map(|line| Corruption::Crlf { line }),
        (
            0..40usize,
            0..90usize,
            prop::collection::vec(any::<u8>(), 0..12)
        )
            .prop_map(|(line, cell, bytes)| Corruption::Cell { line, cell, bytes }),
        (0..40usize, 2..6usize).prop_map(|(line, times)| Corruption::Stretch { line, times }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]
    #[test]
    fn corrupted_lines_never_panic_and_are_accounted(
        which in 0..SAMPLES.len(),
        cs in prop::collection::vec(corruption(), 1..12),
        keep in any::<bool>(),
        trailing_newline in any::<bool>(),
        block_bytes in prop::sample::select(vec![512usize, 4096, 65536]),
        max_line_bytes in prop::sample::select(vec![700usize, 3000, flowdata::DEFAULT_MAX_LINE_BYTES]),
    ) {
        let (header, mut lines) = sample_lines(which);
        for c in cs {
            match c {
                Corruption::Flip { line, at, byte } => {
                    let l = &mut lines[line];
                    if !l.is_empty() { let i = at % l.len(); l[i] = byte; }
                }
                Corruption::Delete { line, at, len } => {
                    let l = &mut lines[line];
                    let i = at.min(l.len());
                    let j = (i + len).min(l.len());
                    l.drain(i..j);
                }
                Corruption::Cut { line, at } => { let l = &mut lines[line]; let i = at.min(l.len()); l.truncate(i); }
                Corruption::Insert { line, at, text } => {
                    let l = &mut lines[line];
                    let i = at.min(l.len());
                    l.splice(i..i, text);
                }
                Corruption::DuplicateHeader { line } => lines[line] = header.clone(),
                Corruption::Crlf { line } => lines[line].push(b'\r'),
                Corruption::Cell { line, cell, bytes } => {
                    let l = &lines[line];
                    let starts: Vec<usize> = std::iter::once(0)
                        .chain(l.iter().enumerate().filter(|(_, &b)| b == b',').map(|(i, _)| i + 1))
                        .collect();
                    let i = starts[cell % starts.len()];
                    let j = l[i..].iter().position(|&b| b == b',').map_or(l.len(), |p| i + p);
                    lines[line].splice(i..j, bytes);
                }
                Corruption::Stretch { line, times } => lines[line] = lines[line].repeat(times),
            }
        }
        let mut bytes = header.clone();
        for l in &lines { bytes.push(b'\n'); bytes.extend_from_slice(l); }
        if trailing_newline { bytes.push(b'\n'); }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, &bytes).unwrap();
        let opts = ReadOptions {
            invalid: if keep { InvalidPolicy::Keep } else { InvalidPolicy::Drop },
            // Tiny blocks so the block and piece boundaries are exercised too.
            block_bytes,
            max_line_bytes,
            ..ReadOptions::default()
        };
        let (frame, r) = read_csv(&[&p], &opts).unwrap();
        // Every data line (after the header) is read exactly once.
        // (A final newline ends the last line; it does not start an empty one.)
        let ends_with_newline = bytes.last() == Some(&b'\n');
        let n_lines = bytes.split(|&b| b == b'\n').count() as u64 - 1 - u64::from(ends_with_newline);
        prop_assert_eq!(r.rows_read, n_lines);
        prop_assert_eq!(r.rows_read, r.rows_kept + r.rows_rejected());
        prop_assert_eq!(frame.n_rows() as u64, r.rows_kept);
        prop_assert_eq!(r.labels.values().sum::<u64>(), r.rows_kept);
        // Kept rows point at distinct, increasing source lines.
        prop_assert!(frame.source_line.windows(2).all(|w| w[0] < w[1]));
        if !keep { prop_assert!(frame.x.iter().all(|v| v.is_finite())); }
    }
}

#[test]
fn block_size_does_not_change_the_result() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets/cic-ddos2019/raw-heads");
    let (a, ra) = read_csv(&[&p], &ReadOptions::default()).unwrap();
    for block in [1000, 7777, 65536] {
        let o = ReadOptions {
            block_bytes: block,
            ..ReadOptions::default()
        };
        let (b, rb) = read_csv(&[&p], &o).unwrap();
        assert_eq!(a, b, "block {block}");
        assert_eq!(ra, rb, "block {block}");
    }
}
