//! The interpretable tree figure: a shallow `linfa-trees` [`DecisionTree`], exported as plain
//! node data (for the report crate to draw) and as Graphviz DOT.
use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::RfError;

/// Deepest figure tree this crate fits (the thesis draws depth 2 binary / 6 multi-class trees).
pub const MAX_FIGURE_DEPTH: usize = 6;

/// One node of a [`TreeFigure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureNode {
    /// Index in [`TreeFigure::nodes`] (pre-order; 0 is the root).
    pub id: usize,
    /// Root = 0.
    pub depth: usize,
    /// Split feature index (`None` for a leaf).
    pub feature_index: Option<usize>,
    /// Split feature name (`None` for a leaf).
    pub feature: Option<String>,
    /// Split threshold: `x[feature] < threshold` goes left (linfa-trees' rule).
    pub threshold: Option<f32>,
    /// Training rows of each class that reached the node (`classes[j]` ↔ entry `j`).
    pub class_counts: Vec<usize>,
    /// Training rows that reached the node.
    pub samples: usize,
    /// Gini impurity of `class_counts`.
    pub gini: f64,
    /// The class the tree predicts here (the majority class).
    pub predicted: usize,
    /// Left child id (`x < threshold`).
    pub left: Option<usize>,
    /// Right child id.
    pub right: Option<usize>,
}

/// A fitted decision tree as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeFigure {
    /// Nodes in pre-order.
    pub nodes: Vec<FigureNode>,
    /// Class names.
    pub classes: Vec<String>,
    /// Feature names.
    pub feature_names: Vec<String>,
}

fn gini(counts: &[usize]) -> f64 {
    let n: usize = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    1.0 - counts
        .iter()
        .map(|&c| (c as f64 / n as f64).powi(2))
        .sum::<f64>()
}

/// Fit a `linfa-trees` gini [`DecisionTree`] of depth ≤ `max_depth` and describe it as a
/// [`TreeFigure`] (class counts from routing the training rows through it).
///
/// ```
/// use ndarray::array;
/// let x = array![[0.0f32], [1.0], [2.0], [3.0]];
/// let names = vec!["bytes".to_string()];
/// let classes = vec!["benign".to_string(), "attack".to_string()];
/// let (_tree, fig) = rf_baseline::fit_tree_figure(x.view(), &[0, 0, 1, 1], &names, &classes, 2).unwrap();
/// assert_eq!(fig.nodes[0].feature.as_deref(), Some("bytes"));
/// assert!(fig.to_dot().starts_with("digraph"));
/// ```
pub fn fit_tree_figure(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    feature_names: &[String],
    classes: &[String],
    max_depth: usize,
) -> Result<(DecisionTree<f32, usize>, TreeFigure), RfError> {
    if !(1..=MAX_FIGURE_DEPTH).contains(&max_depth) {
        return Err(RfError::InvalidParameter {
            name: "max_depth",
            reason: format!("figure depth must be in 1..={MAX_FIGURE_DEPTH}, got {max_depth}"),
        });
    }
    check_inputs(x, y, feature_names, classes)?;
    let ds = Dataset::new(x.to_owned(), Array1::from(y.to_vec()))
        .with_feature_names(feature_names.to_vec());
    let tree = DecisionTree::params().max_depth(Some(max_depth)).fit(&ds)?;
    let fig = TreeFigure::from_linfa(&tree, x, y, feature_names, classes)?;
    Ok((tree, fig))
}

fn check_inputs(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    feature_names: &[String],
    classes: &[String],
) -> Result<(), RfError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(RfError::EmptyData {
            rows: x.nrows(),
            cols: x.ncols(),
        });
    }
    if y.len() != x.nrows() {
        return Err(RfError::TargetShape {
            targets: y.len(),
            rows: x.nrows(),
        });
    }
    if feature_names.len() != x.ncols() {
        return Err(RfError::NameCount {
            what: "feature",
            expected: x.ncols(),
            got: feature_names.len(),
        });
    }
    if let Some(&m) = y.iter().max() {
        if m >= classes.len() {
            return Err(RfError::NameCount {
                what: "class",
                expected: m + 1,
                got: classes.len(),
            });
        }
    }
    Ok(())
}

impl TreeFigure {
    /// Describe a fitted linfa tree; `x`, `y` (usually its training data) give the class counts.
    pub fn from_linfa(
        tree: &DecisionTree<f32, usize>,
        x: ArrayView2<'_, f32>,
        y: &[usize],
        feature_names: &[String],
        classes: &[String],
    ) -> Result<Self, RfError> {
        check_inputs(x, y, feature_names, classes)?;
        let mut fig = TreeFigure {
            nodes: Vec::new(),
            classes: classes.to_vec(),
            feature_names: feature_names.to_vec(),
        };
        let rows: Vec<usize> = (0..x.nrows()).collect();
        fig.visit(tree.root_node(), &rows, x, y, 0);
        Ok(fig)
    }

    fn visit(
        &mut self,
        node: &TreeNode<f32, usize>,
        rows: &[usize],
        x: ArrayView2<'_, f32>,
        y: &[usize],
        depth: usize,
    ) -> usize {
        let mut counts = vec![0usize; self.classes.len()];
        for &r in rows {
            counts[y[r]] += 1;
        }
        let mut predicted = 0;
        for (j, &c) in counts.iter().enumerate() {
            if c > counts[predicted] {
                predicted = j;
            }
        }
        let id = self.nodes.len();
        self.nodes.push(FigureNode {
            id,
            depth,
            feature_index: None,
            feature: None,
            threshold: None,
            gini: gini(&counts),
            samples: rows.len(),
            class_counts: counts,
            predicted: node.prediction().unwrap_or(predicted),
            left: None,
            right: None,
        });
        let children = node.children();
        if let (false, Some(l), Some(r)) = (node.is_leaf(), children[0], children[1]) {
            let (f, t, _) = node.split();
            let (lr, rr): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&i| x[[i, f]] < t);
            let left = self.visit(l, &lr, x, y, depth + 1);
            let right = self.visit(r, &rr, x, y, depth + 1);
            let n = &mut self.nodes[id];
            n.feature_index = Some(f);
            n.feature = Some(self.feature_names[f].clone());
            n.threshold = Some(t);
            n.left = Some(left);
            n.right = Some(right);
        }
        id
    }

    /// Predicted class of each row by walking the figure (same routing as linfa-trees).
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Vec<usize> {
        x.rows()
            .into_iter()
            .map(|row| {
                let mut n = &self.nodes[0];
                while let (Some(f), Some(t), Some(l), Some(r)) =
                    (n.feature_index, n.threshold, n.left, n.right)
                {
                    n = &self.nodes[if row[f] < t { l } else { r }];
                }
                n.predicted
            })
            .collect()
    }

    /// Graphviz DOT in scikit-learn's `export_graphviz` style (split, gini, samples, value, class).
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut s = String::from(
            "digraph Tree {\nnode [shape=box, style=\"rounded\", fontname=\"helvetica\"];\n\
             edge [fontname=\"helvetica\"];\n",
        );
        for n in &self.nodes {
            let mut label = String::new();
            if let (Some(f), Some(t)) = (&n.feature, n.threshold) {
                label.push_str(&format!("{} < {}\\n", esc(f), t));
            }
            label.push_str(&format!(
                "gini = {:.3}\\nsamples = {}\\nvalue = {:?}\\nclass = {}",
                n.gini,
                n.samples,
                n.class_counts,
                esc(self.classes.get(n.predicted).map_or("?", String::as_str))
            ));
            s.push_str(&format!("{} [label=\"{}\"];\n", n.id, label));
            if let (Some(l), Some(r)) = (n.left, n.right) {
                s.push_str(&format!("{} -> {} [headlabel=\"True\"];\n", n.id, l));
                s.push_str(&format!("{} -> {} [headlabel=\"False\"];\n", n.id, r));
            }
        }
        s.push_str("}\n");
        s
    }
}
