//! `report.html`: one file with every table and figure inline (SVG, or base64 PNG) and the
//! bundled font as a base64 `@font-face`, so it opens in a browser without network.
use base64::Engine;

use crate::builder::{anchor, Block, HtmlEmbed, ReportBuilder, ReportError};
use crate::font::{FONT_FAMILY, FONT_NAME, FONT_TTF};
use crate::tables::html_escape;

const STYLE: &str = r#"
body { font-family: FONTS; color: #1a1a1a; max-width: 1280px; margin: 0 auto; padding: 24px; line-height: 1.45; }
h1 { font-size: 28px; margin-bottom: 4px; }
h2 { font-size: 22px; margin-top: 40px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
nav ul { columns: 2; }
table { border-collapse: collapse; margin: 16px 0; font-size: 14px; }
caption { font-weight: bold; text-align: left; padding-bottom: 6px; }
th, td { border: 1px solid #d0d0d0; padding: 4px 10px; text-align: left; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
p.note { font-style: italic; color: #555; font-size: 13px; margin-top: -8px; }
figure { margin: 24px 0; }
figure svg, figure img { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
figcaption { color: #444; font-size: 14px; margin-top: 6px; }
"#;

pub(crate) fn render(report: &ReportBuilder) -> Result<String, ReportError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    s.push_str(&format!(
        "<title>{}</title>\n<style>\n",
        html_escape(&report.title)
    ));
    s.push_str(&format!(
        "@font-face {{ font-family: \"{FONT_NAME}\"; src: url(data:font/ttf;base64,{}) format(\"truetype\"); }}\n",
        b64.encode(FONT_TTF)
    ));
    s.push_str(&STYLE.replace("FONTS", FONT_FAMILY));
    s.push_str("</style>\n</head>\n<body>\n");
    s.push_str(&format!("<h1>{}</h1>\n", html_escape(&report.title)));
    if let Some(intro) = &report.intro {
        push_text(&mut s, intro);
    }
    if report.sections.len() > 1 {
        s.push_str("<nav><ul>\n");
        for sec in &report.sections {
            s.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>\n",
                anchor(&sec.title),
                html_escape(&sec.title)
            ));
        }
        s.push_str("</ul></nav>\n");
    }
    for sec in &report.sections {
        s.push_str(&format!(
            "<section>\n<h2 id=\"{}\">{}</h2>\n",
            anchor(&sec.title),
            html_escape(&sec.title)
        ));
        for block in &sec.blocks {
            match block {
                Block::Text(t) => push_text(&mut s, t),
                Block::Table(t) => s.push_str(&t.to_html()),
                Block::Figure(f) => {
                    s.push_str(&format!("<figure id=\"fig-{}\">\n", f.name));
                    match report.embed {
                        HtmlEmbed::InlineSvg => {
                            let svg = f.svg();
                            // An XML declaration is not allowed inside HTML.
                            let svg = match svg.find("<svg") {
                                Some(i) => &svg[i..],
                                None => svg,
                            };
                            s.push_str(&format!(
                                "<div role=\"img\" aria-label=\"{}\">\n",
                                html_escape(&f.title)
                            ));
                            s.push_str(svg.trim());
                            s.push_str("\n</div>\n");
                        }
                        HtmlEmbed::Png => {
                            let png = f.to_png(2.0)?;
                            s.push_str(&format!(
                                "<img alt=\"{}\" width=\"{}\" height=\"{}\" src=\"data:image/png;base64,{}\">\n",
                                html_escape(&f.title),
                                f.width,
                                f.height,
                                b64.encode(png)
                            ));
                        }
                    }
                    s.push_str(&format!(
                        "<figcaption>{}</figcaption>\n</figure>\n",
                        html_escape(&f.title)
                    ));
                }
            }
        }
        s.push_str("</section>\n");
    }
    s.push_str("</body>\n</html>\n");
    Ok(s)
}

fn push_text(s: &mut String, text: &str) {
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        s.push_str(&format!("<p>{}</p>\n", inline_markdown(para)));
    }
}

/// The inline Markdown that section texts use, as HTML: `` `code` ``, `**strong**`, `*em*`.
/// Everything is escaped first; an unpaired marker stays literal.
fn inline_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&html_escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&emphasis(&html_escape(part)));
        }
    }
    // An odd number of backticks: the last one had no partner; put it back.
    if text.matches('`').count() % 2 == 1 {
        if let Some(pos) = out.rfind("<code>") {
            let tail = out[pos + "<code>".len()..]
                .trim_end_matches("</code>")
                .to_string();
            out.truncate(pos);
            out.push('`');
            out.push_str(&tail);
        }
    }
    out
}

/// `**a**` → `<strong>a</strong>`, then `*a*` → `<em>a</em>`, pairs only.
fn emphasis(escaped: &str) -> String {
    let mut s = escaped.to_string();
    for (marker, tag) in [("**", "strong"), ("*", "em")] {
        let parts: Vec<&str> = s.split(marker).collect();
        if parts.len() < 3 {
            continue;
        }
        let mut out = String::with_capacity(s.len() + 16);
        let pairs = (parts.len() - 1) / 2;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                if i <= 2 * pairs {
                    out.push_str(if i % 2 == 1 { "<" } else { "</" });
                    out.push_str(tag);
                    out.push('>');
                } else {
                    out.push_str(marker);
                }
            }
            out.push_str(part);
        }
        s = out;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::inline_markdown;

    #[test]
    fn inline_markdown_renders_code_strong_and_em() {
        assert_eq!(
            inline_markdown("run `cargo xtask` for *thesis (claimed)* and **all** <x>"),
            "run <code>cargo xtask</code> for <em>thesis (claimed)</em> and <strong>all</strong> &lt;x&gt;"
        );
        assert_eq!(inline_markdown("a * b"), "a * b");
        assert_eq!(inline_markdown("odd ` tick"), "odd ` tick");
        assert_eq!(inline_markdown("`a*b*`"), "<code>a*b*</code>");
    }
}
