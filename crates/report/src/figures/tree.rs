//! The decision-tree figure: boxes with split, samples, majority class and class distribution.
use std::collections::HashMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::palette::{category, GREY};
use super::{fmt_si, font, render, text_width, titled, Figure, FigureError};

/// One node of a fitted decision tree, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// Node id, unique within the tree.
    pub id: usize,
    /// Split feature name; `None` for a leaf.
    pub feature: Option<String>,
    /// Split threshold: flows with `feature <= threshold` (or `<`, see [`SplitRule`]) go to the
    /// first child.
    pub threshold: Option<f64>,
    /// Training flows reaching this node.
    pub samples: u64,
    /// Training flows per class at this node (`class_names` order).
    pub class_counts: Vec<u64>,
    /// `(left, right)` child ids: left = the flows that pass the split test; `None` for a leaf.
    pub children: Option<(usize, usize)>,
}

/// Which comparison sends a flow to the left child; it is printed in every split box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitRule {
    /// `feature <= threshold` goes left (scikit-learn).
    LessOrEqual,
    /// `feature < threshold` goes left (linfa-trees, flowxai's rf-baseline).
    Less,
}

/// Tree layout state: `placed` = (node index, depth, x slot, cut off?), `edges` = (parent
/// position, child position, left child?).
struct Layout<'a> {
    nodes: &'a [TreeNode],
    by_id: &'a HashMap<usize, usize>,
    limit: usize,
    next_slot: f64,
    placed: Vec<(usize, usize, f64, bool)>,
    edges: Vec<(usize, usize, bool)>,
}

impl Layout<'_> {
    /// Places node `i` and its subtree; returns its position in `placed`. Recursion depth is the
    /// tree depth (validated: one root, one parent per node, so it terminates).
    fn place(&mut self, i: usize, depth: usize) -> usize {
        let pos = self.placed.len();
        self.placed.push((i, depth, 0.0, false));
        match self.nodes[i].children {
            Some((l, r)) if depth < self.limit => {
                let lp = self.place(self.by_id[&l], depth + 1);
                let rp = self.place(self.by_id[&r], depth + 1);
                self.placed[pos].2 = (self.placed[lp].2 + self.placed[rp].2) / 2.0;
                self.edges.push((pos, lp, true));
                self.edges.push((pos, rp, false));
            }
            children => {
                self.placed[pos].2 = self.next_slot;
                self.placed[pos].3 = children.is_some();
                self.next_slot += 1.0;
            }
        }
        pos
    }
}

const BOX_W: i32 = 170;
const BOX_H: i32 = 78;
const GAP_X: i32 = 14;
const GAP_Y: i32 = 46;

/// Draws a decision tree from its node list, down to `max_depth` levels below the root (deeper
/// subtrees are drawn as "…"). Each box shows the split (`feature <= threshold` or
/// `feature < threshold` per `rule`), the samples, the majority class with its share and the
/// class distribution as a stacked bar; a legend names the class colours.
pub fn decision_tree<S: AsRef<str>>(
    nodes: &[TreeNode],
    class_names: &[S],
    rule: SplitRule,
    max_depth: Option<usize>,
    title: &str,
) -> Result<Figure, FigureError> {
    let k = class_names.len();
    let names: Vec<&str> = class_names.iter().map(|s| s.as_ref()).collect();
    let bad = |m: String| Err(FigureError::Input(format!("decision tree: {m}")));
    if nodes.is_empty() || k == 0 {
        return bad("no nodes or no classes".into());
    }
    let mut by_id = HashMap::new();
    for (i, nd) in nodes.iter().enumerate() {
        if by_id.insert(nd.id, i).is_some() {
            return bad(format!("duplicate node id {}", nd.id));
        }
        if nd.class_counts.len() != k {
            return bad(format!(
                "node {} has {} class counts for {k} classes",
                nd.id,
                nd.class_counts.len()
            ));
        }
        if nd.children.is_some() && (nd.feature.is_none() || nd.threshold.is_none()) {
            return bad(format!(
                "internal node {} has no feature or threshold",
                nd.id
            ));
        }
    }
    let mut is_child = vec![false; nodes.len()];
    for nd in nodes {
        if let Some((l, r)) = nd.children {
            for c in [l, r] {
                match by_id.get(&c) {
                    Some(&i) if !is_child[i] => is_child[i] = true,
                    Some(_) => return bad(format!("node {c} has two parents")),
                    None => return bad(format!("node {} names missing child {c}", nd.id)),
                }
            }
        }
    }
    let roots: Vec<usize> = (0..nodes.len()).filter(|&i| !is_child[i]).collect();
    if roots.len() != 1 {
        return bad(format!("expected one root, found {}", roots.len()));
    }
    let limit = max_depth.unwrap_or(usize::MAX);

    // Layout: leaves (or cut-off nodes) take consecutive slots; a parent sits above its children.
    let mut layout = Layout {
        nodes,
        by_id: &by_id,
        limit,
        next_slot: 0.0,
        placed: Vec::new(),
        edges: Vec::new(),
    };
    layout.place(roots[0], 0);
    let Layout {
        next_slot,
        placed,
        edges,
        ..
    } = layout;
    let slots = next_slot as i32;
    let depth = placed.iter().map(|p| p.1).max().unwrap_or(0) as i32;

    let legend_item_w = names
        .iter()
        .map(|n| text_width(n, 12.0))
        .max()
        .unwrap_or(40) as i32
        + 30;
    let width = (slots * (BOX_W + GAP_X) + 40)
        .max(legend_item_w * 3 + 40)
        .max(600);
    let per_row = ((width - 40) / legend_item_w).max(1);
    let legend_rows = (k as i32 + per_row - 1) / per_row;
    let height = 36 + 20 + (depth + 1) * (BOX_H + GAP_Y) + legend_rows * 22 + 30;
    let colors: Vec<RGBColor> = (0..k).map(|c| category(c, k)).collect();

    render(
        "decision_tree",
        title,
        width as u32,
        height as u32,
        |root| {
            let area = titled(root, title)?;
            let cx = |slot: f64| 20 + (slot * (BOX_W + GAP_X) as f64) as i32 + BOX_W / 2;
            let ty = |d: usize| 10 + d as i32 * (BOX_H + GAP_Y);
            for &(p, c, left) in &edges {
                let (px, py) = (cx(placed[p].2), ty(placed[p].1) + BOX_H);
                let (qx, qy) = (cx(placed[c].2), ty(placed[c].1));
                area.draw(&PathElement::new(
                    vec![(px, py), (qx, qy)],
                    GREY.stroke_width(1),
                ))?;
                let st = font(11.0)
                    .color(&GREY)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let txt = if left { "yes" } else { "no" };
                area.draw(&Text::new(
                    txt,
                    ((px + qx) / 2 + if left { -12 } else { 12 }, (py + qy) / 2),
                    st,
                ))?;
            }
            for &(i, d, slot, truncated) in &placed {
                let nd = &nodes[i];
                let total: u64 = nd.class_counts.iter().sum();
                let (maj, maj_n) =
                    nd.class_counts
                        .iter()
                        .enumerate()
                        .fold(
                            (0, 0),
                            |best, (c, &v)| if v > best.1 { (c, v) } else { best },
                        );
                let purity = if total > 0 {
                    maj_n as f64 / total as f64
                } else {
                    0.0
                };
                let tint = ((purity - 1.0 / k as f64) / (1.0 - 1.0 / k as f64).max(1e-9))
                    .clamp(0.0, 1.0)
                    * 0.45;
                let mc = colors[maj];
                let mix = |a: u8| (255.0 - (255.0 - a as f64) * tint) as u8;
                let fill = RGBColor(mix(mc.0), mix(mc.1), mix(mc.2));
                let (x0, y0) = (cx(slot) - BOX_W / 2, ty(d));
                area.draw(&Rectangle::new(
                    [(x0, y0), (x0 + BOX_W, y0 + BOX_H)],
                    fill.filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(x0, y0), (x0 + BOX_W, y0 + BOX_H)],
                    GREY.stroke_width(1),
                ))?;
                let st = font(12.0).pos(Pos::new(HPos::Center, VPos::Center));
                let first = match (&nd.feature, nd.threshold, nd.children) {
                    (Some(f), Some(t), Some(_)) => {
                        let op = match rule {
                            SplitRule::LessOrEqual => "<=",
                            SplitRule::Less => "<",
                        };
                        format!("{f} {op} {}", fmt_si(t))
                    }
                    _ => "leaf".to_string(),
                };
                let mid = x0 + BOX_W / 2;
                area.draw(&Text::new(first, (mid, y0 + 12), st.clone()))?;
                area.draw(&Text::new(
                    format!("samples = {}", nd.samples),
                    (mid, y0 + 28),
                    st.clone(),
                ))?;
                area.draw(&Text::new(
                    format!("{} ({:.0}%)", names[maj], purity * 100.0),
                    (mid, y0 + 44),
                    st.clone(),
                ))?;
                // Class distribution as a stacked bar.
                let (bx, by, bw) = (x0 + 8, y0 + 56, BOX_W - 16);
                if total > 0 {
                    let mut acc = 0u64;
                    for (c, &v) in nd.class_counts.iter().enumerate() {
                        if v == 0 {
                            continue;
                        }
                        let a = bx + (acc as f64 / total as f64 * bw as f64) as i32;
                        acc += v;
                        let b = bx + (acc as f64 / total as f64 * bw as f64) as i32;
                        area.draw(&Rectangle::new(
                            [(a, by), (b.max(a + 1), by + 12)],
                            colors[c].filled(),
                        ))?;
                    }
                }
                area.draw(&Rectangle::new(
                    [(bx, by), (bx + bw, by + 12)],
                    GREY.stroke_width(1),
                ))?;
                if truncated {
                    let st = font(14.0)
                        .color(&GREY)
                        .pos(Pos::new(HPos::Center, VPos::Top));
                    area.draw(&Text::new("…", (mid, y0 + BOX_H + 4), st))?;
                }
            }
            let ly = 10 + (depth + 1) * (BOX_H + GAP_Y);
            for c in 0..k as i32 {
                let (row, col) = (c / per_row, c % per_row);
                let (x, y) = (20 + col * legend_item_w, ly + row * 22);
                area.draw(&Rectangle::new(
                    [(x, y), (x + 14, y + 14)],
                    colors[c as usize].filled(),
                ))?;
                let st = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
                area.draw(&Text::new(
                    names[c as usize].to_string(),
                    (x + 20, y + 7),
                    st,
                ))?;
            }
            Ok(())
        },
    )
}
