//! Corrupted model bundles are typed errors, never panics or huge allocations.
//!
//! Real bundles (fp32 MLP on the piecewise-linear input, int8 dynamic and static, forest) are
//! fitted on the real CIC-DDoS2019 sample and saved; each case copies one, mutates a file
//! (truncates it, flips bytes, edits a number in its JSON or its safetensors header, or
//! deletes it) and loads it. A load either fails with an error or gives a bundle that scores
//! flows with one probability per class. The allocator of this test binary refuses any single
//! allocation above 1 GiB, so a bundle that makes the loader allocate what its header claims
//! aborts the run.
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flowxai::bundle::{BundleModel, ModelBundle};
use flowxai::flowdata::{read_csv, LabelLevel, ReadOptions};
use flowxai::mlp_core::MlpParams;
use flowxai::preprocess::Preset;
use flowxai::quant::{DynamicQuantParams, StaticQuantParams};
use flowxai::rf_baseline::linfa::traits::Fit;
use flowxai::rf_baseline::RandomForest;
use ndarray::{Array1, Array2, Axis};
use proptest::prelude::*;

/// Refuses (returns null, so the process aborts naming the size) any allocation above 1 GiB.
struct CappedAllocator;

const ALLOCATION_CAP: usize = 1 << 30;

unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

struct Fixture {
    _dir: tempfile::TempDir,
    bundles: Vec<PathBuf>,
    /// Raw rows to score with a bundle that loads.
    rows: Array2<f32>,
}

/// Four real bundles, fitted once for the whole run.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
        let (frame, _) = read_csv(&[&csv], &ReadOptions::default()).unwrap();
        let frame = frame.task_rows();
        let t = frame.targets(LabelLevel::Fine);
        // Every 4th row: enough for real fitted parameters, quick to fit.
        let idx: Vec<usize> = (0..frame.n_rows()).step_by(4).collect();
        let x = frame.x.select(Axis(0), &idx);
        let y: Array1<usize> = idx.iter().map(|&i| t.y[i] as usize).collect();
        let k = t.classes.len();
        let dir = tempfile::tempdir().unwrap();
        let bundle = |preset: Preset, model: &dyn Fn(&Array2<f32>) -> BundleModel, name: &str| {
            let preprocessing = preset.params().fit(x.view()).unwrap();
            let z = preprocessing.transform(x.view()).unwrap();
            let b = ModelBundle {
                model: model(&z),
                preprocessing,
                feature_names: frame.feature_names.clone(),
                classes: t.classes.clone(),
                label_level: "fine".into(),
            };
            let path = dir.path().join(name);
            b.save(&path).unwrap();
            ModelBundle::load(&path).expect("the uncorrupted bundle loads");
            path
        };
        let mlp = |z: &Array2<f32>| {
            MlpParams::optimized()
                .max_epochs(2)
                .seed(1)
                .check()
                .unwrap()
                .fit(z.view(), y.view(), None, Some(k))
                .unwrap()
                .with_classes(t.classes.clone())
                .unwrap()
        };
        let bundles = vec![
            bundle(
                Preset::PiecewiseLinear,
                &|z| BundleModel::Mlp(mlp(z)),
                "mlp",
            ),
            bundle(
                Preset::PiecewiseLinear,
                &|z| {
                    BundleModel::Int8(
                        DynamicQuantParams::new()
                            .check()
                            .unwrap()
                            .quantize(mlp(z).layers())
                            .unwrap(),
                    )
                },
                "int8-dynamic",
            ),
            bundle(
                Preset::Default,
                &|z| {
                    BundleModel::Int8(
                        StaticQuantParams::new()
                            .check()
                            .unwrap()
                            .calibrate(mlp(z).layers(), z.view())
                            .unwrap(),
                    )
                },
                "int8-static",
            ),
            bundle(
                Preset::Default,
                &|z| {
                    let ds = flowxai::rf_baseline::linfa::Dataset::new(z.clone(), y.clone());
                    BundleModel::Forest(
                        RandomForest::params()
                            .n_trees(3)
                            .seed(1)
                            .fit(&ds)
                            .unwrap()
                            .with_class_names(t.classes.clone())
                            .unwrap(),
                    )
                },
                "forest",
            ),
        ];
        let rows = frame.x.slice(ndarray::s![..64, ..]).to_owned();
        Fixture {
            _dir: dir,
            bundles,
            rows,
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the first `fraction` of the file.
    Truncate { fraction: f64 },
    /// Overwrite bytes at positions given as fractions of the file length.
    Flip { at: Vec<(f64, u8)> },
    /// Replace the `which`-th run of digits in the file's JSON (a JSON file, or the JSON header
    /// of a safetensors file) with `text`.
    Number { which: usize, text: &'static str },
    /// Delete the file.
    Remove,
}

/// Numbers that break sizes, indices and counts.
const NUMBERS: [&str; 12] = [
    "0",
    "1",
    "2",
    "-1",
    "3.5",
    "1e308",
    "65535",
    "4294967295",
    "18446744073709551615",
    "99999999999999999999999",
    "1073741824",
    "NaN",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64).prop_map(|fraction| Mutation::Truncate { fraction }),
        prop::collection::vec((0.0..1.0f64, any::<u8>()), 1..8)
            .prop_map(|at| Mutation::Flip { at }),
        (0..400usize, prop::sample::select(NUMBERS.to_vec()))
            .prop_map(|(which, text)| Mutation::Number { which, text }),
        Just(Mutation::Remove),
    ]
}

/// The byte range of a file's JSON: all of a `.json` file, the header of a safetensors file.
fn json_region(name: &str, bytes: &[u8]) -> std::ops::Range<usize> {
    if name.ends_with(".json") {
        return 0..bytes.len();
    }
    match bytes.get(..8) {
        Some(h) => {
            let n = u64::from_le_bytes(h.try_into().unwrap()) as usize;
            8..(8 + n).min(bytes.len())
        }
        None => 0..0,
    }
}

fn apply(path: &Path, m: &Mutation) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(path).unwrap();
    match m {
        Mutation::Truncate { fraction } => bytes.truncate((bytes.len() as f64 * fraction) as usize),
        Mutation::Flip { at } => {
            for &(f, b) in at {
                if !bytes.is_empty() {
                    let i = ((bytes.len() as f64 * f) as usize).min(bytes.len() - 1);
                    bytes[i] = b;
                }
            }
        }
        Mutation::Number { which, text } => {
            let region = json_region(&name, &bytes);
            let mut runs = Vec::new();
            let mut i = region.start;
            while i < region.end {
                if bytes[i].is_ascii_digit() {
                    let start = i;
                    while i < region.end && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    runs.push(start..i);
                } else {
                    i += 1;
                }
            }
            if runs.is_empty() {
                return;
            }
            let run = runs[which % runs.len()].clone();
            bytes.splice(run, text.bytes());
        }
        Mutation::Remove => {
            std::fs::remove_file(path).unwrap();
            return;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_400, ..ProptestConfig::default() })]
    #[test]
    fn corrupted_bundles_load_as_errors_or_score_soundly(
        which in 0..4usize,
        file in 0..8usize,
        mutations in prop::collection::vec(mutation(), 1..3),
    ) {
        let fx = fixture();
        let src = &fx.bundles[which];
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<PathBuf> = Vec::new();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
            files.push(dir.path().join(e.file_name()));
        }
        files.sort();
        let target = &files[file % files.len()];
        for m in &mutations {
            if target.exists() {
                apply(target, m);
            }
        }
        match ModelBundle::load(dir.path()) {
            Err(e) => {
                // A typed error that names the bundle file at fault.
                let text = e.to_string();
                prop_assert!(text.contains(&dir.path().display().to_string()), "{text}");
            }
            Ok(bundle) => {
                let p = bundle.predict_proba(fx.rows.view());
                let p = p.map_err(|e| TestCaseError::fail(format!("loaded bundle fails to score: {e}")))?;
                prop_assert_eq!(p.dim(), (fx.rows.nrows(), bundle.classes.len()));
                prop_assert_eq!(bundle.predict(fx.rows.view()).unwrap().len(), fx.rows.nrows());
            }
        }
    }
}

/// A copy of fixture bundle `which` in a fresh folder.
fn copy_bundle(which: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&fixture().bundles[which]).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

/// The three defects the review found, each a typed error naming the file and field now.
#[test]
fn mismatched_parts_are_named_errors() {
    let fx = fixture();
    // The forest's preprocessing (76 outputs) before the MLP (≈ 300 inputs): used to panic in
    // inference.
    let dir = copy_bundle(0);
    std::fs::copy(
        fx.bundles[3].join("preprocessing.json"),
        dir.path().join("preprocessing.json"),
    )
    .unwrap();
    let e = ModelBundle::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("model.json") && e.contains("input width"), "{e}");

    // One class fewer in bundle.json than the model has outputs: used to panic in `explain`.
    for which in 0..4 {
        let dir = copy_bundle(which);
        edit_json(&dir.path().join("bundle.json"), |v| {
            v["classes"].as_array_mut().unwrap().pop();
        });
        let e = ModelBundle::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("field `classes`"), "bundle {which}: {e}");
    }

    // Layers of a billion units in model.json: used to allocate them before any check (the
    // capped allocator of this binary would abort the run).
    let dir = copy_bundle(0);
    edit_json(&dir.path().join("model.json"), |v| {
        for h in v["architecture"]["hidden"].as_array_mut().unwrap() {
            h["units"] = serde_json::json!(1_000_000_000u64);
        }
    });
    let e = ModelBundle::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("shape"),
        "{e}"
    );
}
