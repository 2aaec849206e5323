//! Dataset manifests and the label taxonomy: raw label → (fine class, attack family, benign/attack).
//!
//! The manifests live in the repository's `datasets/` folder and are embedded here with
//! `include_str!`, so the library needs no files at run time.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The attack families shared across datasets (the `family` label level).
pub const FAMILIES: &[&str] = &[
    "benign",
    "reflection_ddos",
    "flood_dos",
    "brute_force",
    "scan_recon",
    "botnet",
    "web",
    "other",
];

/// One raw label spelling and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMapping {
    /// Raw label as found in the CSV (trimmed).
    pub raw: String,
    /// Fine class (e.g. `UDPLag` for both `UDP-lag` and `UDPLag`).
    pub fine: String,
    /// Attack family, one of [`FAMILIES`].
    pub family: String,
    /// `true` for every non-benign label.
    pub attack: bool,
}

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Official download page.
    pub url: String,
    /// The citation its authors ask for.
    pub citation: String,
}

/// A pinned sample file (path relative to `../shared/datasets/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleFile {
    /// Path relative to the datasets folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A dataset manifest (`datasets/<dataset>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Short id, e.g. `cic-ddos2019`.
    pub dataset: String,
    /// Display name, e.g. `CIC-DDoS2019`.
    pub name: String,
    /// Header dialect name (see [`crate::Dialect::name`]).
    pub dialect: String,
    /// How the raw label key is built: `label` (the `Label` column) or `tii-traffic-type`
    /// (`BENIGN` when `Label` is Benign, else the `Traffic Type` column).
    pub label_rule: String,
    /// Official source and citation.
    pub source: Source,
    /// Pinned sample files.
    pub samples: Vec<SampleFile>,
    /// Free-text notes.
    pub notes: String,
    /// The fine classes of the dataset's classification task, sorted.
    pub task_classes: Vec<String>,
    /// Fine classes kept in the data but excluded from the task (CIC-DDoS2019: WebDDoS).
    pub excluded_from_task: Vec<String>,
    /// Raw label → meaning.
    pub labels: Vec<LabelMapping>,
}

const MANIFEST_SOURCES: &[&str] = &[
    include_str!("../../../datasets/cic-ddos2019.json"),
    include_str!("../../../datasets/cse-cic-ids2018.json"),
    include_str!("../../../datasets/tii-ssrc-23.json"),
    include_str!("../../../datasets/cic-ids2017.json"),
];

/// All embedded manifests (CIC-DDoS2019, CSE-CIC-IDS2018, TII-SSRC-23, CIC-IDS2017).
pub fn manifests() -> &'static [Manifest] {
    static M: OnceLock<Vec<Manifest>> = OnceLock::new();
    M.get_or_init(|| {
        MANIFEST_SOURCES
            .iter()
            // The manifests are compiled in and checked by a unit test, so a parse failure is a
            // build defect, not a user-data error.
            .map(|s| serde_json::from_str(s).expect("embedded manifest is valid JSON"))
            .collect()
    })
}

/// The embedded manifest of a dataset id (`cic-ddos2019`, `cse-cic-ids2018`, `tii-ssrc-23`, `cic-ids2017`).
pub fn manifest(dataset: &str) -> Option<&'static Manifest> {
    manifests().iter().find(|m| m.dataset == dataset)
}

/// A resolved label: what one raw label means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLabel {
    /// Raw label (trimmed, lossily decoded as UTF-8).
    pub raw: String,
    /// Fine class.
    pub fine: String,
    /// Attack family.
    pub family: String,
    /// Benign (false) or attack (true).
    pub attack: bool,
    /// `false` when no manifest knew the label and the family was guessed from keywords.
    pub known: bool,
}

/// Resolves raw labels with one dataset's manifest first, then every other manifest, then a
/// keyword guess (documented in [`guess_family`]).
#[derive(Debug, Clone)]
pub struct LabelResolver {
    primary: HashMap<String, &'static LabelMapping>,
    fallback: HashMap<String, &'static LabelMapping>,
}

impl LabelResolver {
    /// A resolver that prefers `dataset`'s manifest.
    pub fn new(dataset: &str) -> Self {
        let mut primary = HashMap::new();
        let mut fallback = HashMap::new();
        for m in manifests() {
            for l in &m.labels {
                let key = l.raw.to_lowercase();
                if m.dataset == dataset {
                    primary.insert(key, l);
                } else {
                    fallback.entry(key).or_insert(l);
                }
            }
        }
        LabelResolver { primary, fallback }
    }

    /// Resolve a label key (exact spelling first, then case-insensitively).
    pub fn resolve(&self, key: &str, raw: &str) -> ResolvedLabel {
        let k = key.trim();
        let lk = k.to_lowercase();
        let hit = self
            .primary
            .get(&lk)
            .or_else(|| self.fallback.get(&lk))
            .copied();
        match hit {
            Some(m) => ResolvedLabel {
                raw: raw.to_string(),
                fine: m.fine.clone(),
                family: m.family.clone(),
                attack: m.attack,
                known: true,
            },
            None => {
                let family = guess_family(k);
                ResolvedLabel {
                    raw: raw.to_string(),
                    fine: if family == "benign" {
                        "BENIGN".to_string()
                    } else {
                        k.to_string()
                    },
                    attack: family != "benign",
                    family: family.to_string(),
                    known: false,
                }
            }
        }
    }
}

/// Family of a label no manifest knows, from keywords (case-insensitive): `benign`/`normal` →
/// benign; `drdos`/`reflect` → reflection_ddos; `brute`/`patator` → brute_force;
/// `scan`/`recon`/`gathering` → scan_recon; `bot`/`mirai` → botnet; `web`/`xss`/`sql` → web;
/// `dos`/`flood`/`syn` → flood_dos; anything else → other.
pub fn guess_family(label: &str) -> &'static str {
    let l = label.to_lowercase();
    let has = |ws: &[&str]| ws.iter().any(|w| l.contains(w));
    if has(&["benign", "normal"]) {
        "benign"
    } else if has(&["drdos", "reflect"]) {
        "reflection_ddos"
    } else if has(&["brute", "patator"]) {
        "brute_force"
    } else if has(&["scan", "recon", "gathering"]) {
        "scan_recon"
    } else if has(&["bot", "mirai"]) {
        "botnet"
    } else if has(&["web", "xss", "sql"]) {
        "web"
    } else if has(&["dos", "flood", "syn"]) {
        "flood_dos"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_and_are_consistent() {
        let ms = manifests();
        assert_eq!(ms.len(), 4);
        for m in ms {
            for l in &m.labels {
                assert!(
                    FAMILIES.contains(&l.family.as_str()),
                    "{}: {}",
                    m.dataset,
                    l.family
                );
                assert_eq!(l.attack, l.family != "benign");
            }
            let mut sorted = m.task_classes.clone();
            sorted.sort();
            assert_eq!(sorted, m.task_classes);
        }
        let ddos = manifest("cic-ddos2019").unwrap();
        assert_eq!(ddos.task_classes.len(), 17);
        assert_eq!(ddos.task_classes[0], "BENIGN");
        assert_eq!(ddos.task_classes[16], "UDPLag");
    }

    #[test]
    fn resolves_spellings() {
        let r = LabelResolver::new("cic-ddos2019");
        assert_eq!(r.resolve("UDP-lag", "UDP-lag").fine, "UDPLag");
        assert_eq!(r.resolve("udplag", "udplag").fine, "UDPLag");
        let b = r.resolve("Benign", "Benign");
        assert_eq!((b.fine.as_str(), b.attack), ("BENIGN", false));
        let u = r.resolve("Something New", "x");
        assert!(!u.known && u.attack && u.family == "other");
    }
}
