//! Figures as a library API: every function takes plain data (a confusion matrix, an
//! [`shap::Explanation`], per-epoch history …) and returns a [`Figure`], an SVG document whose
//! text stays text, which converts to PNG ([`Figure::to_png`]) and PDF ([`Figure::to_pdf`]).
//!
//! Drawing happens once, with plotters' SVG backend; PNG and PDF are made from that SVG by resvg
//! and svg2pdf with the bundled font, so the three formats show the same picture.
//!
//! ```
//! use ndarray::array;
//! use report::figures::confusion_matrix;
//!
//! let cm = array![[50u64, 2], [3, 45]];
//! let fig = confusion_matrix(cm.view(), &["BENIGN", "Syn"], false, "Confusion matrix").unwrap();
//! assert!(fig.svg().contains("BENIGN"));
//! let png = fig.to_png(1.0).unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::{tiny_skia, usvg};

use crate::font::{font_database, register_font, FONT_FAMILY};

mod confusion;
mod curves;
mod histograms;
pub mod palette;
mod shap_plots;
mod tree;

pub use confusion::confusion_matrix;
pub use curves::{throughput_bars, training_curves, ThroughputBar, TrainingHistory};
pub use histograms::class_feature_histograms;
pub use shap_plots::{
    mean_abs_shap, shap_bar, shap_beeswarm, shap_class_mean_waterfall, shap_dependence, shap_force,
    shap_heatmap, shap_waterfall, ClassChoice,
};
pub use tree::{decision_tree, SplitRule, TreeNode};

/// Why a figure could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The input data do not fit together (shapes, lengths, indices).
    #[error("invalid figure input: {0}")]
    Input(String),
    /// plotters failed while drawing.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The SVG could not be parsed back (for PNG/PDF conversion).
    #[error("SVG could not be parsed: {0}")]
    Svg(String),
    /// Rasterising or encoding the PNG failed.
    #[error("PNG conversion failed: {0}")]
    Png(String),
    /// Converting to PDF failed.
    #[error("PDF conversion failed: {0}")]
    Pdf(String),
    /// Writing a figure file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Output formats of a figure file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Scalable vector graphics; text stays text.
    Svg,
    /// Raster image at 2× the SVG's pixel size.
    Png,
    /// One-page PDF with the bundled font embedded.
    Pdf,
}

impl Format {
    /// The file extension (without dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
            Format::Pdf => "pdf",
        }
    }
}

/// One rendered figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem used when the figure is written (`name.svg`, `name.png`, `name.pdf`).
    pub name: String,
    /// Human-readable title (also drawn inside the figure).
    pub title: String,
    /// Width in CSS pixels.
    pub width: u32,
    /// Height in CSS pixels.
    pub height: u32,
    svg: String,
}

impl Figure {
    /// Wraps an SVG document drawn elsewhere.
    pub fn from_svg(name: &str, title: &str, width: u32, height: u32, svg: String) -> Self {
        Figure {
            name: file_stem(name),
            title: title.to_string(),
            width,
            height,
            svg,
        }
    }

    /// The SVG document.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// Gives the figure another file stem (sanitised to `[A-Za-z0-9_-]`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = file_stem(name);
        self
    }

    fn parse(&self) -> Result<usvg::Tree, FigureError> {
        let options = usvg::Options {
            fontdb: font_database(),
            font_family: crate::font::FONT_NAME.to_string(),
            ..usvg::Options::default()
        };
        usvg::Tree::from_str(&self.svg, &options).map_err(|e| FigureError::Svg(e.to_string()))
    }

    /// Rasterises the figure to PNG bytes; `scale` 2.0 gives a sharp picture on print and HiDPI.
    pub fn to_png(&self, scale: f32) -> Result<Vec<u8>, FigureError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(FigureError::Png(format!(
                "scale must be positive, got {scale}"
            )));
        }
        let tree = self.parse()?;
        let size = tree.size().to_int_size().scale_by(scale).ok_or_else(|| {
            FigureError::Png(format!(
                "cannot scale {}×{} by {scale}",
                self.width, self.height
            ))
        })?;
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
            .ok_or_else(|| FigureError::Png("empty or too large image".into()))?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        pixmap
            .encode_png()
            .map_err(|e| FigureError::Png(e.to_string()))
    }

    /// Converts the figure to a one-page PDF (text embedded as text with a font subset).
    ///
    /// SVG and PNG bytes are deterministic; PDF bytes may differ between runs in the order of
    /// resource-dictionary keys (svg2pdf iterates a `HashMap`), never in content.
    pub fn to_pdf(&self) -> Result<Vec<u8>, FigureError> {
        let tree = self.parse()?;
        svg2pdf::to_pdf(
            &tree,
            svg2pdf::ConversionOptions::default(),
            svg2pdf::PageOptions::default(),
        )
        .map_err(|e| FigureError::Pdf(e.to_string()))
    }

    /// The bytes of the figure in `format` (PNG at scale 2).
    pub fn encode(&self, format: Format) -> Result<Vec<u8>, FigureError> {
        match format {
            Format::Svg => Ok(self.svg.clone().into_bytes()),
            Format::Png => self.to_png(2.0),
            Format::Pdf => self.to_pdf(),
        }
    }

    /// Writes `dir/<name>.<ext>` for each format and returns the paths written.
    pub fn write(&self, dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>, FigureError> {
        std::fs::create_dir_all(dir).map_err(|source| FigureError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::with_capacity(formats.len());
        for &format in formats {
            let path = dir.join(format!("{}.{}", self.name, format.extension()));
            let bytes = self.encode(format)?;
            std::fs::write(&path, bytes).map_err(|source| FigureError::Io {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// `[A-Za-z0-9_-]` only, so a figure name is a safe file stem and URL.
pub(crate) fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "figure".to_string()
    } else {
        s
    }
}

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws with plotters' SVG backend on a white `width`×`height` canvas and wraps the result.
pub(crate) fn render<F>(
    name: &str,
    title: &str,
    width: u32,
    height: u32,
    draw: F,
) -> Result<Figure, FigureError>
where
    F: FnOnce(&Area<'_>) -> DrawResult,
{
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| FigureError::Draw(e.to_string()))?;
        draw(&root).map_err(|e| FigureError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| FigureError::Draw(e.to_string()))?;
    }
    Ok(Figure::from_svg(name, title, width, height, svg))
}

/// A text style in the bundled font. plotters writes `font-size = size / 1.24` into the SVG; the
/// factor brings the sizes used here (13 for labels) to ≈ 12 CSS px.
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size * 1.15).into_font().color(&BLACK)
}

/// Draws a title centred at the top and returns the area below it.
pub(crate) fn titled<'a>(
    root: &Area<'a>,
    title: &str,
) -> Result<Area<'a>, Box<dyn std::error::Error>> {
    let (w, _) = root.dim_in_pixel();
    let style = font(20.0).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(title.to_string(), (w as i32 / 2, 18), style))?;
    Ok(root.margin(36, 0, 0, 0))
}

pub(crate) type FChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Category labels left of a chart's plotting area: `labels[0]` at y = k-1 (the top row).
pub(crate) fn draw_row_labels(
    area: &Area<'_>,
    chart: &FChart<'_, '_>,
    x: f64,
    labels: &[String],
) -> DrawResult {
    let k = labels.len();
    let base = area.get_base_pixel();
    for (r, label) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x, (k - 1 - r) as f64));
        let style = font(13.0).pos(Pos::new(HPos::Right, VPos::Center));
        area.draw(&Text::new(
            label.clone(),
            (px - base.0 - 8, py - base.1),
            style,
        ))?;
    }
    Ok(())
}

/// Rough pixel width of `text` at `size` in the bundled font (for layout).
pub(crate) fn text_width(text: &str, size: f64) -> u32 {
    register_font();
    font(size)
        .font
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_else(|_| (text.chars().count() as f64 * size * 0.55) as u32)
}

/// Formats a number compactly with about 3 significant digits (`1.23e6` → `1.23M`).
pub fn fmt_si(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return format!("{v}");
    }
    let (x, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let ax = x.abs();
    // Tick positions like 1.39e-17 are zero up to rounding.
    let s = if ax < 1e-12 {
        "0".to_string()
    } else if ax >= 100.0 {
        format!("{x:.0}")
    } else if ax >= 10.0 {
        format!("{x:.1}")
    } else if ax >= 0.01 {
        format!("{x:.2}")
    } else {
        format!("{x:.2e}")
    };
    format!("{s}{suffix}")
}
