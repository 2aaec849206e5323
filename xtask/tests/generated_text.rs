//! `reproduce` writes only numbers its run computed: no string literal of its source carries a
//! measured number (a decimal such as "0.608" pasted from another command's output). Numbers
//! the thesis claims are allowed where the text says they are the thesis' claims.
use std::path::Path;

#[test]
fn reproduce_text_holds_no_pasted_measurements() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for literal in string_literals(code) {
                let lower = literal.to_lowercase();
                if lower.contains("thesis")
                    && (lower.contains("claim") || lower.contains("claimed"))
                {
                    continue;
                }
                if has_measured_decimal(&literal) {
                    offenders.push(format!("{}:{}: {literal}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "pasted numbers:\n{}",
        offenders.join("\n")
    );
}

/// The contents of the `"…"` literals on one line (escapes kept as written).
fn string_literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut lit = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    lit.push(c);
                    if let Some(n) = chars.next() {
                        lit.push(n);
                    }
                }
                '"' => break,
                _ => lit.push(c),
            }
        }
        out.push(lit);
    }
    out
}

/// A decimal with at least two fractional digits (`0.608`; `12.5` and format placeholders such
/// as `{:.3}` pass).
fn has_measured_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    (1..b.len()).any(|i| {
        b[i] == b'.'
            && b[i - 1].is_ascii_digit()
            && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            && b.get(i + 2).is_some_and(u8::is_ascii_digit)
    })
}
