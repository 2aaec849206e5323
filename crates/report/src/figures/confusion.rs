//! Confusion matrix heat map with counts or row-normalised fractions in every cell.
use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{blues, text_on, GREY};
use super::{font, render, text_width, titled, Figure, FigureError};

/// Draws a confusion matrix (`cm[[true, predicted]]`, as scikit-learn's `confusion_matrix`).
///
/// With `normalize` every row is divided by its sum (recall on the diagonal) and cells show two
/// decimals; otherwise cells show counts. Cell colour is always the row fraction (on a square-root
/// scale, so that confusions of a few percent stand out), so a rare class is as readable as a
/// frequent one. x labels are rotated so 17 CIC-DDoS2019 names fit.
pub fn confusion_matrix<S: AsRef<str>>(
    cm: ArrayView2<'_, u64>,
    class_names: &[S],
    normalize: bool,
    title: &str,
) -> Result<Figure, FigureError> {
    let n = class_names.len();
    if cm.nrows() != n || cm.ncols() != n || n == 0 {
        return Err(FigureError::Input(format!(
            "confusion matrix is {}×{} but there are {n} class names",
            cm.nrows(),
            cm.ncols()
        )));
    }
    let names: Vec<&str> = class_names.iter().map(|s| s.as_ref()).collect();
    let row_sums: Vec<u64> = cm.rows().into_iter().map(|r| r.sum()).collect();
    let frac = |i: usize, j: usize| {
        if row_sums[i] == 0 {
            0.0
        } else {
            cm[[i, j]] as f64 / row_sums[i] as f64
        }
    };
    let cell_text = |i: usize, j: usize| {
        if normalize {
            // A confusion that rounds to 0.00 is still a confusion.
            if cm[[i, j]] > 0 && frac(i, j) < 0.005 {
                "<0.01".to_string()
            } else {
                format!("{:.2}", frac(i, j))
            }
        } else {
            cm[[i, j]].to_string()
        }
    };

    let cell: u32 = if n <= 4 {
        90
    } else if n <= 10 {
        60
    } else {
        46
    };
    let label_size = 13.0;
    let label_w = names
        .iter()
        .map(|s| text_width(s, label_size))
        .max()
        .unwrap_or(40)
        + 12;
    let longest_cell = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| cell_text(i, j))
        .max_by_key(|s| s.len())
        .unwrap_or_default();
    let mut cell_size = 13.0;
    while cell_size > 7.0 && text_width(&longest_cell, cell_size) + 4 > cell {
        cell_size -= 0.5;
    }

    let left = 30 + label_w;
    let top = 46;
    let grid = n as u32 * cell;
    let width = left + grid + 110;
    let height = top + grid + label_w + 40;
    let stem = if normalize {
        "confusion_matrix_normalized"
    } else {
        "confusion_matrix"
    };

    render(stem, title, width, height, |root| {
        let area = titled(root, title)?;
        let (l, t) = (left as i32, (top - 36) as i32);
        let c = cell as i32;
        for i in 0..n {
            for j in 0..n {
                let bg = blues(frac(i, j).sqrt());
                let (x0, y0) = (l + j as i32 * c, t + i as i32 * c);
                area.draw(&Rectangle::new([(x0, y0), (x0 + c, y0 + c)], bg.filled()))?;
                // Empty cells in grey, so the eye finds the confusions.
                let fg = if cm[[i, j]] == 0 {
                    RGBColor(170, 170, 170)
                } else {
                    text_on(bg)
                };
                let style = font(cell_size)
                    .color(&fg)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                area.draw(&Text::new(cell_text(i, j), (x0 + c / 2, y0 + c / 2), style))?;
            }
        }
        area.draw(&Rectangle::new(
            [(l, t), (l + grid as i32, t + grid as i32)],
            GREY.stroke_width(1),
        ))?;
        for (k, name) in names.iter().enumerate() {
            let mid = k as i32 * c + c / 2;
            let ystyle = font(label_size).pos(Pos::new(HPos::Right, VPos::Center));
            area.draw(&Text::new(name.to_string(), (l - 6, t + mid), ystyle))?;
            let xstyle = font(label_size)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            area.draw(&Text::new(
                name.to_string(),
                (l + mid, t + grid as i32 + 6),
                xstyle,
            ))?;
        }
        let axis = font(15.0).pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(
            "Predicted class",
            (l + grid as i32 / 2, t + grid as i32 + label_w as i32 + 20),
            axis.clone(),
        ))?;
        area.draw(&Text::new(
            "True class",
            (12, t + grid as i32 / 2),
            axis.transform(FontTransform::Rotate270),
        ))?;

        // Colour bar: the row fraction.
        let (bx, bh) = (l + grid as i32 + 24, grid as i32);
        let steps = 50;
        for s in 0..steps {
            let v0 = s as f64 / steps as f64;
            let y1 = t + bh - (bh * s / steps);
            let y0 = t + bh - (bh * (s + 1) / steps);
            area.draw(&Rectangle::new(
                [(bx, y0), (bx + 16, y1)],
                blues(v0 + 0.5 / steps as f64).filled(),
            ))?;
            // The bar is linear in sqrt(fraction); the tick labels below give the fraction.
        }
        area.draw(&Rectangle::new(
            [(bx, t), (bx + 16, t + bh)],
            GREY.stroke_width(1),
        ))?;
        for v in [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0] {
            let y = t + bh - (bh as f64 * f64::sqrt(v)) as i32;
            let style = font(11.0).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw(&Text::new(format!("{v:.2}"), (bx + 20, y), style))?;
        }
        let cap = font(12.0)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(
            "fraction of true class",
            (bx + 66, t + bh / 2),
            cap,
        ))?;
        Ok(())
    })
}
