//! Every figure rendered from real-sample-like results: content (class names, feature names,
//! values in the SVG text), valid SVG, PNG and PDF.
mod common;

use common::*;
use report::figures::palette;
use report::figures::*;

fn all_formats(fig: &Figure) {
    assert_png(fig, 1.0);
    assert_pdf(fig);
}

#[test]
fn confusion_matrix_counts_show_all_17_classes_and_counts() {
    let cm = confusion();
    let fig = confusion_matrix(
        cm.view(),
        &CLASSES,
        false,
        "Confusion matrix, CIC-DDoS2019 test split",
    )
    .unwrap();
    let texts = svg_texts(&fig);
    for c in CLASSES {
        // Each class name labels a row and a column.
        assert_eq!(
            texts.iter().filter(|t| t.as_str() == c).count(),
            2,
            "class {c}"
        );
    }
    // The diagonal cell of DrDoS_LDAP and the heavy DrDoS_LDAP → LDAP confusion are printed.
    assert!(has_text(&texts, &cm[[2, 2]].to_string()));
    assert!(has_text(&texts, &cm[[2, 9]].to_string()));
    assert!(has_text(&texts, "Predicted class") && has_text(&texts, "True class"));
    // x labels are rotated so 17 names fit.
    assert_eq!(fig.svg().matches("rotate(270").count(), 17 + 2);
    all_formats(&fig);
}

#[test]
fn confusion_matrix_normalized_shows_row_fractions() {
    let cm = confusion();
    let fig =
        confusion_matrix(cm.view(), &CLASSES, true, "Row-normalised confusion matrix").unwrap();
    assert_eq!(fig.name, "confusion_matrix_normalized");
    let texts = svg_texts(&fig);
    let row: u64 = cm.row(2).sum();
    let expected = format!("{:.2}", cm[[2, 9]] as f64 / row as f64);
    assert!(has_text(&texts, &expected), "{expected}");
    assert!(has_text(&texts, "DrDoS_NetBIOS"));
    all_formats(&fig);
}

#[test]
fn confusion_matrix_rejects_wrong_shape() {
    let cm = confusion();
    let err = confusion_matrix(cm.view(), &CLASSES[..3], false, "x").unwrap_err();
    assert!(err.to_string().contains("17×17"), "{err}");
}

#[test]
fn shap_beeswarm_has_one_dot_per_flow_and_feature() {
    let expl = explanation();
    let fig = shap_beeswarm(&expl, ClassChoice::Index(1), 10, "SHAP summary (DrDoS_DNS)").unwrap();
    let texts = svg_texts(&fig);
    let imp = mean_abs_shap(&expl, Some(1)).unwrap();
    let mut order: Vec<usize> = (0..imp.len()).collect();
    order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]));
    for &j in &order[..10] {
        assert!(has_text(&texts, FEATURES[j]), "{}", FEATURES[j]);
    }
    for &j in &order[10..] {
        assert!(
            !has_text(&texts, FEATURES[j]),
            "{} should be cut",
            FEATURES[j]
        );
    }
    assert!(has_text(&texts, "class DrDoS_DNS"));
    assert!(has_text(&texts, "Feature value") && has_text(&texts, "High"));
    assert_eq!(fig.svg().matches("<circle").count(), 60 * 10);
    all_formats(&fig);
    // Predicted-class mode works too.
    let fig = shap_beeswarm(&expl, ClassChoice::Predicted, 5, "SHAP summary").unwrap();
    assert_eq!(fig.svg().matches("<circle").count(), 60 * 5);
}

#[test]
fn shap_bar_prints_mean_abs_values_in_rank_order() {
    let expl = explanation();
    let fig = shap_bar(&expl, None, 8, "Mean |SHAP|").unwrap();
    let imp = mean_abs_shap(&expl, None).unwrap();
    let texts = svg_texts(&fig);
    // flow_bytes_s has the largest weight in the test data.
    let top = format!("{:.4}", imp[0]);
    assert!(has_text(&texts, &top), "{top} in {texts:?}");
    let pos = |name: &str| texts.iter().position(|t| t == name).unwrap();
    assert!(pos("flow_bytes_s") < texts.len());
    // Hand check of mean |SHAP| for feature 0, class-averaged.
    let (n, _, k) = expl.values.dim();
    let manual: f64 = (0..n)
        .flat_map(|i| (0..k).map(move |c| (i, c)))
        .map(|(i, c)| expl.values[[i, 0, c]].abs())
        .sum::<f64>()
        / (n * k) as f64;
    assert!((manual - imp[0]).abs() < 1e-12);
    all_formats(&fig);
}

#[test]
fn shap_waterfall_reaches_model_output() {
    let expl = explanation();
    let flow = 3;
    let fig = shap_waterfall(&expl, flow, Some(13), 8, "Waterfall, flow 3, class Syn").unwrap();
    let texts = svg_texts(&fig);
    let fx = expl.model_output[[flow, 13]];
    assert!(has_text(&texts, &format!("f(x) = {fx:.3}")), "{texts:?}");
    assert!(has_text(
        &texts,
        &format!("E[f(X)] = {:.3}", expl.base_values[13])
    ));
    assert!(has_text(&texts, "5 other features"));
    assert!(has_text(&texts, "class Syn"));
    // The largest contribution is labelled with the flow's feature value and its signed value.
    let (j, v) = (0..12)
        .map(|j| (j, expl.values[[flow, j, 13]]))
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap();
    assert!(has_text(&texts, &format!("{} = ", FEATURES[j])));
    assert!(has_text(&texts, &format!("{v:+.4}")));
    all_formats(&fig);
}

#[test]
fn class_mean_waterfall_averages_over_the_class_flows() {
    let expl = explanation();
    let labels: Vec<usize> = (0..60).map(|i| i % 17).collect();
    let fig =
        shap_class_mean_waterfall(&expl, 13, Some(&labels), 6, "Mean waterfall, Syn").unwrap();
    assert_eq!(fig.name, "shap_class_mean_waterfall_Syn");
    // Flows 13, 30 and 47 are labelled Syn: the mean of their outputs is f(x) of the figure.
    let members = [13usize, 30, 47];
    let mean_out: f64 = members
        .iter()
        .map(|&i| expl.model_output[[i, 13]])
        .sum::<f64>()
        / 3.0;
    let texts = svg_texts(&fig);
    assert!(
        has_text(&texts, &format!("f(x) = {mean_out:.3}")),
        "{texts:?}"
    );
    assert!(has_text(
        &texts,
        "mean model output for class Syn over 3 flows"
    ));
    // Row labels carry min | mean | max of the feature over those flows.
    let v: Vec<f64> = members.iter().map(|&i| expl.data[[i, 0]] as f64).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let label = format!("flow_bytes_s ({} | ", fmt_si(lo));
    assert!(has_text(&texts, &label), "{label} in {texts:?}");
    all_formats(&fig);
    assert!(shap_class_mean_waterfall(&expl, 13, Some(&[0; 60]), 6, "x").is_err());
}

#[test]
fn shap_force_labels_largest_contributions() {
    let expl = explanation();
    let fig = shap_force(&expl, 5, None, "Force plot, flow 5").unwrap();
    let texts = svg_texts(&fig);
    let c = (0..17)
        .max_by(|&a, &b| expl.model_output[[5, a]].total_cmp(&expl.model_output[[5, b]]))
        .unwrap();
    assert!(has_text(
        &texts,
        &format!("f(x) = {:.3}", expl.model_output[[5, c]])
    ));
    assert!(has_text(&texts, &format!("class {}", CLASSES[c])));
    assert!(has_text(&texts, "base value"));
    assert!(fig.svg().matches("<polygon").count() >= 10);
    all_formats(&fig);
}

#[test]
fn shap_heatmap_has_flows_times_features_cells() {
    let expl = explanation();
    let fig = shap_heatmap(&expl, ClassChoice::Index(0), 6, "SHAP heat map (BENIGN)").unwrap();
    let texts = svg_texts(&fig);
    assert!(has_text(&texts, "flow_bytes_s"));
    assert!(has_text(&texts, "flows (60)"));
    assert!(has_text(&texts, "SHAP value"));
    // 60 × 6 cells plus frames and the colour bar.
    assert!(fig.svg().matches("<rect").count() >= 360);
    all_formats(&fig);
}

#[test]
fn shap_dependence_colours_by_class_and_hides_infinite_values() {
    let mut expl = explanation();
    expl.data[[7, 1]] = f32::INFINITY;
    let labels: Vec<usize> = (0..60).map(|i| i % 17).collect();
    let fig = shap_dependence(
        &expl,
        1,
        ClassChoice::Index(2),
        Some(&labels),
        true,
        "packet_length_mean",
    )
    .unwrap();
    assert_eq!(fig.name, "shap_dependence_packet_length_mean");
    assert_texts(
        &fig,
        &[
            "log10(1 + packet_length_mean)",
            "(1 flows with a non-finite value not shown)",
            "SHAP value (class DrDoS_LDAP)",
            "UDPLag",
        ],
    );
    assert_eq!(fig.svg().matches("<circle").count(), 59);
    all_formats(&fig);
    assert!(shap_dependence(&expl, 12, ClassChoice::Predicted, None, false, "x").is_err());
    assert!(shap_dependence(
        &expl,
        0,
        ClassChoice::Predicted,
        Some(&labels[1..]),
        false,
        "x"
    )
    .is_err());
}

#[test]
fn shap_figures_reject_bad_indices() {
    let expl = explanation();
    assert!(shap_waterfall(&expl, 60, None, 5, "x").is_err());
    assert!(shap_force(&expl, 0, Some(17), "x").is_err());
    assert!(shap_beeswarm(&expl, ClassChoice::Index(99), 5, "x").is_err());
    let mut bad = explanation();
    bad.feature_names.pop();
    assert!(shap_bar(&bad, None, 5, "x")
        .unwrap_err()
        .to_string()
        .contains("feature names"));
    let mut bad = explanation();
    bad.values[[4, 2, 1]] = f64::NAN;
    let err = shap_beeswarm(&bad, ClassChoice::Index(1), 5, "x").unwrap_err();
    assert!(
        err.to_string()
            .contains("flow 4, feature 2, class 1 is NaN"),
        "{err}"
    );
}

#[test]
fn infinite_feature_values_are_drawn_not_rejected() {
    // CIC-DDoS2019's Flow Bytes/s contains "Infinity"; such a flow still gets a (grey) dot.
    let mut expl = explanation();
    expl.data[[0, 0]] = f32::INFINITY;
    let fig = shap_beeswarm(&expl, ClassChoice::Index(0), 3, "x").unwrap();
    assert_eq!(fig.svg().matches("<circle").count(), 60 * 3);
    assert!(fig.svg().contains("#555555"));
    let fig = shap_waterfall(&expl, 0, Some(0), 5, "x").unwrap();
    assert_texts(&fig, &["flow_bytes_s = inf"]);
}

#[test]
fn rendering_is_deterministic() {
    let expl = explanation();
    let a = shap_beeswarm(&expl, ClassChoice::Predicted, 8, "x").unwrap();
    let b = shap_beeswarm(&expl, ClassChoice::Predicted, 8, "x").unwrap();
    assert_eq!(a.svg(), b.svg());
    assert!(a.to_png(1.0).unwrap() == b.to_png(1.0).unwrap());
    // svg2pdf 0.13 writes resource dictionaries from a std HashMap, so PDF bytes may differ in
    // key order only: same length, same objects.
    let (pa, pb) = (a.to_pdf().unwrap(), b.to_pdf().unwrap());
    assert_eq!(pa.len(), pb.len());
}

#[test]
fn decision_tree_shows_splits_samples_and_classes() {
    let nodes = tree_nodes();
    let fig = decision_tree(
        &nodes,
        &CLASSES,
        SplitRule::LessOrEqual,
        None,
        "Decision tree (depth 2)",
    )
    .unwrap();
    let texts = svg_texts(&fig);
    assert!(has_text(&texts, "flow_bytes_s <= 125k"), "{texts:?}");
    assert!(has_text(&texts, "packet_length_mean <= 412"));
    assert!(has_text(&texts, "flow_iat_min <= 3.50"));
    assert!(has_text(&texts, &format!("samples = {}", nodes[0].samples)));
    assert!(has_text(&texts, "Syn ("));
    for c in CLASSES {
        assert!(texts.iter().any(|t| t == c), "legend lacks {c}");
    }
    all_formats(&fig);
    // Cut at depth 1: the leaves disappear.
    let fig = decision_tree(
        &nodes,
        &CLASSES,
        SplitRule::Less,
        Some(1),
        "Decision tree, top",
    )
    .unwrap();
    assert_texts(&fig, &["flow_bytes_s < 125k", "…"]);
    assert_eq!(
        svg_texts(&fig)
            .iter()
            .filter(|t| t.starts_with("samples = "))
            .count(),
        3
    );
}

#[test]
fn decision_tree_rejects_broken_node_lists() {
    let mut nodes = tree_nodes();
    nodes[1].children = Some((3, 99));
    assert!(decision_tree(&nodes, &CLASSES, SplitRule::Less, None, "x")
        .unwrap_err()
        .to_string()
        .contains("99"));
    let mut nodes = tree_nodes();
    nodes[2].children = Some((3, 4));
    assert!(decision_tree(&nodes, &CLASSES, SplitRule::Less, None, "x").is_err());
}

#[test]
fn class_histograms_have_one_panel_per_class() {
    let mut rng = Rng::new(3);
    let n = 17 * 40;
    let labels: Vec<usize> = (0..n).map(|i| i % 17).collect();
    let values: Vec<f32> = labels
        .iter()
        .map(|&l| (rng.next() * 10f64.powi(1 + (l % 6) as i32)) as f32)
        .collect();
    let fig = class_feature_histograms(
        "flow_bytes_s",
        &values,
        &labels,
        &CLASSES,
        20,
        true,
        "flow_bytes_s per class",
    )
    .unwrap();
    let texts = svg_texts(&fig);
    for c in CLASSES {
        assert!(has_text(&texts, &format!("{c} (n=40)")), "{c}");
    }
    assert!(has_text(&texts, "log10(1 + flow_bytes_s)"));
    assert_eq!(fig.name, "hist_flow_bytes_s");
    all_formats(&fig);
    assert!(
        class_feature_histograms("f", &values, &labels[1..], &CLASSES, 20, false, "x").is_err()
    );
}

#[test]
fn training_curves_show_three_panels() {
    let loss: Vec<f64> = (0..80)
        .map(|e| 0.9 * (-(e as f64) / 15.0).exp() + 0.08)
        .collect();
    let val: Vec<f64> = loss.iter().map(|v| v + 0.02).collect();
    let acc: Vec<f64> = loss.iter().map(|v| 1.0 - v).collect();
    let lr: Vec<f64> = (0..80).map(|e| 0.004 * 0.5f64.powi(e / 20)).collect();
    let h = TrainingHistory {
        train_loss: &loss,
        val_loss: &val,
        train_accuracy: &acc,
        val_accuracy: &[],
        learning_rate: &lr,
    };
    let fig = training_curves(&h, "MLP training, CIC-DDoS2019").unwrap();
    assert_texts(
        &fig,
        &[
            "Loss",
            "Accuracy",
            "Learning rate",
            "epoch",
            "train",
            "validation",
            "4.0e-3",
        ],
    );
    all_formats(&fig);
    assert!(training_curves(&TrainingHistory::default(), "x").is_err());
}

#[test]
fn throughput_bars_label_every_model() {
    let bars = vec![
        ThroughputBar {
            label: "flowxai MLP fp32".into(),
            flows_per_s: 2.4e6,
        },
        ThroughputBar {
            label: "flowxai MLP int8".into(),
            flows_per_s: 3.1e6,
        },
        ThroughputBar {
            label: "PyTorch fp32".into(),
            flows_per_s: 8.0e5,
        },
        ThroughputBar {
            label: "ONNX Runtime".into(),
            flows_per_s: 1.2e6,
        },
    ];
    let fig = throughput_bars(&bars, "Inference throughput (batch 1024)").unwrap();
    assert_texts(
        &fig,
        &[
            "flowxai MLP int8",
            "PyTorch fp32",
            "3.10M flows/s",
            "800k flows/s",
            "throughput (flows/s)",
        ],
    );
    all_formats(&fig);
}

#[test]
fn figure_write_creates_all_formats() {
    let fig = throughput_bars(
        &[ThroughputBar {
            label: "a".into(),
            flows_per_s: 1.0,
        }],
        "t",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = fig
        .write(dir.path(), &[Format::Svg, Format::Png, Format::Pdf])
        .unwrap();
    assert_eq!(paths.len(), 3);
    for p in paths {
        assert!(
            std::fs::metadata(&p).unwrap().len() > 100,
            "{}",
            p.display()
        );
    }
    assert_eq!(fig.clone().with_name("a b/c").name, "a_b_c");
}

#[test]
fn palette_is_monotone_and_text_contrast_flips() {
    // viridis gets lighter from 0 to 1 (perceptual ordering without hue).
    let lum = |c: plotters::style::RGBColor| {
        0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64
    };
    let mut prev = -1.0;
    for i in 0..=20 {
        let l = lum(palette::viridis(i as f64 / 20.0));
        assert!(l > prev);
        prev = l;
    }
    // 17 class colours are all different.
    let colours: std::collections::HashSet<(u8, u8, u8)> = (0..17)
        .map(|i| {
            let c = palette::category(i, 17);
            (c.0, c.1, c.2)
        })
        .collect();
    assert_eq!(colours.len(), 17);
    assert_eq!(
        palette::text_on(palette::blues(0.0)),
        plotters::style::RGBColor(0, 0, 0)
    );
    assert_eq!(
        palette::text_on(palette::blues(1.0)),
        plotters::style::RGBColor(255, 255, 255)
    );
}
