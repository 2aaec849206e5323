//! Plain DataFusion and in-process Ballista give the same answers as calling the model directly.
mod common;

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use flowxai_ballista::{score, scoring_dataframe, Engine, ScoreOptions};
use flowxai_datafusion::{register, ScoreExprs};

fn options(f: &common::Fixture, name: &str, proba: bool, explain: Option<usize>) -> ScoreOptions {
    ScoreOptions {
        inputs: f.inputs.clone(),
        output: Some(f.dir.path().join(name)),
        probabilities: proba,
        explain_top_k: explain,
        target_partitions: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datafusion_and_ballista_equal_the_model_called_directly() {
    let f = common::fixture();
    for (bundle, explain) in [(&f.forest_dir, Some(3)), (&f.mlp_dir, None)] {
        let model = common::load(bundle);
        let local = options(&f, "local.parquet", true, explain);
        let summary = score(&Engine::Local, Arc::clone(&model), &local)
            .await
            .unwrap();
        assert_eq!(summary.rows, f.frame.n_rows());
        let df = options(&f, "datafusion.parquet", true, explain);
        score(&Engine::DataFusion, Arc::clone(&model), &df)
            .await
            .unwrap();
        let n =
            common::assert_same_scores(local.output.as_ref().unwrap(), df.output.as_ref().unwrap());
        assert_eq!(n, f.frame.n_rows());

        // The label-only projection (predict_label) agrees with the probabilities' argmax.
        let labels_only = options(&f, "labels.parquet", false, None);
        score(&Engine::DataFusion, Arc::clone(&model), &labels_only)
            .await
            .unwrap();
        let a = common::read_scores(local.output.as_ref().unwrap());
        let b = common::read_scores(labels_only.output.as_ref().unwrap());
        assert!(a
            .iter()
            .zip(&b)
            .all(|((ka, ra), (kb, rb))| ka == kb && ra.predicted == rb.predicted));

        // In-process Ballista: a scheduler and an executor talking over loopback gRPC.
        let ctx = flowxai_ballista::standalone(Arc::clone(&model), 3)
            .await
            .unwrap();
        let bal = options(&f, "ballista.parquet", true, explain);
        let batches = scoring_dataframe(&ctx, &model, &bal)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, f.frame.n_rows());
        write(&bal, &batches);
        common::assert_same_scores(local.output.as_ref().unwrap(), bal.output.as_ref().unwrap());
    }
}

/// An output path without `.parquet` is a directory with one file per partition, written where
/// the partition is scored; it holds the same rows as one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_output_holds_what_one_file_holds() {
    let f = common::fixture();
    let model = common::load(&f.mlp_dir);
    let one = options(&f, "one.parquet", true, None);
    score(&Engine::Local, Arc::clone(&model), &one)
        .await
        .unwrap();
    let n = f.frame.n_rows();
    for (engine, name) in [
        (Engine::Local, "local-parts"),
        (Engine::DataFusion, "df-parts"),
    ] {
        let parts = options(&f, name, true, None);
        let summary = score(&engine, Arc::clone(&model), &parts).await.unwrap();
        assert_eq!(summary.rows, n, "{engine}");
        let dir = parts.output.as_ref().unwrap();
        assert!(
            std::fs::read_dir(dir).unwrap().count() > 1,
            "{engine}: one file per partition"
        );
        assert_eq!(
            common::assert_same_scores(one.output.as_ref().unwrap(), dir),
            n
        );
        // The directory is not empty now: a second run is refused instead of mixing files.
        let err = score(&engine, Arc::clone(&model), &parts)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
    }
    // Ballista configured as deployed (push scheduling): the executor writes the files.
    let ctx = flowxai_ballista::loopback(Arc::clone(&model), 1, 2, 3)
        .await
        .unwrap();
    let parts = options(&f, "ballista-parts", true, None);
    let dir = parts.output.clone().unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let rows = flowxai_ballista::write_partitions(&ctx, &model, &parts, &dir)
        .await
        .unwrap();
    assert_eq!(rows, n);
    assert_eq!(
        common::assert_same_scores(one.output.as_ref().unwrap(), &dir),
        n
    );
}

fn write(o: &ScoreOptions, batches: &[datafusion::arrow::array::RecordBatch]) {
    let file = std::fs::File::create(o.output.as_ref().unwrap()).unwrap();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mean_abs_shap_aggregate_equals_the_direct_sum() {
    let f = common::fixture();
    let model = common::load(&f.forest_dir);
    let ctx = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(3),
    );
    register(&ctx, Some(Arc::clone(&model)));
    let paths: Vec<String> = f.inputs.iter().map(|p| p.display().to_string()).collect();
    let df = ctx
        .read_parquet(paths, ParquetReadOptions::default())
        .await
        .unwrap();
    let exprs = ScoreExprs::new(&ctx, &model).unwrap();
    let batches = df
        .aggregate(vec![], vec![exprs.mean_abs_shap().alias("importance")])
        .unwrap()
        .collect()
        .await
        .unwrap();
    let list = batches[0].column(0).as_list::<i32>();
    let values = list.value(0);
    let got = values.as_primitive::<Float64Type>();

    let x = f.frame.feature_columns(model.feature_names()).unwrap();
    let sums = model.abs_shap_sums(x.view()).unwrap();
    assert_eq!(got.len(), sums.len());
    let n = f.frame.n_rows() as f64;
    let mut nonzero = 0;
    for (j, s) in sums.iter().enumerate() {
        let want = s / n;
        assert!(
            (got.value(j) - want).abs() <= 1e-9 * want.abs().max(1e-12),
            "feature {j}: {} vs {want}",
            got.value(j)
        );
        nonzero += usize::from(want > 0.0);
    }
    assert!(nonzero >= 5, "only {nonzero} features carry importance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_for_another_model_is_refused() {
    let f = common::fixture();
    let forest = common::load(&f.forest_dir);
    let mlp = common::load(&f.mlp_dir);
    assert_ne!(forest.hash(), mlp.hash());
    // The context holds the forest; the plan names the MLP's hash.
    let ctx = SessionContext::new();
    register(&ctx, Some(Arc::clone(&forest)));
    let o = options(&f, "mismatch.parquet", false, None);
    let df = scoring_dataframe(&ctx, &mlp, &o).await.unwrap();
    let err = df.collect().await.unwrap_err().to_string();
    assert!(err.contains("model mismatch"), "{err}");
    assert!(
        err.contains(forest.hash()) && err.contains(mlp.hash()),
        "{err}"
    );

    // A context with planning-only UDFs (a scheduler's) refuses to run them.
    let planning = SessionContext::new();
    register(&planning, None);
    let df = scoring_dataframe(&planning, &forest, &o).await.unwrap();
    let err = df.collect().await.unwrap_err().to_string();
    assert!(err.contains("without a model"), "{err}");
}

/// An MLP bundle whose preprocessing ends with the piecewise-linear encoding (what `train`
/// fits for MLPs by default) is explained per raw feature: each flow's values add up to its
/// probability minus the reference flow's (efficiency, with the encoding inside the model).
#[test]
fn an_encoded_mlp_bundle_is_explained_per_feature() {
    use flowxai::bundle::{BundleModel, ModelBundle};
    use flowxai::flowdata::LabelLevel;
    use flowxai::mlp_core::MlpParams;
    use flowxai::preprocess::Preset;

    let frame = common::real_frame();
    let t = frame.targets(LabelLevel::Fine);
    let pipeline = Preset::PiecewiseLinear
        .params()
        .fit(frame.x.view())
        .unwrap();
    let x = pipeline.transform(frame.x.view()).unwrap();
    assert!(x.ncols() > frame.n_features());
    let y: ndarray::Array1<usize> = t.y.iter().map(|&c| c as usize).collect();
    let mlp = MlpParams::optimized()
        .max_epochs(2)
        .seed(7)
        .check()
        .unwrap()
        .fit(x.view(), y.view(), None, Some(t.classes.len()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    ModelBundle {
        preprocessing: pipeline.clone(),
        model: BundleModel::Mlp(mlp.clone()),
        feature_names: frame.feature_names.clone(),
        classes: t.classes.clone(),
        label_level: "fine".into(),
    }
    .save(dir.path())
    .unwrap();
    let model = common::load(dir.path());
    let raw = frame.x.slice(ndarray::s![..3, ..]);
    let (values, proba) = model.shap_values(raw).unwrap();
    assert_eq!(values.dim(), (3, frame.n_features(), t.classes.len()));
    let (front, encoding) = pipeline.split_piecewise_linear().unwrap();
    let reference = encoding
        .transform(ndarray::Array2::zeros((1, front.n_features_out())).view())
        .unwrap();
    let base = mlp.predict_proba(reference.view());
    for i in 0..3 {
        for c in 0..t.classes.len() {
            let sum: f64 = (0..frame.n_features()).map(|j| values[[i, j, c]]).sum();
            let want = f64::from(proba[[i, c]]) - f64::from(base[[0, c]]);
            assert!(
                (sum - want).abs() < 1e-4,
                "flow {i} class {c}: {sum} vs {want}"
            );
        }
    }
}

/// A Parquet file written by pandas with nulls (flowdata's fixture): every engine scores the
/// same rows — the ones without a null feature, as `flowdata::read_parquet` keeps them — and
/// counts the others; none fails on the nulls or scores made-up values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_with_null_features_are_skipped_and_counted_on_every_engine() {
    let f = common::fixture();
    let nulls = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../flowdata/tests/fixtures/parquet/nulls.parquet");
    let (frame, report) = flowxai::flowdata::read_parquet(&nulls).unwrap();
    // flowdata also rejects the null label and null is_attack rows; scoring needs neither.
    let null_features = report.rejected["null_feature"] as usize;
    assert_eq!(null_features, 3);
    let model = common::load(&f.forest_dir);
    let mut outputs = Vec::new();
    for engine in [Engine::Local, Engine::DataFusion] {
        let options = ScoreOptions {
            inputs: vec![nulls.clone()],
            output: Some(f.dir.path().join(format!("nulls-{engine}.parquet"))),
            probabilities: true,
            explain_top_k: None,
            target_partitions: 2,
        };
        let s = score(&engine, Arc::clone(&model), &options).await.unwrap();
        assert_eq!(s.rows_read, report.rows_read as usize, "{engine}");
        assert_eq!(s.rows_null_feature, null_features, "{engine}");
        assert_eq!(s.rows, s.rows_read - null_features, "{engine}");
        outputs.push(options.output.unwrap());
    }
    // The file has no source columns to key rows by: compare sorted (predicted, p) rows.
    let (a, b) = (
        common::sorted_scores(&outputs[0]),
        common::sorted_scores(&outputs[1]),
    );
    assert_eq!(a, b);
    assert_eq!(a.len(), frame.n_rows() + 2); // + the null-label and null-is_attack rows
}
