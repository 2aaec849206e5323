//! Training curves and throughput bars, plus the horizontal bar chart they share with SHAP.
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{BLUE, GREY, ORANGE, VERMILLION};
use super::{
    draw_row_labels, fmt_si, font, render, text_width, titled, Area, DrawResult, Figure,
    FigureError,
};

/// Per-epoch training history; an empty slice means "not recorded" and hides that series.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainingHistory<'a> {
    /// Mean training loss per epoch.
    pub train_loss: &'a [f64],
    /// Validation loss per epoch.
    pub val_loss: &'a [f64],
    /// Training accuracy per epoch, in [0, 1].
    pub train_accuracy: &'a [f64],
    /// Validation accuracy per epoch, in [0, 1].
    pub val_accuracy: &'a [f64],
    /// Learning rate used in each epoch.
    pub learning_rate: &'a [f64],
}

/// (caption, y axis label, series of (name, values, colour)).
type Panel<'a> = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'a [f64], RGBColor)>,
);

/// Draws loss, accuracy and learning rate per epoch, one panel each (panels without data are
/// left out).
pub fn training_curves(history: &TrainingHistory<'_>, title: &str) -> Result<Figure, FigureError> {
    let mut panels: Vec<Panel<'_>> = Vec::new();
    if !history.train_loss.is_empty() || !history.val_loss.is_empty() {
        panels.push((
            "Loss",
            "cross-entropy loss",
            vec![
                ("train", history.train_loss, BLUE),
                ("validation", history.val_loss, VERMILLION),
            ],
        ));
    }
    if !history.train_accuracy.is_empty() || !history.val_accuracy.is_empty() {
        panels.push((
            "Accuracy",
            "accuracy",
            vec![
                ("train", history.train_accuracy, BLUE),
                ("validation", history.val_accuracy, VERMILLION),
            ],
        ));
    }
    if !history.learning_rate.is_empty() {
        panels.push((
            "Learning rate",
            "learning rate",
            vec![("learning rate", history.learning_rate, ORANGE)],
        ));
    }
    if panels.is_empty() {
        return Err(FigureError::Input("training history has no series".into()));
    }
    let all = panels
        .iter()
        .flat_map(|p| p.2.iter())
        .flat_map(|s| s.1.iter());
    if all.clone().any(|v| !v.is_finite()) {
        return Err(FigureError::Input(
            "training history contains NaN or infinity".into(),
        ));
    }
    let width = 420 * panels.len() as u32;
    render("training_curves", title, width, 400, |root| {
        let area = titled(root, title)?;
        let cols = area.split_evenly((1, panels.len()));
        for (panel, (caption, ylabel, series)) in cols.iter().zip(&panels) {
            let epochs = series.iter().map(|s| s.1.len()).max().unwrap_or(1).max(1);
            let vals = series.iter().flat_map(|s| s.1.iter().copied());
            let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let pad = ((hi - lo) * 0.08).max(hi.abs() * 1e-3).max(1e-12);
            let is_lr = *caption == "Learning rate";
            // A learning rate is shown from 0 so a constant or decaying schedule reads right.
            let (lo, hi) = if is_lr {
                (0.0, hi * 1.15 + 1e-12)
            } else {
                (
                    if lo >= 0.0 {
                        (lo - pad).max(0.0)
                    } else {
                        lo - pad
                    },
                    hi + pad,
                )
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(*caption, font(16.0))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(1f64..(epochs.max(2) as f64), lo..hi)?;
            let yfmt = |v: &f64| {
                if is_lr {
                    format!("{v:.1e}")
                } else {
                    format!("{v:.2}")
                }
            };
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(*ylabel)
                .y_label_formatter(&yfmt)
                .x_label_formatter(&|v: &f64| format!("{v:.0}"))
                .label_style(font(12.0))
                .axis_desc_style(font(13.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(225, 225, 225))
                .draw()?;
            let mut labelled = 0;
            for (name, data, color) in series {
                if data.is_empty() {
                    continue;
                }
                let color = *color;
                let pts: Vec<(f64, f64)> = data
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1) as f64, *v))
                    .collect();
                let dashed = *name == "validation";
                let s = if dashed {
                    chart.draw_series(DashedLineSeries::new(
                        pts.clone(),
                        6,
                        4,
                        color.stroke_width(2),
                    ))?
                } else {
                    chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                };
                s.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
                if pts.len() <= 30 {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
                }
                labelled += 1;
            }
            if labelled > 0 {
                chart
                    .configure_series_labels()
                    .position(match *caption {
                        "Accuracy" => SeriesLabelPosition::LowerRight,
                        "Learning rate" => SeriesLabelPosition::LowerLeft,
                        _ => SeriesLabelPosition::UpperRight,
                    })
                    .label_font(font(12.0))
                    .background_style(WHITE.mix(0.85))
                    .border_style(GREY)
                    .draw()?;
            }
        }
        Ok(())
    })
}

/// One bar of [`throughput_bars`].
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputBar {
    /// Model or implementation name (e.g. `"flowxai MLP fp32 (CPU)"`).
    pub label: String,
    /// Measured flows per second.
    pub flows_per_s: f64,
}

/// Horizontal bars of flows/s per model, each labelled with its value.
pub fn throughput_bars(bars: &[ThroughputBar], title: &str) -> Result<Figure, FigureError> {
    if bars.is_empty() {
        return Err(FigureError::Input("no throughput bars".into()));
    }
    if bars
        .iter()
        .any(|b| !b.flows_per_s.is_finite() || b.flows_per_s < 0.0)
    {
        return Err(FigureError::Input(
            "throughput must be finite and non-negative".into(),
        ));
    }
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let values: Vec<f64> = bars.iter().map(|b| b.flows_per_s).collect();
    let colors = vec![BLUE; bars.len()];
    let height = 110 + 34 * bars.len() as u32;
    let width = 720
        + labels
            .iter()
            .map(|l| text_width(l, 13.0))
            .max()
            .unwrap_or(0);
    render("throughput", title, width, height, |root| {
        let area = titled(root, title)?;
        hbar_chart(
            &area,
            &labels,
            &values,
            &colors,
            "throughput (flows/s)",
            &|v| format!("{} flows/s", fmt_si(v)),
        )
    })
}

/// Horizontal bars, `labels[0]` at the top, each bar labelled with `value_fmt(value)`.
pub(crate) fn hbar_chart(
    area: &Area<'_>,
    labels: &[String],
    values: &[f64],
    colors: &[RGBColor],
    x_desc: &str,
    value_fmt: &dyn Fn(f64) -> String,
) -> DrawResult {
    let k = labels.len();
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let xmax = if max > 0.0 { max * 1.3 } else { 1.0 };
    let label_w = labels
        .iter()
        .map(|l| text_width(l, 13.0))
        .max()
        .unwrap_or(40)
        + 16;
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_left(10)
        .x_label_area_size(44)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..xmax, -0.6f64..(k as f64 - 0.4))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|v: &f64| fmt_si(*v))
        .x_desc(x_desc)
        .label_style(font(13.0))
        .axis_desc_style(font(13.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    draw_row_labels(area, &chart, 0.0, labels)?;
    for (i, (&v, &c)) in values.iter().zip(colors).enumerate() {
        let y = (k - 1 - i) as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.35), (v, y + 0.35)],
            c.filled(),
        )))?;
        let style = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(
            format!(" {}", value_fmt(v)),
            (v, y),
            style,
        )))?;
    }
    Ok(())
}
