//! `report`: classification metrics equal to scikit-learn, the thesis' figures and tables,
//! `RESULTS.md` and a self-contained `report.html`.
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
//!
//! - [`figures`]: plot functions over plain data (a confusion matrix view, a
//!   [`shap::Explanation`], per-epoch slices, a tree node list) returning a [`Figure`] (SVG text,
//!   converted to PNG by resvg and to PDF by svg2pdf). Text is set in the bundled Roboto
//!   ([`font`]); colours are colour-blind-safe ([`figures::palette`]).
//! - [`tables`]: row structs → [`tables::Table`] → Markdown / HTML.
//! - [`builder`]: [`ReportBuilder`] writes `RESULTS.md`, `figures/*.{svg,png,pdf}` and a
//!   self-contained `report.html`.
pub mod builder;
pub mod figures;
pub mod font;
mod html;
mod markdown;
pub mod metrics;
pub mod tables;

pub use builder::{ReportBuilder, Section};
pub use figures::Figure;
