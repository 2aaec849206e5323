//! Per-class histograms of one feature, one small panel per class on a shared x range.
use plotters::prelude::*;

use super::palette::category;
use super::{fmt_si, font, render, titled, Figure, FigureError};

/// Histograms of `values` (one feature, one value per flow) for each class in `labels`
/// (`labels[i]` indexes `class_names`), each panel showing the fraction of that class' flows per
/// bin. With `log_scale` the x axis is `sign(v)·log10(1 + |v|)`, which suits heavy-tailed flow
/// features such as `flow_bytes_s`. The shared range is the 0.1–99.9 % quantile range; values
/// outside it are counted in the edge bins.
pub fn class_feature_histograms<S: AsRef<str>>(
    feature_name: &str,
    values: &[f32],
    labels: &[usize],
    class_names: &[S],
    bins: usize,
    log_scale: bool,
    title: &str,
) -> Result<Figure, FigureError> {
    let k = class_names.len();
    if values.len() != labels.len() {
        return Err(FigureError::Input(format!(
            "{} values but {} labels",
            values.len(),
            labels.len()
        )));
    }
    if k == 0 || bins == 0 {
        return Err(FigureError::Input(
            "need at least one class and one bin".into(),
        ));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(FigureError::Input(format!(
            "label {l} of flow {i} out of range (0..{k})"
        )));
    }
    let tf = |v: f32| {
        let v = v as f64;
        if log_scale {
            v.signum() * v.abs().ln_1p() / std::f64::consts::LN_10
        } else {
            v
        }
    };
    let mut finite: Vec<f64> = values
        .iter()
        .map(|&v| tf(v))
        .filter(|v| v.is_finite())
        .collect();
    if finite.is_empty() {
        return Err(FigureError::Input(format!(
            "feature {feature_name} has no finite values"
        )));
    }
    finite.sort_by(f64::total_cmp);
    let q = |p: f64| finite[((finite.len() - 1) as f64 * p).round() as usize];
    let (mut lo, mut hi) = (q(0.001), q(0.999));
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let bw = (hi - lo) / bins as f64;
    let mut hist = vec![vec![0u64; bins]; k];
    let mut totals = vec![0u64; k];
    for (&v, &l) in values.iter().zip(labels) {
        let t = tf(v);
        if !t.is_finite() {
            continue;
        }
        let b = (((t - lo) / bw).floor().max(0.0) as usize).min(bins - 1);
        hist[l][b] += 1;
        totals[l] += 1;
    }
    let cols = k.clamp(1, 4);
    let rows = k.div_ceil(cols);
    let (pw, ph) = (300u32, 200u32);
    let x_desc = if log_scale {
        format!("log10(1 + {feature_name})")
    } else {
        feature_name.to_string()
    };
    render(
        &format!("hist_{feature_name}"),
        title,
        pw * cols as u32,
        36 + ph * rows as u32,
        |root| {
            let area = titled(root, title)?;
            let panels = area.split_evenly((rows, cols));
            for (c, panel) in panels.iter().enumerate().take(k) {
                let fracs: Vec<f64> = hist[c]
                    .iter()
                    .map(|&h| {
                        if totals[c] > 0 {
                            h as f64 / totals[c] as f64
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let ymax = fracs.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.1;
                let caption = format!("{} (n={})", class_names[c].as_ref(), totals[c]);
                let mut chart = ChartBuilder::on(panel)
                    .caption(caption, font(13.0))
                    .margin(6)
                    .x_label_area_size(34)
                    .y_label_area_size(44)
                    .build_cartesian_2d(lo..hi, 0f64..ymax)?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(4)
                    .y_labels(4)
                    .x_label_formatter(&|v: &f64| fmt_si(*v))
                    .y_label_formatter(&|v: &f64| format!("{v:.2}"))
                    .x_desc(x_desc.as_str())
                    .y_desc("fraction")
                    .label_style(font(10.0))
                    .axis_desc_style(font(11.0))
                    .light_line_style(TRANSPARENT)
                    .bold_line_style(RGBColor(225, 225, 225))
                    .draw()?;
                let color = category(c, k);
                let bars = fracs.iter().enumerate().filter(|(_, f)| **f > 0.0);
                chart.draw_series(bars.clone().map(|(b, &f)| {
                    let x0 = lo + b as f64 * bw;
                    Rectangle::new([(x0, 0.0), (x0 + bw, f)], color.filled())
                }))?;
                // A dark outline keeps light (yellow) bars visible on white.
                chart.draw_series(bars.map(|(b, &f)| {
                    let x0 = lo + b as f64 * bw;
                    Rectangle::new(
                        [(x0, 0.0), (x0 + bw, f)],
                        RGBColor(60, 60, 60).stroke_width(1),
                    )
                }))?;
            }
            Ok(())
        },
    )
}
