//! Byte-level CSV parsing of CICFlowMeter rows: field splitting, fast float parsing and the
//! per-row cleaning rules. No allocation per row; labels are interned per chunk.

use std::collections::HashMap;

/// Number of [`RejectReason`]s.
pub(crate) const N_REASONS: usize = 8;

/// Why a data line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The last line of a file, cut off before all fields were written.
    TruncatedLine,
    /// A line (not the last) with more or fewer fields than the header.
    WrongFieldCount,
    /// A copy of the header row inside the data (CSE-CIC-IDS2018 has 59).
    RepeatedHeader,
    /// A feature cell that is not a number, `Infinity`, `inf`, `NaN` or empty.
    BadNumber,
    /// A feature cell that is ±infinity or NaN (or empty), under the `drop` policy.
    NonFinite,
    /// An empty label cell.
    EmptyLabel,
    /// An empty line.
    EmptyLine,
    /// A line longer than [`crate::ReadOptions::max_line_bytes`]; never held in memory whole.
    LineTooLong,
}

impl RejectReason {
    /// All reasons.
    pub const ALL: [RejectReason; N_REASONS] = [
        RejectReason::TruncatedLine,
        RejectReason::WrongFieldCount,
        RejectReason::RepeatedHeader,
        RejectReason::BadNumber,
        RejectReason::NonFinite,
        RejectReason::EmptyLabel,
        RejectReason::EmptyLine,
        RejectReason::LineTooLong,
    ];

    /// Stable snake_case name used as the key in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TruncatedLine => "truncated_line",
            RejectReason::WrongFieldCount => "wrong_field_count",
            RejectReason::RepeatedHeader => "repeated_header",
            RejectReason::BadNumber => "bad_number",
            RejectReason::NonFinite => "non_finite",
            RejectReason::EmptyLabel => "empty_label",
            RejectReason::EmptyLine => "empty_line",
            RejectReason::LineTooLong => "line_too_long",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a CSV column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColRole {
    /// Feature slot in the output row.
    Feature(usize),
    /// The `Label` column.
    Label,
    /// TII-SSRC-23 `Traffic Type`.
    TrafficType,
    /// TII-SSRC-23 `Traffic Subtype`.
    TrafficSubtype,
    /// Not used.
    Ignore,
}

/// How a file's columns map onto output slots.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub roles: Vec<ColRole>,
    pub header_names: Vec<String>,
    pub n_feat: usize,
    pub keep_non_finite: bool,
    /// Longer lines (bytes before the `\n`) are rejected as [`RejectReason::LineTooLong`].
    pub max_line_bytes: usize,
}

/// Result of parsing one chunk of complete lines.
#[derive(Debug, Default)]
pub(crate) struct ParsedChunk {
    pub feats: Vec<f32>,
    pub codes: Vec<u32>,
    pub keys: Vec<Vec<u8>>,
    /// 0-based line index within the chunk, per kept row.
    pub lines: Vec<u32>,
    pub n_lines: u32,
    pub rejected: [u64; N_REASONS],
    pub first_rejects: Vec<(u32, RejectReason, String)>,
    pub non_finite_kept: u64,
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() || *first == b'"' {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() || *last == b'"' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parse one numeric cell to `f32`.
///
/// Accepts decimal and scientific notation (`4.4E8`, `-97`, `6.0`), `Infinity`/`inf` (any case,
/// optional sign), `NaN`, and an empty cell (→ NaN). Returns `None` for anything else.
///
/// Precision: up to 19 significant digits with a power-of-ten exponent within ±22 are converted
/// via one exactly-rounded `f64` operation; longer mantissas (`1502023.5790955483`) are converted
/// from their first 19 digits. Both then round to `f32`, whose 24-bit mantissa makes the `f64`
/// error (≤ 1 ulp of f64) invisible except for values within 2^-29 of an `f32` rounding tie.
/// Rare forms (exponents beyond ±22 after scaling) fall back to the standard library parser.
pub fn parse_f32(cell: &[u8]) -> Option<f32> {
    let s = trim(cell);
    if s.is_empty() {
        return Some(f32::NAN);
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    if !(body[0].is_ascii_digit() || body[0] == b'.') {
        let v = if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
            f32::INFINITY
        } else if body.eq_ignore_ascii_case(b"nan") {
            f32::NAN
        } else {
            return None;
        };
        return Some(if neg { -v } else { v });
    }
    let mut mant: u64 = 0;
    let mut n_sig = 0u32; // significant digits stored in mant
    let mut exp10: i32 = 0;
    let mut i = 0;
    let mut any_digit = false;
    while i < body.len() && body[i].is_ascii_digit() {
        any_digit = true;
        let d = (body[i] - b'0') as u64;
        if n_sig < 19 {
            if mant != 0 || d != 0 {
                n_sig += 1;
            }
            mant = mant * 10 + d;
        } else {
            exp10 += 1; // dropped integer digit
        }
        i += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            any_digit = true;
            let d = (body[i] - b'0') as u64;
            if n_sig < 19 {
                if mant != 0 || d != 0 {
                    n_sig += 1;
                }
                mant = mant * 10 + d;
                exp10 -= 1;
            }
            i += 1;
        }
    }
    if !any_digit {
        return None;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        let mut eneg = false;
        if i < body.len() && (body[i] == b'-' || body[i] == b'+') {
            eneg = body[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut e: i32 = 0;
        while i < body.len() && body[i].is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add((body[i] - b'0') as i32);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 = exp10.saturating_add(if eneg { -e } else { e });
    }
    if i != body.len() {
        return None;
    }
    let v = if mant == 0 {
        0.0
    } else if (-22..=22).contains(&exp10) {
        let m = mant as f64;
        if exp10 >= 0 {
            m * POW10[exp10 as usize]
        } else {
            m / POW10[(-exp10) as usize]
        }
    } else {
        // Rare: let the standard library do it (the text is ASCII, checked above).
        std::str::from_utf8(body).ok()?.parse::<f64>().ok()?
    };
    let v = v as f32;
    Some(if neg { -v } else { v })
}

/// Fast path for the common cell: an optional `-`, at most 19 digits with an optional `.`, an
/// optional short exponent, then `,` or the end of the line. Returns the value and the index of
/// the delimiter; `None` sends the cell to [`parse_f32`] (same result, slower).
#[inline(always)]
fn fast_number(line: &[u8], pos: usize) -> Option<(f32, usize)> {
    let n = line.len();
    let mut i = pos;
    let neg = i < n && line[i] == b'-';
    if neg {
        i += 1;
    }
    let mut mant: u64 = 0;
    let d0 = i;
    while i < n {
        let d = line[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
    let int_digits = i - d0;
    let mut frac_digits = 0;
    if i < n && line[i] == b'.' {
        i += 1;
        let f0 = i;
        while i < n {
            let d = line[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mant = mant.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        frac_digits = i - f0;
    }
    let digits = int_digits + frac_digits;
    if digits == 0 || digits > 19 {
        return None;
    }
    let mut exp10 = -(frac_digits as i32);
    if i < n && (line[i] | 0x20) == b'e' {
        i += 1;
        let eneg = i < n && line[i] == b'-';
        if i < n && (line[i] == b'-' || line[i] == b'+') {
            i += 1;
        }
        let e0 = i;
        let mut e: i32 = 0;
        while i < n && i - e0 < 4 {
            let d = line[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            e = e * 10 + d as i32;
            i += 1;
        }
        if i == e0 {
            return None;
        }
        exp10 += if eneg { -e } else { e };
    }
    if i < n && line[i] != b',' {
        return None;
    }
    let v = if mant == 0 {
        0.0
    } else if (-22..=22).contains(&exp10) {
        let m = mant as f64;
        if exp10 >= 0 {
            m * POW10[exp10 as usize]
        } else {
            m / POW10[(-exp10) as usize]
        }
    } else {
        return None;
    };
    let v = v as f32;
    if v.is_infinite() {
        return None; // f32 overflow: the slow path reports it as non-finite
    }
    Some((if neg { -v } else { v }, i))
}

/// Split the next field starting at `pos`; returns (field, position after the delimiter, hit_end).
#[inline]
fn next_field(line: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &line[pos..];
    if rest.first() == Some(&b'"') {
        // Quoted field: skip to the closing quote, then to the comma.
        let mut j = 1;
        while j < rest.len() {
            if rest[j] == b'"' {
                if rest.get(j + 1) == Some(&b'"') {
                    j += 2;
                    continue;
                }
                break;
            }
            j += 1;
        }
        while j < rest.len() && rest[j] != b',' {
            j += 1;
        }
        return (&rest[..j], pos + j + 1);
    }
    match memchr::memchr(b',', rest) {
        Some(j) => (&rest[..j], pos + j + 1),
        None => (rest, line.len() + 1),
    }
}

/// Split a header line into trimmed names (quotes removed).
pub(crate) fn split_header(line: &[u8]) -> Vec<String> {
    let line = strip_cr(line);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos <= line.len() {
        let (f, next) = next_field(line, pos);
        out.push(String::from_utf8_lossy(trim(f)).into_owned());
        pos = next;
    }
    out
}

#[inline]
fn strip_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

/// Count the fields of a line (quotes respected).
fn count_fields(line: &[u8]) -> usize {
    let mut n = 0;
    let mut pos = 0;
    while pos <= line.len() {
        let (_, next) = next_field(line, pos);
        n += 1;
        pos = next;
    }
    n
}

struct RowScratch<'a> {
    label: &'a [u8],
    ttype: &'a [u8],
    subtype: &'a [u8],
}

/// Parse a chunk of complete lines. `chunk_is_file_end_without_newline` says the last line of the
/// chunk is the file's last line and had no terminating newline (a truncation candidate).
pub(crate) fn parse_chunk(
    layout: &Layout,
    chunk: &[u8],
    last_line_unterminated: bool,
    max_first_rejects: usize,
) -> ParsedChunk {
    let mut out = ParsedChunk::default();
    let n_cols = layout.roles.len();
    let n_feat = layout.n_feat;
    let mut interner: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut row = vec![0f32; n_feat];
    let mut key_buf: Vec<u8> = Vec::with_capacity(64);
    // Labels come in long runs: compare with the previous row's key before hashing.
    let mut last_key: Option<(Vec<u8>, u32)> = None;
    let header_first = layout.header_names.first().cloned().unwrap_or_default();

    let mut start = 0usize;
    let mut line_idx: u32 = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |p| start + p);
        let unterminated = end == chunk.len() && last_line_unterminated;
        let line_bytes = end - start;
        let too_long = line_bytes > layout.max_line_bytes;
        let line = strip_cr(&chunk[start..end]);
        start = end + 1;
        let this_line = line_idx;
        line_idx += 1;

        let reject = |out: &mut ParsedChunk, reason: RejectReason, detail: String| {
            out.rejected[reason.index()] += 1;
            if out.first_rejects.len() < max_first_rejects {
                out.first_rejects.push((this_line, reason, detail));
            }
        };

        if too_long {
            // The reader skips a line longer than a block without buffering it; a shorter one
            // that is still over the cap is rejected the same way, whatever the block size.
            reject(
                &mut out,
                RejectReason::LineTooLong,
                format!("{line_bytes} bytes, limit {}", layout.max_line_bytes),
            );
            continue;
        }
        if trim(line).is_empty() {
            reject(&mut out, RejectReason::EmptyLine, String::new());
            continue;
        }

        let mut scratch = RowScratch {
            label: &[],
            ttype: &[],
            subtype: &[],
        };
        let mut pos = 0usize;
        let mut col = 0usize;
        let mut bad: Option<(RejectReason, String)> = None;
        let mut non_finite: Option<usize> = None;
        while pos <= line.len() {
            if col >= n_cols {
                col += 1; // too many fields
                break;
            }
            if let ColRole::Feature(slot) = layout.roles[col] {
                if let Some((v, end)) = fast_number(line, pos) {
                    row[slot] = v;
                    pos = end + 1;
                    col += 1;
                    continue;
                }
            }
            let (field, next) = next_field(line, pos);
            match layout.roles[col] {
                ColRole::Feature(slot) => {
                    if bad.is_none() {
                        match parse_f32(field) {
                            Some(v) => {
                                if !v.is_finite() && non_finite.is_none() {
                                    non_finite = Some(col);
                                }
                                row[slot] = v;
                            }
                            None => {
                                bad = Some((
                                    RejectReason::BadNumber,
                                    format!(
                                        "column '{}' = {:?}",
                                        layout.header_names[col],
                                        String::from_utf8_lossy(&field[..field.len().min(40)])
                                    ),
                                ));
                            }
                        }
                    }
                }
                ColRole::Label => scratch.label = trim(field),
                ColRole::TrafficType => scratch.ttype = trim(field),
                ColRole::TrafficSubtype => scratch.subtype = trim(field),
                ColRole::Ignore => {}
            }
            pos = next;
            col += 1;
        }
        if col != n_cols {
            // Repeated header rows have the right field count, so only structure is checked here.
            if unterminated && col < n_cols {
                reject(
                    &mut out,
                    RejectReason::TruncatedLine,
                    format!("{} of {} fields", count_fields(line), n_cols),
                );
            } else {
                reject(
                    &mut out,
                    RejectReason::WrongFieldCount,
                    format!("{} fields, header has {}", count_fields(line), n_cols),
                );
            }
            continue;
        }
        if let Some((reason, detail)) = bad {
            let first = trim(next_field(line, 0).0);
            if !header_first.is_empty() && first == header_first.as_bytes() {
                reject(&mut out, RejectReason::RepeatedHeader, String::new());
            } else {
                reject(&mut out, reason, detail);
            }
            continue;
        }
        if scratch.label.is_empty() {
            reject(&mut out, RejectReason::EmptyLabel, String::new());
            continue;
        }
        if let Some(c) = non_finite {
            if !layout.keep_non_finite {
                reject(
                    &mut out,
                    RejectReason::NonFinite,
                    format!("column '{}'", layout.header_names[c]),
                );
                continue;
            }
            out.non_finite_kept += 1;
        }
        key_buf.clear();
        key_buf.extend_from_slice(scratch.label);
        key_buf.push(0x1f);
        key_buf.extend_from_slice(scratch.ttype);
        key_buf.push(0x1f);
        key_buf.extend_from_slice(scratch.subtype);
        let code = if last_key.as_ref().is_some_and(|(k, _)| *k == key_buf) {
            last_key.as_ref().map_or(0, |(_, c)| *c)
        } else {
            let c = match interner.get(key_buf.as_slice()) {
                Some(&c) => c,
                None => {
                    let c = out.keys.len() as u32;
                    out.keys.push(key_buf.clone());
                    interner.insert(key_buf.clone(), c);
                    c
                }
            };
            last_key = Some((key_buf.clone(), c));
            c
        };
        out.feats.extend_from_slice(&row);
        out.codes.push(code);
        out.lines.push(this_line);
    }
    out.n_lines = line_idx;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        let p = |s: &str| parse_f32(s.as_bytes());
        assert_eq!(p("6.0"), Some(6.0));
        assert_eq!(p("-97"), Some(-97.0));
        assert_eq!(p("4.4E8"), Some(4.4e8));
        assert_eq!(p("1.472E9"), Some(1.472e9));
        assert_eq!(p("-2.1e11"), Some(-2.1e11));
        assert_eq!(
            p("1502023.5790955483"),
            Some("1502023.5790955483".parse::<f32>().unwrap())
        );
        assert_eq!(
            p("0.2108048669999999"),
            Some("0.2108048669999999".parse::<f32>().unwrap())
        );
        assert_eq!(p("Infinity"), Some(f32::INFINITY));
        assert_eq!(p("-inf"), Some(f32::NEG_INFINITY));
        assert!(p("NaN").unwrap().is_nan());
        assert!(p("").unwrap().is_nan());
        assert!(p(" ").unwrap().is_nan());
        assert_eq!(p("abc"), None);
        assert_eq!(p("1.2.3"), None);
        assert_eq!(p("-"), None);
        assert_eq!(p("1e"), None);
        assert_eq!(p("1e400"), Some(f32::INFINITY));
        assert_eq!(
            p("12345678901234567890123"),
            Some(12345678901234567890123f32)
        );
        assert_eq!(p("1e-30"), Some(1e-30f32));
    }

    #[test]
    fn fast_path_agrees_with_the_full_parser() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut fast = 0;
        let alphabet = b"0123456789.-+eE,I";
        for i in 0..300_000 {
            let s: Vec<u8> = if i % 2 == 0 {
                let v: f64 = (rng.gen::<f64>() - 0.3) * 10f64.powi(rng.gen_range(-12..40));
                match i % 3 {
                    0 => format!("{v}"),
                    1 => format!("{v:E}"),
                    _ => format!("{}", v as i64),
                }
                .into_bytes()
            } else {
                (0..rng.gen_range(0..8))
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            };
            if let Some((v, end)) = fast_number(&s, 0) {
                fast += 1;
                let full = parse_f32(&s[..end]);
                assert_eq!(Some(v), full, "{}", String::from_utf8_lossy(&s));
                assert!(end == s.len() || s[end] == b',');
            }
        }
        assert!(fast > 100_000);
    }

    #[test]
    fn floats_match_std_on_many_values() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200_000 {
            let v: f64 = rng.gen::<f64>() * 10f64.powi(rng.gen_range(-8..12));
            for s in [format!("{v}"), format!("{v:e}"), format!("{:.3}", v)] {
                let want: f32 = s.parse::<f64>().unwrap() as f32;
                assert_eq!(parse_f32(s.as_bytes()), Some(want), "{s}");
            }
        }
    }
}
