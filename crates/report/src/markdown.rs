//! `RESULTS.md`: headings, text, Markdown tables and linked figures.
use crate::builder::{Block, ReportBuilder, FIGURES_DIR};
use crate::figures::Format;

pub(crate) fn render(report: &ReportBuilder) -> String {
    let mut s = format!("# {}\n\n", report.title);
    if let Some(intro) = &report.intro {
        s.push_str(intro.trim_end());
        s.push_str("\n\n");
    }
    for section in &report.sections {
        s.push_str(&format!("## {}\n\n", section.title));
        for block in &section.blocks {
            match block {
                Block::Text(t) => {
                    s.push_str(t.trim_end());
                    s.push_str("\n\n");
                }
                Block::Table(t) => {
                    s.push_str(&t.to_markdown());
                    s.push('\n');
                }
                Block::Figure(f) => {
                    let alt = f.title.replace(['[', ']'], "");
                    s.push_str(&format!("![{alt}]({FIGURES_DIR}/{}.svg)\n\n", f.name));
                    let others: Vec<String> = report
                        .formats
                        .iter()
                        .filter(|x| **x != Format::Svg)
                        .map(|x| {
                            format!(
                                "[{}]({FIGURES_DIR}/{}.{})",
                                x.extension().to_uppercase(),
                                f.name,
                                x.extension()
                            )
                        })
                        .collect();
                    if others.is_empty() {
                        s.push_str(&format!("*{}*\n\n", alt));
                    } else {
                        s.push_str(&format!("*{}* ({})\n\n", alt, others.join(" · ")));
                    }
                }
            }
        }
    }
    s
}
