//! [`ReportBuilder`]: sections of text, tables and figures, written as `RESULTS.md`, a figures
//! directory and one self-contained `report.html`.
//!
//! ```
//! use ndarray::array;
//! use report::builder::{ReportBuilder, Section};
//! use report::figures::confusion_matrix;
//! use report::tables::Table;
//!
//! let cm = array![[9u64, 1], [2, 8]];
//! let mut table = Table::new("Accuracy", &["model", "accuracy"]);
//! table.push_row(vec!["MLP".into(), "85.00 %".into()]);
//! let report = ReportBuilder::new("flowxai results")
//!     .section(
//!         Section::new("Classification")
//!             .text("Test split, 20 flows.")
//!             .table(table)
//!             .figure(confusion_matrix(cm.view(), &["BENIGN", "Syn"], false, "Confusion matrix").unwrap()),
//!     );
//! let dir = tempfile::tempdir().unwrap();
//! let written = report.write(dir.path()).unwrap();
//! assert!(written.results_md.exists() && written.report_html.exists());
//! ```
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::figures::{Figure, FigureError, Format};
use crate::tables::Table;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure failed to render or convert.
    #[error(transparent)]
    Figure(#[from] FigureError),
    /// Two figures would be written to the same file.
    #[error("two figures are named {0:?}; give one another name with Figure::with_name")]
    DuplicateFigure(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One piece of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Plain text; blank lines separate paragraphs. Written as-is into Markdown, escaped in HTML.
    Text(String),
    /// A table.
    Table(Table),
    /// A figure.
    Figure(Figure),
}

/// A titled section of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Section heading.
    pub title: String,
    /// Content, in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section.
    pub fn new(title: &str) -> Self {
        Section {
            title: title.to_string(),
            blocks: Vec::new(),
        }
    }
    /// Appends text.
    pub fn text(mut self, text: &str) -> Self {
        self.blocks.push(Block::Text(text.to_string()));
        self
    }
    /// Appends a table.
    pub fn table(mut self, table: Table) -> Self {
        self.blocks.push(Block::Table(table));
        self
    }
    /// Appends a figure.
    pub fn figure(mut self, figure: Figure) -> Self {
        self.blocks.push(Block::Figure(figure));
        self
    }
}

/// How `report.html` embeds figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlEmbed {
    /// Inline `<svg>` (text stays searchable; the bundled font is embedded as `@font-face`).
    InlineSvg,
    /// `<img>` with a base64 PNG.
    Png,
}

/// Collects sections and writes `RESULTS.md`, `figures/` and `report.html`.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    pub(crate) title: String,
    pub(crate) intro: Option<String>,
    pub(crate) sections: Vec<Section>,
    pub(crate) formats: Vec<Format>,
    pub(crate) embed: HtmlEmbed,
}

/// Paths written by [`ReportBuilder::write`].
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenReport {
    /// `dir/RESULTS.md`.
    pub results_md: PathBuf,
    /// `dir/report.html`.
    pub report_html: PathBuf,
    /// Every figure file under `dir/figures/`.
    pub figures: Vec<PathBuf>,
}

/// Directory (relative to the output directory) that holds the figure files.
pub const FIGURES_DIR: &str = "figures";

impl ReportBuilder {
    /// A report with a title; figures are written as SVG, PNG and PDF and inlined as SVG.
    pub fn new(title: &str) -> Self {
        ReportBuilder {
            title: title.to_string(),
            intro: None,
            sections: Vec::new(),
            formats: vec![Format::Svg, Format::Png, Format::Pdf],
            embed: HtmlEmbed::InlineSvg,
        }
    }
    /// Text shown under the title.
    pub fn intro(mut self, text: &str) -> Self {
        self.intro = Some(text.to_string());
        self
    }
    /// Appends a section.
    pub fn section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }
    /// Which files to write per figure (SVG is always written: `RESULTS.md` links it).
    pub fn figure_formats(mut self, formats: &[Format]) -> Self {
        let mut f = vec![Format::Svg];
        f.extend(formats.iter().copied().filter(|x| *x != Format::Svg));
        self.formats = f;
        self
    }
    /// How `report.html` embeds figures.
    pub fn html_embed(mut self, embed: HtmlEmbed) -> Self {
        self.embed = embed;
        self
    }

    pub(crate) fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.sections
            .iter()
            .flat_map(|s| s.blocks.iter())
            .filter_map(|b| match b {
                Block::Figure(f) => Some(f),
                _ => None,
            })
    }

    fn check_names(&self) -> Result<(), ReportError> {
        let mut seen = HashSet::new();
        for f in self.figures() {
            if !seen.insert(f.name.as_str()) {
                return Err(ReportError::DuplicateFigure(f.name.clone()));
            }
        }
        Ok(())
    }

    /// The `RESULTS.md` text (figures linked under `figures/`).
    pub fn markdown(&self) -> String {
        crate::markdown::render(self)
    }

    /// The self-contained `report.html` text.
    pub fn html(&self) -> Result<String, ReportError> {
        self.check_names()?;
        crate::html::render(self)
    }

    /// Writes `dir/RESULTS.md`, `dir/figures/<name>.{svg,png,pdf}` and `dir/report.html`.
    pub fn write(&self, dir: &Path) -> Result<WrittenReport, ReportError> {
        self.check_names()?;
        let fig_dir = dir.join(FIGURES_DIR);
        std::fs::create_dir_all(&fig_dir).map_err(|source| ReportError::Io {
            path: fig_dir.clone(),
            source,
        })?;
        let mut figures = Vec::new();
        for f in self.figures() {
            figures.extend(f.write(&fig_dir, &self.formats)?);
        }
        let results_md = dir.join("RESULTS.md");
        std::fs::write(&results_md, self.markdown()).map_err(|source| ReportError::Io {
            path: results_md.clone(),
            source,
        })?;
        let report_html = dir.join("report.html");
        std::fs::write(&report_html, self.html()?).map_err(|source| ReportError::Io {
            path: report_html.clone(),
            source,
        })?;
        Ok(WrittenReport {
            results_md,
            report_html,
            figures,
        })
    }
}

/// A URL-safe anchor for a heading.
pub(crate) fn anchor(title: &str) -> String {
    let mut s: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}
