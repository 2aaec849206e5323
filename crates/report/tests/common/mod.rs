//! Real-sample-like test data: the 17 CIC-DDoS2019 classes (THESIS.md order), canonical feature
//! names, a test-split-sized confusion matrix and an additive multi-class SHAP explanation.
#![allow(dead_code)]
use ndarray::{Array2, Array3};
use report::figures::{Figure, TreeNode};
use resvg::usvg;

pub const CLASSES: [&str; 17] = [
    "BENIGN",
    "DrDoS_DNS",
    "DrDoS_LDAP",
    "DrDoS_MSSQL",
    "DrDoS_NTP",
    "DrDoS_NetBIOS",
    "DrDoS_SNMP",
    "DrDoS_SSDP",
    "DrDoS_UDP",
    "LDAP",
    "MSSQL",
    "NetBIOS",
    "Portmap",
    "Syn",
    "TFTP",
    "UDP",
    "UDPLag",
];

pub const FEATURES: [&str; 12] = [
    "flow_bytes_s",
    "packet_length_mean",
    "flow_iat_min",
    "bwd_packets_s",
    "fwd_packet_length_max",
    "flow_duration",
    "total_fwd_packets",
    "init_win_bytes_forward",
    "flow_iat_mean",
    "min_seg_size_forward",
    "fwd_iat_total",
    "destination_port",
];

/// Deterministic pseudo-random numbers in [0, 1) (SplitMix64), so the data need no rand crate.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A 17×17 confusion matrix with ~17,075 flows per class (the thesis' 290,261-flow test split),
/// mostly diagonal, with the DrDoS_* / plain reflection pairs confused as in the thesis.
pub fn confusion() -> Array2<u64> {
    let mut rng = Rng::new(7);
    let mut cm = Array2::<u64>::zeros((17, 17));
    for i in 0..17 {
        let total = 17_000 + (rng.next() * 150.0) as u64;
        let mut left = total;
        for j in 0..17 {
            if j != i && rng.next() < 0.25 {
                let v = (rng.next() * 300.0) as u64;
                cm[[i, j]] = v;
                left -= v;
            }
        }
        cm[[i, i]] = left;
    }
    // DrDoS_LDAP (2) ↔ LDAP (9): a heavy confusion, as in the thesis.
    cm[[2, 9]] += 2_000;
    cm[[2, 2]] -= 2_000;
    cm
}

/// A SHAP explanation of 60 flows × 12 features × 17 classes, additive by construction.
pub fn explanation() -> shap::Explanation {
    let (n, m, k) = (60, FEATURES.len(), CLASSES.len());
    let mut rng = Rng::new(42);
    let data = Array2::from_shape_fn((n, m), |(_, j)| {
        let scale = [
            1e6, 500.0, 1e3, 1e5, 1500.0, 1e7, 50.0, 65535.0, 1e4, 32.0, 1e6, 53.0,
        ][j];
        (rng.next() * scale) as f32
    });
    let weight: Vec<f64> = (0..m).map(|j| 0.2 / (1.0 + j as f64)).collect();
    let values = Array3::from_shape_fn((n, m, k), |(i, j, c)| {
        let x = data[[i, j]] as f64;
        let s = [
            1e6, 500.0, 1e3, 1e5, 1500.0, 1e7, 50.0, 65535.0, 1e4, 32.0, 1e6, 53.0,
        ][j];
        let sign = if (c + j) % 2 == 0 { 1.0 } else { -1.0 };
        sign * weight[j] * (x / s - 0.5) + 0.002 * ((i * 7 + j * 3 + c) % 5) as f64
    });
    let base_values: Vec<f64> = (0..k).map(|_| 1.0 / k as f64).collect();
    let model_output = Array2::from_shape_fn((n, k), |(i, c)| {
        base_values[c] + (0..m).map(|j| values[[i, j, c]]).sum::<f64>()
    });
    shap::Explanation {
        values,
        base_values,
        data,
        model_output,
        feature_names: FEATURES.iter().map(|s| s.to_string()).collect(),
        class_names: CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

/// A depth-2 tree over three features with 17-class counts.
pub fn tree_nodes() -> Vec<TreeNode> {
    let counts = |seed: u64, dominant: usize| -> Vec<u64> {
        let mut rng = Rng::new(seed);
        (0..17)
            .map(|c| {
                if c == dominant {
                    5_000
                } else {
                    (rng.next() * 400.0) as u64
                }
            })
            .collect()
    };
    let node =
        |id, feature: Option<&str>, threshold: Option<f64>, counts: Vec<u64>, children| TreeNode {
            id,
            feature: feature.map(str::to_string),
            threshold,
            samples: counts.iter().sum(),
            class_counts: counts,
            children,
        };
    let leaves = [counts(1, 13), counts(2, 2), counts(3, 0), counts(4, 16)];
    let sum =
        |a: &Vec<u64>, b: &Vec<u64>| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<u64>>();
    let l = sum(&leaves[0], &leaves[1]);
    let r = sum(&leaves[2], &leaves[3]);
    let root = sum(&l, &r);
    vec![
        node(0, Some("flow_bytes_s"), Some(125_000.5), root, Some((1, 2))),
        node(1, Some("packet_length_mean"), Some(412.25), l, Some((3, 4))),
        node(2, Some("flow_iat_min"), Some(3.5), r, Some((5, 6))),
        node(3, None, None, leaves[0].clone(), None),
        node(4, None, None, leaves[1].clone(), None),
        node(5, None, None, leaves[2].clone(), None),
        node(6, None, None, leaves[3].clone(), None),
    ]
}

/// Parses the SVG (roxmltree for XML, usvg for SVG semantics) and returns the text of every
/// `<text>` element.
pub fn svg_texts(fig: &Figure) -> Vec<String> {
    let doc = usvg::roxmltree::Document::parse(fig.svg()).expect("SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let opt = usvg::Options {
        fontdb: report::font::font_database(),
        ..Default::default()
    };
    let tree = usvg::Tree::from_str(fig.svg(), &opt).expect("usvg parses the SVG");
    assert_eq!(tree.size().width().round() as u32, fig.width);
    assert_eq!(tree.size().height().round() as u32, fig.height);
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

pub fn has_text(texts: &[String], needle: &str) -> bool {
    texts.iter().any(|t| t.contains(needle))
}

pub fn assert_texts(fig: &Figure, needles: &[&str]) {
    let texts = svg_texts(fig);
    for n in needles {
        assert!(
            has_text(&texts, n),
            "{:?} not found in the text of figure {}: {:?}",
            n,
            fig.name,
            texts
        );
    }
}

/// PNG magic bytes, decodes, and is `scale` × the SVG size.
pub fn assert_png(fig: &Figure, scale: f32) {
    let png = fig.to_png(scale).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let pix = resvg::tiny_skia::Pixmap::decode_png(&png).expect("PNG decodes");
    assert_eq!(pix.width(), (fig.width as f32 * scale).round() as u32);
    assert_eq!(pix.height(), (fig.height as f32 * scale).round() as u32);
    // Not a blank canvas: some pixels are dark (text, axes).
    let dark = pix
        .pixels()
        .iter()
        .filter(|p| p.red() < 100 && p.green() < 100 && p.blue() < 100)
        .count();
    assert!(
        dark > 100,
        "figure {} PNG has only {dark} dark pixels",
        fig.name
    );
}

/// `%PDF-` header, `%%EOF` trailer, one page, the bundled font embedded.
pub fn assert_pdf(fig: &Figure) {
    let pdf = fig.to_pdf().unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "no %PDF header");
    let tail = String::from_utf8_lossy(&pdf[pdf.len().saturating_sub(32)..]).to_string();
    assert!(
        tail.trim_end().ends_with("%%EOF"),
        "no %%EOF trailer: {tail:?}"
    );
    let text = String::from_utf8_lossy(&pdf);
    assert!(
        text.contains("/Type /Page") || text.contains("/Type/Page"),
        "no page object"
    );
    assert!(text.contains("Roboto"), "bundled font not embedded");
}
