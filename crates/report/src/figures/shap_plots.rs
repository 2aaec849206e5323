//! SHAP figures from a [`shap::Explanation`]: beeswarm summary, bar importance, waterfall and
//! force plot for one flow, and a flows × features heat map.
use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use shap::Explanation;

use super::curves::hbar_chart;
use super::palette::{category, diverging, viridis, BLUE, GREY, VERMILLION};
use super::{
    draw_row_labels, fmt_si, font, render, text_width, titled, Area, DrawResult, Figure,
    FigureError,
};

/// Which output column's SHAP values a multi-flow figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassChoice {
    /// One class for every flow.
    Index(usize),
    /// For each flow, the class the model predicts (argmax of `model_output`).
    Predicted,
}

fn check(expl: &Explanation) -> Result<(usize, usize, usize), FigureError> {
    let (n, m, k) = expl.values.dim();
    let bad = |what: &str| Err(FigureError::Input(format!("explanation: {what}")));
    if n == 0 || m == 0 || k == 0 {
        return bad("no flows, features or classes");
    }
    if expl.feature_names.len() != m {
        return bad(&format!(
            "{} feature names for {m} features",
            expl.feature_names.len()
        ));
    }
    if expl.class_names.len() != k {
        return bad(&format!(
            "{} class names for {k} classes",
            expl.class_names.len()
        ));
    }
    if expl.base_values.len() != k {
        return bad(&format!(
            "{} base values for {k} classes",
            expl.base_values.len()
        ));
    }
    if expl.data.dim() != (n, m) {
        return bad(&format!(
            "data is {:?}, values are {n}×{m}",
            expl.data.dim()
        ));
    }
    if expl.model_output.dim() != (n, k) {
        return bad(&format!(
            "model_output is {:?}, expected {n}×{k}",
            expl.model_output.dim()
        ));
    }
    // SHAP values and outputs must be numbers; feature values may be ±inf or NaN (CIC flow
    // rates contain "Infinity") and are drawn grey / formatted as such.
    if let Some(((i, j, c), v)) = expl.values.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return bad(&format!(
            "SHAP value of flow {i}, feature {j}, class {c} is {v}"
        ));
    }
    if let Some(((i, c), v)) = expl
        .model_output
        .indexed_iter()
        .find(|(_, v)| !v.is_finite())
    {
        return bad(&format!("model output of flow {i}, class {c} is {v}"));
    }
    if let Some((c, v)) = expl
        .base_values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return bad(&format!("base value of class {c} is {v}"));
    }
    Ok((n, m, k))
}

fn check_class(class: usize, k: usize) -> Result<(), FigureError> {
    if class >= k {
        return Err(FigureError::Input(format!(
            "class index {class} out of range (0..{k})"
        )));
    }
    Ok(())
}

fn predicted(expl: &Explanation, flow: usize) -> usize {
    let row = expl.model_output.row(flow);
    let mut best = 0;
    for (c, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = c;
        }
    }
    best
}

/// `[flows, features]` SHAP values of the chosen class per flow, and the class used per flow.
fn per_flow_values(
    expl: &Explanation,
    choice: ClassChoice,
) -> Result<(Array2<f64>, Vec<usize>), FigureError> {
    let (n, m, k) = check(expl)?;
    let classes: Vec<usize> = match choice {
        ClassChoice::Index(c) => {
            check_class(c, k)?;
            vec![c; n]
        }
        ClassChoice::Predicted => (0..n).map(|i| predicted(expl, i)).collect(),
    };
    let v = Array2::from_shape_fn((n, m), |(i, j)| expl.values[[i, j, classes[i]]]);
    Ok((v, classes))
}

fn choice_label(expl: &Explanation, choice: ClassChoice) -> String {
    match choice {
        ClassChoice::Index(c) => format!("class {}", expl.class_names[c]),
        ClassChoice::Predicted => "predicted class of each flow".to_string(),
    }
}

/// Mean |SHAP value| per feature over flows: for one class, or (`None`) averaged over classes.
pub fn mean_abs_shap(expl: &Explanation, class: Option<usize>) -> Result<Vec<f64>, FigureError> {
    let (n, m, k) = check(expl)?;
    let classes: Vec<usize> = match class {
        Some(c) => {
            check_class(c, k)?;
            vec![c]
        }
        None => (0..k).collect(),
    };
    let denom = (n * classes.len()) as f64;
    Ok((0..m)
        .map(|j| {
            let mut s = 0.0;
            for i in 0..n {
                for &c in &classes {
                    s += expl.values[[i, j, c]].abs();
                }
            }
            s / denom
        })
        .collect())
}

/// Feature indices by decreasing importance (ties by index, so the order is deterministic).
fn ranking(importance: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..importance.len()).collect();
    idx.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    idx
}

/// Bar chart of mean |SHAP value| per feature, largest at the top, at most `max_features` bars.
pub fn shap_bar(
    expl: &Explanation,
    class: Option<usize>,
    max_features: usize,
    title: &str,
) -> Result<Figure, FigureError> {
    let imp = mean_abs_shap(expl, class)?;
    let order: Vec<usize> = ranking(&imp)
        .into_iter()
        .take(max_features.max(1))
        .collect();
    let labels: Vec<String> = order
        .iter()
        .map(|&j| expl.feature_names[j].clone())
        .collect();
    let values: Vec<f64> = order.iter().map(|&j| imp[j]).collect();
    let colors = vec![BLUE; order.len()];
    let what = match class {
        Some(c) => format!("mean |SHAP value| for class {}", expl.class_names[c]),
        None => format!(
            "mean |SHAP value| averaged over {} classes",
            expl.class_names.len()
        ),
    };
    let height = 110 + 28 * order.len() as u32;
    render("shap_bar", title, 820, height, |root| {
        let area = titled(root, title)?;
        hbar_chart(&area, &labels, &values, &colors, &what, &|v| {
            format!("{v:.4}")
        })
    })
}

/// Quantile `q` of finite values (nearest rank); `None` when there are none.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[pos])
}

fn padded_range(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1e-9);
    (lo - span * frac, hi + span * frac)
}

/// A vertical colour bar at pixel `(x, y)`, `h` high; `labels` = (low end, high end, caption).
fn color_bar(
    area: &Area<'_>,
    (x, y, h): (i32, i32, i32),
    color: &dyn Fn(f64) -> RGBColor,
    (lo, hi, caption): (&str, &str, &str),
) -> DrawResult {
    let steps = 60;
    for s in 0..steps {
        let y1 = y + h - h * s / steps;
        let y0 = y + h - h * (s + 1) / steps;
        area.draw(&Rectangle::new(
            [(x, y0), (x + 14, y1)],
            color((s as f64 + 0.5) / steps as f64).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(x, y), (x + 14, y + h)],
        GREY.stroke_width(1),
    ))?;
    let st = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(hi.to_string(), (x + 18, y + 6), st.clone()))?;
    area.draw(&Text::new(lo.to_string(), (x + 18, y + h - 6), st))?;
    let cap = font(12.0)
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(caption.to_string(), (x + 50, y + h / 2), cap))?;
    Ok(())
}

/// Beeswarm summary: per feature (most important at the top) a row of dots, one per flow;
/// x = SHAP value, colour = the flow's feature value from low (purple) to high (yellow),
/// scaled per feature between its 5th and 95th percentile.
pub fn shap_beeswarm(
    expl: &Explanation,
    class: ClassChoice,
    max_features: usize,
    title: &str,
) -> Result<Figure, FigureError> {
    let (values, _) = per_flow_values(expl, class)?;
    let (n, m) = values.dim();
    let imp: Vec<f64> = (0..m)
        .map(|j| values.column(j).iter().map(|v| v.abs()).sum::<f64>() / n as f64)
        .collect();
    let order: Vec<usize> = ranking(&imp)
        .into_iter()
        .take(max_features.max(1))
        .collect();
    let k = order.len();
    let labels: Vec<String> = order
        .iter()
        .map(|&j| expl.feature_names[j].clone())
        .collect();
    let all: Vec<f64> = order
        .iter()
        .flat_map(|&j| values.column(j).to_vec())
        .filter(|v| v.is_finite())
        .collect();
    let lo = all.iter().copied().fold(0.0f64, f64::min);
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let (xlo, xhi) = padded_range(lo, hi, 0.05);
    let label_w = labels
        .iter()
        .map(|l| text_width(l, 13.0))
        .max()
        .unwrap_or(40)
        + 16;
    let height = 120 + 34 * k as u32;
    let width = 760 + label_w;
    let x_desc = format!(
        "SHAP value (impact on model output, {})",
        choice_label(expl, class)
    );
    render("shap_beeswarm", title, width, height, |root| {
        let area = titled(root, title)?;
        let (w, h) = area.dim_in_pixel();
        let (plot, bar) = area.split_horizontally(w - 90);
        let mut chart = ChartBuilder::on(&plot)
            .margin_left(10)
            .margin_right(10)
            .x_label_area_size(44)
            .y_label_area_size(label_w)
            .build_cartesian_2d(xlo..xhi, -0.6f64..(k as f64 - 0.4))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v: &f64| fmt_si(*v))
            .x_desc(x_desc.as_str())
            .label_style(font(13.0))
            .axis_desc_style(font(13.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        draw_row_labels(&plot, &chart, xlo, &labels)?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.6), (0.0, k as f64 - 0.4)],
            GREY.stroke_width(1),
        )))?;
        let bins = 120usize;
        for (r, &j) in order.iter().enumerate() {
            let y = (k - 1 - r) as f64;
            let col = values.column(j);
            let feat: Vec<f64> = expl.data.column(j).iter().map(|&v| v as f64).collect();
            let (f5, f95) = (quantile(&feat, 0.05), quantile(&feat, 0.95));
            // Stack dots that fall into the same x bin alternately above and below the row.
            let mut idx: Vec<usize> = (0..n).filter(|&i| col[i].is_finite()).collect();
            idx.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
            let bin_of = |v: f64| (((v - xlo) / (xhi - xlo) * bins as f64) as usize).min(bins - 1);
            let mut counts = vec![0usize; bins];
            for &i in &idx {
                counts[bin_of(col[i])] += 1;
            }
            let max_count = counts.iter().copied().max().unwrap_or(1).max(1);
            let dy = (0.42 / (max_count as f64 / 2.0).max(1.0)).min(0.09);
            let mut used = vec![0usize; bins];
            let mut dots = Vec::with_capacity(idx.len());
            for &i in &idx {
                let b = bin_of(col[i]);
                let c = used[b];
                used[b] += 1;
                let off = if c.is_multiple_of(2) {
                    (c / 2) as f64
                } else {
                    -(c.div_ceil(2) as f64)
                };
                let fv = feat[i];
                let color = match (f5, f95) {
                    _ if !fv.is_finite() => GREY,
                    (Some(a), Some(b)) if b > a => viridis((fv - a) / (b - a)),
                    _ => viridis(0.5),
                };
                dots.push(Circle::new(
                    (col[i], y + off * dy),
                    3,
                    color.mix(0.85).filled(),
                ));
            }
            chart.draw_series(dots)?;
        }
        let top = 12;
        color_bar(
            &bar,
            (10, top, h as i32 - 44 - 2 * top),
            &viridis,
            ("Low", "High", "Feature value"),
        )
    })
}

fn check_flow(flow: usize, n: usize) -> Result<(), FigureError> {
    if flow >= n {
        return Err(FigureError::Input(format!(
            "flow index {flow} out of range (0..{n})"
        )));
    }
    Ok(())
}

/// `feature = value` with the value in 3 significant digits.
fn feature_label(expl: &Explanation, flow: usize, j: usize) -> String {
    format!(
        "{} = {}",
        expl.feature_names[j],
        fmt_si(expl.data[[flow, j]] as f64)
    )
}

/// Waterfall for one flow: from the expected output E[f(X)] (bottom) each feature's
/// contribution moves the output until f(x) (top); the largest contributions are at the top and
/// the rest is summed into "N other features". `class` `None` = the predicted class.
pub fn shap_waterfall(
    expl: &Explanation,
    flow: usize,
    class: Option<usize>,
    max_display: usize,
    title: &str,
) -> Result<Figure, FigureError> {
    let (n, m, k) = check(expl)?;
    check_flow(flow, n)?;
    let c = class.unwrap_or_else(|| predicted(expl, flow));
    check_class(c, k)?;
    let contrib: Vec<f64> = (0..m).map(|j| expl.values[[flow, j, c]]).collect();
    let labels: Vec<String> = (0..m).map(|j| feature_label(expl, flow, j)).collect();
    let x_name = format!("model output for class {}", expl.class_names[c]);
    waterfall(
        "shap_waterfall",
        title,
        &labels,
        &contrib,
        expl.base_values[c],
        &x_name,
        max_display,
    )
}

/// The thesis' per-class mean waterfall: the mean SHAP value of each feature over the flows of
/// class `class` (`labels[i]` indexes `class_names`, e.g. true labels; `None` = predicted class),
/// each row labelled `feature (min | mean | max)` of that feature over those flows.
pub fn shap_class_mean_waterfall(
    expl: &Explanation,
    class: usize,
    labels: Option<&[usize]>,
    max_display: usize,
    title: &str,
) -> Result<Figure, FigureError> {
    let (n, m, k) = check(expl)?;
    check_class(class, k)?;
    let members: Vec<usize> = match labels {
        Some(l) if l.len() != n => {
            return Err(FigureError::Input(format!(
                "{} labels for {n} flows",
                l.len()
            )))
        }
        Some(l) => (0..n).filter(|&i| l[i] == class).collect(),
        None => (0..n).filter(|&i| predicted(expl, i) == class).collect(),
    };
    if members.is_empty() {
        return Err(FigureError::Input(format!(
            "no flow of class {} to average",
            expl.class_names[class]
        )));
    }
    let cnt = members.len() as f64;
    let contrib: Vec<f64> = (0..m)
        .map(|j| {
            members
                .iter()
                .map(|&i| expl.values[[i, j, class]])
                .sum::<f64>()
                / cnt
        })
        .collect();
    let row_labels: Vec<String> = (0..m)
        .map(|j| {
            let v: Vec<f64> = members.iter().map(|&i| expl.data[[i, j]] as f64).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = v.iter().sum::<f64>() / cnt;
            format!(
                "{} ({} | {} | {})",
                expl.feature_names[j],
                fmt_si(lo),
                fmt_si(mean),
                fmt_si(hi)
            )
        })
        .collect();
    let x_name = format!(
        "mean model output for class {} over {} flows",
        expl.class_names[class],
        members.len()
    );
    let name = format!("shap_class_mean_waterfall_{}", expl.class_names[class]);
    waterfall(
        &name,
        title,
        &row_labels,
        &contrib,
        expl.base_values[class],
        &x_name,
        max_display,
    )
}

/// Draws a waterfall of `contrib` (one per feature, labelled by `labels`) from `base`.
fn waterfall(
    name: &str,
    title: &str,
    labels: &[String],
    contrib: &[f64],
    base: f64,
    x_name: &str,
    max_display: usize,
) -> Result<Figure, FigureError> {
    let m = contrib.len();
    let abs: Vec<f64> = contrib.iter().map(|v| v.abs()).collect();
    let order = ranking(&abs);
    let shown = if m > max_display.max(2) {
        max_display.max(2) - 1
    } else {
        m
    };
    // Rows top-down.
    let mut rows: Vec<(String, f64)> = order[..shown]
        .iter()
        .map(|&j| (labels[j].clone(), contrib[j]))
        .collect();
    if shown < m {
        let rest: f64 = order[shown..].iter().map(|&j| contrib[j]).sum();
        rows.push((format!("{} other features", m - shown), rest));
    }
    let fx = base + contrib.iter().sum::<f64>();
    // Bars from the bottom row up, starting at the base value.
    let mut spans = vec![(0.0, 0.0); rows.len()];
    let mut acc = base;
    for (r, (_, v)) in rows.iter().enumerate().rev() {
        spans[r] = (acc, acc + v);
        acc += v;
    }
    let lo = spans
        .iter()
        .flat_map(|s| [s.0, s.1])
        .fold(base.min(fx), f64::min);
    let hi = spans
        .iter()
        .flat_map(|s| [s.0, s.1])
        .fold(base.max(fx), f64::max);
    let (xlo, xhi) = padded_range(lo, hi, 0.18);
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let kk = rows.len();
    let label_w = labels
        .iter()
        .map(|l| text_width(l, 13.0))
        .max()
        .unwrap_or(40)
        + 16;
    let height = 150 + 34 * kk as u32;
    let x_desc = format!("{x_name}   (E[f(X)] = {base:.4},  f(x) = {fx:.4})");
    render(name, title, 760 + label_w, height, |root| {
        let area = titled(root, title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(10)
            .margin_right(20)
            .margin_top(20)
            .x_label_area_size(44)
            .y_label_area_size(label_w)
            .build_cartesian_2d(xlo..xhi, -0.8f64..(kk as f64 - 0.2))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v: &f64| format!("{v:.3}"))
            .x_desc(x_desc.as_str())
            .label_style(font(13.0))
            .axis_desc_style(font(13.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        draw_row_labels(&area, &chart, xlo, &labels)?;
        let (ybot, ytop) = (-0.8, kk as f64 - 0.2);
        // E[f(X)] is labelled under the bottom bar, f(x) above the plot.
        for (x, txt, at_top) in [
            (base, format!("E[f(X)] = {base:.3}"), false),
            (fx, format!("f(x) = {fx:.3}"), true),
        ] {
            chart.draw_series(DashedLineSeries::new(
                vec![(x, ybot), (x, ytop)],
                4,
                4,
                GREY.stroke_width(1),
            ))?;
            let (y, vp) = if at_top {
                (ytop, VPos::Bottom)
            } else {
                (-0.45, VPos::Top)
            };
            let st = font(13.0).color(&GREY).pos(Pos::new(HPos::Center, vp));
            chart.draw_series(std::iter::once(Text::new(txt, (x, y), st)))?;
        }
        for (r, ((_, v), (s, e))) in rows.iter().zip(&spans).enumerate() {
            let y = (kk - 1 - r) as f64;
            let color = if *v >= 0.0 { VERMILLION } else { BLUE };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(*s, y - 0.32), (*e, y + 0.32)],
                color.filled(),
            )))?;
            let (x, hp) = if *v >= 0.0 {
                (s.max(*e), HPos::Left)
            } else {
                (s.min(*e), HPos::Right)
            };
            let st = font(12.0).color(&color).pos(Pos::new(hp, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(format!(" {v:+.4} "), (x, y), st)))?;
        }
        Ok(())
    })
}

/// Force plot for one flow: contributions that raise the output (vermillion, pointing right)
/// meet those that lower it (blue, pointing left) at f(x); the largest are labelled.
/// `class` `None` = the predicted class.
pub fn shap_force(
    expl: &Explanation,
    flow: usize,
    class: Option<usize>,
    title: &str,
) -> Result<Figure, FigureError> {
    let (n, m, k) = check(expl)?;
    check_flow(flow, n)?;
    let c = class.unwrap_or_else(|| predicted(expl, flow));
    check_class(c, k)?;
    let contrib: Vec<f64> = (0..m).map(|j| expl.values[[flow, j, c]]).collect();
    let base = expl.base_values[c];
    let fx = base + contrib.iter().sum::<f64>();
    let sum_pos: f64 = contrib.iter().filter(|v| **v > 0.0).sum();
    let sum_neg: f64 = contrib.iter().filter(|v| **v < 0.0).map(|v| -v).sum();
    // Segments: positives from fx - sum_pos up to fx (largest nearest fx), negatives from fx up.
    let mut pos: Vec<usize> = (0..m).filter(|&j| contrib[j] > 0.0).collect();
    pos.sort_by(|&a, &b| contrib[a].total_cmp(&contrib[b]).then(a.cmp(&b)));
    let mut neg: Vec<usize> = (0..m).filter(|&j| contrib[j] < 0.0).collect();
    neg.sort_by(|&a, &b| contrib[a].total_cmp(&contrib[b]).then(a.cmp(&b)));
    let mut segs: Vec<(usize, f64, f64, bool)> = Vec::new();
    let mut x = fx - sum_pos;
    for &j in &pos {
        segs.push((j, x, x + contrib[j], true));
        x += contrib[j];
    }
    let mut x = fx + sum_neg;
    for &j in &neg {
        segs.push((j, x + contrib[j], x, false));
        x += contrib[j];
    }
    let lo = (fx - sum_pos).min(base);
    let hi = (fx + sum_neg).max(base);
    let (xlo, xhi) = padded_range(lo, hi, 0.08);
    let abs: Vec<f64> = contrib.iter().map(|v| v.abs()).collect();
    let labelled: Vec<usize> = ranking(&abs)
        .into_iter()
        .take(8)
        .filter(|&j| abs[j] > 0.0)
        .collect();
    let x_desc = format!("model output for class {}", expl.class_names[c]);
    render("shap_force", title, 1100, 380, |root| {
        let area = titled(root, title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin_left(30)
            .margin_right(30)
            .x_label_area_size(44)
            .y_label_area_size(0)
            .build_cartesian_2d(xlo..xhi, 0f64..1f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_label_formatter(&|v: &f64| format!("{v:.3}"))
            .x_desc(x_desc.as_str())
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        let arrow = (xhi - xlo) * 0.006;
        let (y0, y1) = (0.62, 0.78);
        let ym = (y0 + y1) / 2.0;
        for &(_, s, e, up) in &segs {
            let a = arrow.min((e - s) * 0.5);
            let (color, pts) = if up {
                (
                    VERMILLION,
                    vec![
                        (s, y0),
                        (e - a, y0),
                        (e, ym),
                        (e - a, y1),
                        (s, y1),
                        (s + a, ym),
                    ],
                )
            } else {
                (
                    BLUE,
                    vec![
                        (s + a, y0),
                        (e, y0),
                        (e - a, ym),
                        (e, y1),
                        (s + a, y1),
                        (s, ym),
                    ],
                )
            };
            chart.draw_series(std::iter::once(Polygon::new(pts.clone(), color.filled())))?;
            let mut outline = pts;
            outline.push(outline[0]);
            chart.draw_series(std::iter::once(PathElement::new(
                outline,
                WHITE.stroke_width(1),
            )))?;
        }
        // f(x) and base value markers above the bar.
        let st = font(14.0).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(fx, y1), (fx, 0.86)],
            BLACK.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("f(x) = {fx:.3}"),
            (fx, 0.87),
            st,
        )))?;
        let st = font(12.0)
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(base, y1), (base, 0.82)],
            GREY.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("base value = {base:.3}"),
            (base, 0.93),
            st,
        )))?;
        let st = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(
            "raises f(x)",
            (xlo, 0.95),
            st.clone().color(&VERMILLION),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            "lowers f(x)",
            (xlo, 0.88),
            st.color(&BLUE),
        )))?;
        // Labels of the largest contributions, sorted by position and staggered on 4 levels.
        let mut lab: Vec<(f64, usize, bool)> = labelled
            .iter()
            .filter_map(|&j| {
                segs.iter()
                    .find(|s| s.0 == j)
                    .map(|s| ((s.1 + s.2) / 2.0, j, s.3))
            })
            .collect();
        lab.sort_by(|a, b| a.0.total_cmp(&b.0));
        let level = |i: usize| 0.50 - 0.12 * (i % 4) as f64;
        for (i, &(xc, _, up)) in lab.iter().enumerate() {
            let color = if up { VERMILLION } else { BLUE };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(xc, y0), (xc, level(i))],
                color.stroke_width(1),
            )))?;
        }
        // Labels on a white box, so leader lines of other labels pass behind them.
        let px_per_x = chart.plotting_area().dim_in_pixel().0 as f64 / (xhi - xlo);
        let px_per_y = chart.plotting_area().dim_in_pixel().1 as f64;
        for (i, &(xc, j, up)) in lab.iter().enumerate() {
            let color = if up { VERMILLION } else { BLUE };
            let text = feature_label(expl, flow, j);
            let half_w = (text_width(&text, 12.0) as f64 / 2.0 + 4.0) / px_per_x;
            let half_h = 10.0 / px_per_y;
            let y = level(i);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(xc - half_w, y - half_h), (xc + half_w, y + half_h)],
                WHITE.filled(),
            )))?;
            let st = font(12.0)
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(text, (xc, y), st)))?;
        }
        Ok(())
    })
}

/// Heat map of SHAP values, features (most important at the top) × flows (sorted by model
/// output), blue = lowers the output, orange = raises it; a line above shows f(x) per flow.
pub fn shap_heatmap(
    expl: &Explanation,
    class: ClassChoice,
    max_features: usize,
    title: &str,
) -> Result<Figure, FigureError> {
    let (values, classes) = per_flow_values(expl, class)?;
    let (n, m) = values.dim();
    let imp: Vec<f64> = (0..m)
        .map(|j| values.column(j).iter().map(|v| v.abs()).sum::<f64>() / n as f64)
        .collect();
    let order: Vec<usize> = ranking(&imp)
        .into_iter()
        .take(max_features.max(1))
        .collect();
    let out: Vec<f64> = (0..n).map(|i| expl.model_output[[i, classes[i]]]).collect();
    let mut flows: Vec<usize> = (0..n).collect();
    flows.sort_by(|&a, &b| {
        classes[a]
            .cmp(&classes[b])
            .then(out[b].total_cmp(&out[a]))
            .then(a.cmp(&b))
    });
    let abs_all: Vec<f64> = order
        .iter()
        .flat_map(|&j| values.column(j).iter().map(|v| v.abs()).collect::<Vec<_>>())
        .collect();
    let scale = quantile(&abs_all, 0.99).filter(|s| *s > 0.0).unwrap_or(1.0);
    let labels: Vec<String> = order
        .iter()
        .map(|&j| expl.feature_names[j].clone())
        .collect();
    let label_w = labels
        .iter()
        .map(|l| text_width(l, 13.0))
        .max()
        .unwrap_or(40) as i32
        + 16;
    let row_h = 24;
    let grid_w = 800;
    let strip_h = 80;
    let width = label_w as u32 + grid_w + 130;
    // Predicted-class mode: class names of the flow groups, rotated, under the grid.
    let group_label_h = match class {
        ClassChoice::Index(_) => 0,
        ClassChoice::Predicted => {
            let mut cs: Vec<usize> = classes.clone();
            cs.sort_unstable();
            cs.dedup();
            cs.iter()
                .map(|&c| text_width(&expl.class_names[c], 11.0))
                .max()
                .unwrap_or(0)
                + 12
        }
    };
    let height = 36 + 20 + strip_h + 10 + row_h * order.len() as u32 + 70 + group_label_h;
    let sorting = match class {
        ClassChoice::Index(_) => "sorted by model output",
        ClassChoice::Predicted => "grouped by predicted class, sorted by model output",
    };
    let x_desc = format!(
        "flows ({n}), {sorting}; SHAP values for {}",
        choice_label(expl, class)
    );
    render("shap_heatmap", title, width, height, |root| {
        let area = titled(root, title)?;
        let left = label_w + 10;
        let top = 20 + strip_h as i32 + 10;
        let gw = grid_w as i32;
        let col_x = |i: usize| left + (i as f64 * gw as f64 / n as f64).round() as i32;
        // f(x) strip.
        let (olo, ohi) = out
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (olo, ohi) = if ohi > olo {
            (olo, ohi)
        } else {
            (olo - 0.5, ohi + 0.5)
        };
        let sy = |v: f64| {
            20 + strip_h as i32 - ((v - olo) / (ohi - olo) * (strip_h as f64 - 8.0)) as i32 - 4
        };
        let pts: Vec<(i32, i32)> = flows
            .iter()
            .enumerate()
            .map(|(p, &i)| ((col_x(p) + col_x(p + 1)) / 2, sy(out[i])))
            .collect();
        area.draw(&PathElement::new(pts, BLACK.stroke_width(1)))?;
        area.draw(&Rectangle::new(
            [(left, 20), (left + gw, 20 + strip_h as i32)],
            RGBColor(200, 200, 200).stroke_width(1),
        ))?;
        let st = font(12.0).pos(Pos::new(HPos::Right, VPos::Center));
        area.draw(&Text::new(
            "f(x)",
            (left - 8, 20 + strip_h as i32 / 2),
            st.clone(),
        ))?;
        let st2 = font(11.0)
            .color(&GREY)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(
            format!("{ohi:.3}"),
            (left + gw + 4, sy(ohi)),
            st2.clone(),
        ))?;
        area.draw(&Text::new(
            format!("{olo:.3}"),
            (left + gw + 4, sy(olo)),
            st2,
        ))?;
        for (r, &j) in order.iter().enumerate() {
            let y0 = top + r as i32 * row_h as i32;
            for (p, &i) in flows.iter().enumerate() {
                let color = diverging(values[[i, j]] / scale);
                area.draw(&Rectangle::new(
                    [(col_x(p), y0), (col_x(p + 1), y0 + row_h as i32)],
                    color.filled(),
                ))?;
            }
            area.draw(&Text::new(
                labels[r].clone(),
                (left - 8, y0 + row_h as i32 / 2),
                st.clone(),
            ))?;
        }
        let bottom = top + row_h as i32 * order.len() as i32;
        // Predicted-class mode groups flows by class: a line separates the groups and each
        // group is labelled with its class under the grid.
        let mut start = 0;
        for p in 1..=n {
            if p == n || classes[flows[p]] != classes[flows[p - 1]] {
                if p < n {
                    area.draw(&PathElement::new(
                        vec![(col_x(p), 20), (col_x(p), bottom)],
                        BLACK.stroke_width(1),
                    ))?;
                }
                if group_label_h > 0 {
                    let st = font(11.0)
                        .transform(FontTransform::Rotate270)
                        .pos(Pos::new(HPos::Right, VPos::Center));
                    let name = expl.class_names[classes[flows[start]]].clone();
                    let x = (col_x(start) + col_x(p)) / 2;
                    area.draw(&Text::new(name, (x, bottom + 6), st))?;
                }
                start = p;
            }
        }
        area.draw(&Rectangle::new(
            [(left, top), (left + gw, bottom)],
            GREY.stroke_width(1),
        ))?;
        let st = font(13.0).pos(Pos::new(HPos::Center, VPos::Top));
        let desc_y = bottom + 10 + group_label_h as i32;
        area.draw(&Text::new(x_desc.clone(), (left + gw / 2, desc_y), st))?;
        let lo = format!("{:.3}", -scale);
        let hi = format!("+{scale:.3}");
        color_bar(
            &area,
            (left + gw + 50, top, bottom - top),
            &|t| diverging(2.0 * t - 1.0),
            (&lo, &hi, "SHAP value"),
        )
    })
}

/// Dependence scatter for one feature: x = the flow's feature value, y = its SHAP value for
/// `class`; colour = the flow's class (`labels[i]` indexes `expl.class_names`, e.g. the true
/// labels; `None` = the predicted class). With `log_x` the x axis is `sign(v)·log10(1 + |v|)`.
/// Flows whose feature value is not finite are left out and counted in the axis label.
pub fn shap_dependence(
    expl: &Explanation,
    feature: usize,
    class: ClassChoice,
    labels: Option<&[usize]>,
    log_x: bool,
    title: &str,
) -> Result<Figure, FigureError> {
    let (values, _) = per_flow_values(expl, class)?;
    let (n, m) = values.dim();
    let k = expl.class_names.len();
    if feature >= m {
        return Err(FigureError::Input(format!(
            "feature index {feature} out of range (0..{m})"
        )));
    }
    let colour_class: Vec<usize> = match labels {
        Some(l) if l.len() != n => {
            return Err(FigureError::Input(format!(
                "{} labels for {n} flows",
                l.len()
            )))
        }
        Some(l) => {
            if let Some((i, c)) = l.iter().enumerate().find(|(_, &c)| c >= k) {
                return Err(FigureError::Input(format!(
                    "label {c} of flow {i} out of range (0..{k})"
                )));
            }
            l.to_vec()
        }
        None => (0..n).map(|i| predicted(expl, i)).collect(),
    };
    let tf = |v: f32| {
        let v = v as f64;
        if log_x {
            v.signum() * v.abs().ln_1p() / std::f64::consts::LN_10
        } else {
            v
        }
    };
    let pts: Vec<(f64, f64, usize)> = (0..n)
        .map(|i| {
            (
                tf(expl.data[[i, feature]]),
                values[[i, feature]],
                colour_class[i],
            )
        })
        .filter(|p| p.0.is_finite())
        .collect();
    let hidden = n - pts.len();
    if pts.is_empty() {
        return Err(FigureError::Input(format!(
            "feature {} has no finite values",
            expl.feature_names[feature]
        )));
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (y0, y1) = pts
        .iter()
        .fold((0.0f64, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x0, x1) = padded_range(x0, x1, 0.04);
    let (y0, y1) = padded_range(y0, y1, 0.06);
    let name = &expl.feature_names[feature];
    let mut x_desc = if log_x {
        format!("log10(1 + {name})")
    } else {
        name.clone()
    };
    if hidden > 0 {
        x_desc.push_str(&format!(
            "   ({hidden} flows with a non-finite value not shown)"
        ));
    }
    let y_desc = format!("SHAP value ({})", choice_label(expl, class));
    let mut present: Vec<usize> = pts.iter().map(|p| p.2).collect();
    present.sort_unstable();
    present.dedup();
    let legend_w = present
        .iter()
        .map(|&c| text_width(&expl.class_names[c], 12.0))
        .max()
        .unwrap_or(40)
        + 40;
    let height = (480u32).max(60 + 22 * present.len() as u32);
    let stem = format!("shap_dependence_{name}");
    render(&stem, title, 760 + legend_w, height, |root| {
        let area = titled(root, title)?;
        let (w, _) = area.dim_in_pixel();
        let (plot, legend) = area.split_horizontally(w - legend_w);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v: &f64| fmt_si(*v))
            .y_label_formatter(&|v: &f64| fmt_si(*v))
            .x_desc(x_desc.as_str())
            .y_desc(y_desc.as_str())
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x0, 0.0), (x1, 0.0)],
            GREY.stroke_width(1),
        )))?;
        chart.draw_series(
            pts.iter()
                .map(|&(x, y, c)| Circle::new((x, y), 3, category(c, k).mix(0.85).filled())),
        )?;
        for (r, &c) in present.iter().enumerate() {
            let y = 20 + 22 * r as i32;
            legend.draw(&Rectangle::new(
                [(8, y), (22, y + 14)],
                category(c, k).filled(),
            ))?;
            let st = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
            legend.draw(&Text::new(expl.class_names[c].clone(), (28, y + 7), st))?;
        }
        Ok(())
    })
}
