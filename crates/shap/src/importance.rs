//! Global importance from an [`Explanation`]: mean |SHAP| per feature, per class and overall,
//! and the ranking table (rank, feature, importance) the thesis shows.
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::Explanation;

/// One feature's importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// Feature name.
    pub feature: String,
    /// Overall importance (see [`GlobalImportance::overall`]).
    pub overall: f64,
    /// Mean |SHAP| per class.
    pub per_class: Vec<f64>,
}

/// One row of a ranking table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRow {
    /// 1-based rank.
    pub rank: usize,
    /// Feature name.
    pub feature: String,
    /// The importance the rank is by.
    pub importance: f64,
}

/// Mean |SHAP| per feature over the explained flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalImportance {
    /// Feature names (rows of `per_class`).
    pub feature_names: Vec<String>,
    /// Class names (columns of `per_class`).
    pub class_names: Vec<String>,
    /// `[features, classes]`: mean over flows of |SHAP value|.
    pub per_class: Array2<f64>,
    /// Per feature: the sum over classes of `per_class` — the total bar length of shap's
    /// multi-class bar summary plot (`summary_plot(..., plot_type="bar")`), which orders
    /// features by it. For a single output it is that output's mean |SHAP|.
    pub overall: Vec<f64>,
}

impl GlobalImportance {
    /// Computes the importances (0 for an explanation without flows).
    pub fn from_explanation(ex: &Explanation) -> Self {
        let (n, m, k) = ex.values.dim();
        let mut per_class = Array2::<f64>::zeros((m, k));
        if n > 0 {
            for i in 0..n {
                for j in 0..m {
                    for c in 0..k {
                        per_class[[j, c]] += ex.values[[i, j, c]].abs();
                    }
                }
            }
            per_class.mapv_inplace(|v| v / n as f64);
        }
        let overall = per_class.rows().into_iter().map(|r| r.sum()).collect();
        Self {
            feature_names: ex.feature_names.clone(),
            class_names: ex.class_names.clone(),
            per_class,
            overall,
        }
    }

    fn rank(&self, score: &[f64]) -> Vec<RankRow> {
        let mut idx: Vec<usize> = (0..score.len()).collect();
        // Descending importance; ties keep feature order (stable sort).
        idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
        idx.iter()
            .enumerate()
            .map(|(r, &j)| RankRow {
                rank: r + 1,
                feature: self.feature_names[j].clone(),
                importance: score[j],
            })
            .collect()
    }

    /// Features ranked by overall importance.
    pub fn ranking(&self) -> Vec<RankRow> {
        self.rank(&self.overall)
    }

    /// Features ranked by mean |SHAP| of one class (`None` if out of range).
    pub fn ranking_for_class(&self, class: usize) -> Option<Vec<RankRow>> {
        (class < self.per_class.ncols()).then(|| self.rank(&self.per_class.column(class).to_vec()))
    }

    /// Every feature with its overall and per-class importance, in feature order.
    pub fn features(&self) -> Vec<FeatureImportance> {
        (0..self.feature_names.len())
            .map(|j| FeatureImportance {
                feature: self.feature_names[j].clone(),
                overall: self.overall[j],
                per_class: self.per_class.row(j).to_vec(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    #[test]
    fn mean_abs_and_ranking() {
        let mut values = Array3::<f64>::zeros((2, 3, 2));
        values[[0, 0, 0]] = 1.0;
        values[[1, 0, 0]] = -3.0; // f0 class 0: mean |.| = 2
        values[[0, 2, 1]] = 4.0; // f2 class 1: mean = 2, class 0: 0
        values[[1, 2, 0]] = 1.0; // f2 class 0: mean 0.5
        let ex = Explanation {
            values,
            base_values: vec![0.0, 0.0],
            data: array![[0.0f32, 0.0, 0.0], [0.0, 0.0, 0.0]],
            model_output: Array2::zeros((2, 2)),
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            class_names: vec!["x".into(), "y".into()],
        };
        let g = GlobalImportance::from_explanation(&ex);
        assert_eq!(g.per_class[[0, 0]], 2.0);
        assert_eq!(g.per_class[[2, 0]], 0.5);
        assert_eq!(g.overall, vec![2.0, 0.0, 2.5]);
        let r = g.ranking();
        assert_eq!(r[0].feature, "c");
        assert_eq!(r[0].rank, 1);
        assert_eq!(r[1].feature, "a");
        assert_eq!(r[2].feature, "b");
        let r1 = g.ranking_for_class(1).unwrap();
        assert_eq!(r1[0].feature, "c");
        assert!(g.ranking_for_class(2).is_none());
    }
}
