//! The UDFs: `predict_label`, `predict_proba`, `explain` (scalar) and `mean_abs_shap`
//! (aggregate).
//!
//! Every call carries the model hash as its first argument (a string literal in the plan). A UDF
//! holding another model refuses the batch with [`ScaleError::ModelMismatch`]; a UDF registered
//! without a model (a scheduler only plans) refuses to run at all. Return types never depend on
//! the model, so planning-only registrations type-check the same plans.
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, Float64Builder, ListArray, ListBuilder,
    StringArray, UInt64Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float32Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use ndarray::Array2;

use flowxai::bundle::argmax_rows;

use crate::error::ScaleError;
use crate::model::ScoringModel;

/// `predict_label(model_hash, features…) → Utf8`: the most probable class name.
pub const PREDICT_LABEL: &str = "predict_label";
/// `predict_proba(model_hash, features…) → List<Float32>`: one probability per class, in the
/// bundle's class order.
pub const PREDICT_PROBA: &str = "predict_proba";
/// `explain(model_hash, k, features…) → Utf8`: the top-k SHAP features of the predicted class,
/// `name=+0.1234;name=-0.0567`.
pub const EXPLAIN: &str = "explain";
/// `mean_abs_shap(model_hash, features…) → List<Float64>`: per feature (bundle order), the mean
/// over rows of Σ_classes |SHAP|.
pub const MEAN_ABS_SHAP: &str = "mean_abs_shap";

/// Names of the scalar UDFs.
pub const SCALAR_UDF_NAMES: [&str; 3] = [PREDICT_LABEL, PREDICT_PROBA, EXPLAIN];
/// Names of the aggregate UDFs.
pub const AGGREGATE_UDF_NAMES: [&str; 1] = [MEAN_ABS_SHAP];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ScalarKind {
    Label,
    Proba,
    Explain,
}

impl ScalarKind {
    fn name(self) -> &'static str {
        match self {
            ScalarKind::Label => PREDICT_LABEL,
            ScalarKind::Proba => PREDICT_PROBA,
            ScalarKind::Explain => EXPLAIN,
        }
    }
}

/// The list type of `predict_proba` (Float32 items) and `mean_abs_shap` (Float64 items).
fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// One scalar flowxai UDF bound to a model (or planning-only when `model` is `None`).
#[derive(Debug)]
struct FlowxaiScalar {
    kind: ScalarKind,
    model: Option<Arc<ScoringModel>>,
    signature: Signature,
}

fn model_key(model: &Option<Arc<ScoringModel>>) -> &str {
    model.as_ref().map_or("", |m| m.hash())
}

impl PartialEq for FlowxaiScalar {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && model_key(&self.model) == model_key(&other.model)
    }
}
impl Eq for FlowxaiScalar {}
impl Hash for FlowxaiScalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        model_key(&self.model).hash(state);
    }
}

/// The model this UDF holds, checked against the plan's hash argument.
fn bound_model<'a>(
    name: &str,
    model: &'a Option<Arc<ScoringModel>>,
    hash_arg: &ColumnarValue,
) -> Result<&'a ScoringModel, ScaleError> {
    let model = model.as_deref().ok_or_else(|| {
        ScaleError::Arguments(format!(
            "`{name}` is registered here without a model (planning only): run it on a process \
             started with --model"
        ))
    })?;
    let plan_hash = string_arg(name, "model_hash", hash_arg)?;
    model.check_plan_hash(&plan_hash)?;
    Ok(model)
}

fn string_arg(udf: &str, what: &str, value: &ColumnarValue) -> Result<String, ScaleError> {
    let bad = || {
        ScaleError::Arguments(format!(
            "`{udf}`: `{what}` must be a non-null string literal"
        ))
    };
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Ok(s.clone()),
        ColumnarValue::Array(a) if !a.is_empty() => match ScalarValue::try_from_array(a, 0) {
            Ok(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
            ) => Ok(s),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn usize_arg(udf: &str, what: &str, value: &ColumnarValue) -> Result<usize, ScaleError> {
    let bad = || {
        ScaleError::Arguments(format!(
            "`{udf}`: `{what}` must be a non-negative integer literal"
        ))
    };
    let scalar = match value {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) if !a.is_empty() => {
            ScalarValue::try_from_array(a, 0).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    let v = match scalar {
        ScalarValue::Int64(Some(v)) => v,
        ScalarValue::Int32(Some(v)) => i64::from(v),
        ScalarValue::UInt64(Some(v)) => i64::try_from(v).map_err(|_| bad())?,
        ScalarValue::UInt32(Some(v)) => i64::from(v),
        _ => return Err(bad()),
    };
    usize::try_from(v).map_err(|_| bad())
}

/// Row-major `[rows, features]` from the feature arguments (cast to Float32; nulls refused).
fn feature_matrix(
    udf: &str,
    model: &ScoringModel,
    args: &[ColumnarValue],
    n_rows: usize,
) -> Result<Array2<f32>, ScaleError> {
    let names = model.feature_names();
    if args.len() != names.len() {
        return Err(ScaleError::Arguments(format!(
            "`{udf}`: got {} feature arguments, model {} expects {} ({})",
            args.len(),
            model.hash(),
            names.len(),
            names.join(", ")
        )));
    }
    let columns: Vec<ArrayRef> = args
        .iter()
        .map(|arg| arg.clone().into_array(n_rows))
        .collect::<DfResult<_>>()
        .map_err(|e| ScaleError::Arguments(format!("`{udf}`: {e}")))?;
    feature_rows(&format!("`{udf}`"), names, &columns)
}

/// Row-major `[rows, features]` from one Arrow column per feature, in `names` order: each cast
/// to Float32, nulls refused. `context` (a UDF or file name) starts every error message.
pub fn feature_rows(
    context: &str,
    names: &[String],
    columns: &[ArrayRef],
) -> Result<Array2<f32>, ScaleError> {
    let n_rows = columns.first().map_or(0, |c| c.len());
    let mut x = Array2::<f32>::zeros((n_rows, names.len()));
    for (j, (column, name)) in columns.iter().zip(names).enumerate() {
        let array = cast(column, &DataType::Float32)
            .map_err(|e| ScaleError::Arguments(format!("{context}: feature `{name}`: {e}")))?;
        let values: &Float32Array = array.as_primitive::<Float32Type>();
        if values.null_count() > 0 {
            let row = (0..values.len()).find(|&i| values.is_null(i)).unwrap_or(0);
            return Err(ScaleError::Arguments(format!(
                "{context}: feature `{name}` is null in row {row} of the batch: flowxai models \
                 need every feature"
            )));
        }
        for (i, v) in values.values().iter().enumerate() {
            x[[i, j]] = *v;
        }
    }
    Ok(x)
}

fn proba_list(proba: &Array2<f32>) -> ArrayRef {
    let (n, k) = proba.dim();
    let values: Float32Array = proba.iter().copied().collect();
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(k, n));
    let field = Arc::new(Field::new_list_field(DataType::Float32, true));
    Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
}

impl ScalarUDFImpl for FlowxaiScalar {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            ScalarKind::Label | ScalarKind::Explain => DataType::Utf8,
            ScalarKind::Proba => list_of(DataType::Float32),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = self.kind.name();
        let n = args.number_rows;
        let Some(hash_arg) = args.args.first() else {
            return Err(
                ScaleError::Arguments(format!("`{name}` needs (model_hash, features…)")).into(),
            );
        };
        let model = bound_model(name, &self.model, hash_arg)?;
        let out: ArrayRef = match self.kind {
            ScalarKind::Label => {
                let x = feature_matrix(name, model, &args.args[1..], n)?;
                let proba = model.predict_proba(x.view())?;
                let classes = model.classes();
                let labels: StringArray = argmax_rows(proba.view())
                    .into_iter()
                    .map(|c| Some(classes[c].as_str()))
                    .collect();
                Arc::new(labels)
            }
            ScalarKind::Proba => {
                let x = feature_matrix(name, model, &args.args[1..], n)?;
                proba_list(&model.predict_proba(x.view())?)
            }
            ScalarKind::Explain => {
                let Some(k_arg) = args.args.get(1) else {
                    return Err(ScaleError::Arguments(format!(
                        "`{name}` needs (model_hash, k, features…)"
                    ))
                    .into());
                };
                let k = usize_arg(name, "k", k_arg)?;
                let x = feature_matrix(name, model, &args.args[2..], n)?;
                let texts: StringArray = model
                    .explain_top_k(x.view(), k)?
                    .into_iter()
                    .map(Some)
                    .collect();
                Arc::new(texts)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `mean_abs_shap` bound to a model (or planning-only).
#[derive(Debug)]
struct MeanAbsShap {
    model: Option<Arc<ScoringModel>>,
    signature: Signature,
}

impl PartialEq for MeanAbsShap {
    fn eq(&self, other: &Self) -> bool {
        model_key(&self.model) == model_key(&other.model)
    }
}
impl Eq for MeanAbsShap {}
impl Hash for MeanAbsShap {
    fn hash<H: Hasher>(&self, state: &mut H) {
        MEAN_ABS_SHAP.hash(state);
        model_key(&self.model).hash(state);
    }
}

impl AggregateUDFImpl for MeanAbsShap {
    fn name(&self) -> &str {
        MEAN_ABS_SHAP
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Float64))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[abs_shap_sums]", args.name),
                list_of(DataType::Float64),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[rows]", args.name),
                DataType::UInt64,
                true,
            )),
        ])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(MeanAbsShapAccumulator {
            model: self.model.clone(),
            sums: Vec::new(),
            rows: 0,
        }))
    }
}

#[derive(Debug)]
struct MeanAbsShapAccumulator {
    model: Option<Arc<ScoringModel>>,
    /// Σ over rows of Σ_classes |SHAP| per feature (empty until the first row).
    sums: Vec<f64>,
    rows: u64,
}

impl MeanAbsShapAccumulator {
    fn add(&mut self, sums: &[f64], rows: u64) {
        if self.sums.is_empty() {
            self.sums = vec![0.0; sums.len()];
        }
        for (acc, v) in self.sums.iter_mut().zip(sums) {
            *acc += v;
        }
        self.rows += rows;
    }

    fn sums_scalar(&self) -> ScalarValue {
        let mut builder = ListBuilder::new(Float64Builder::new());
        builder.values().append_slice(&self.sums);
        builder.append(true);
        ScalarValue::List(Arc::new(builder.finish()))
    }
}

impl Accumulator for MeanAbsShapAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(hash) = values.first() else {
            return Err(ScaleError::Arguments(format!(
                "`{MEAN_ABS_SHAP}` needs (model_hash, features…)"
            ))
            .into());
        };
        let n = hash.len();
        if n == 0 {
            return Ok(());
        }
        let hash_arg = ColumnarValue::Array(Arc::clone(hash));
        let model = bound_model(MEAN_ABS_SHAP, &self.model, &hash_arg)?;
        let args: Vec<ColumnarValue> = values[1..]
            .iter()
            .map(|a| ColumnarValue::Array(Arc::clone(a)))
            .collect();
        let x = feature_matrix(MEAN_ABS_SHAP, model, &args, n)?;
        let sums = model.abs_shap_sums(x.view())?;
        self.add(&sums, n as u64);
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let rows = self.rows.max(1) as f64;
        let means: Vec<f64> = self.sums.iter().map(|s| s / rows).collect();
        let mut builder = ListBuilder::new(Float64Builder::new());
        builder.values().append_slice(&means);
        builder.append(true);
        Ok(ScalarValue::List(Arc::new(builder.finish())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * std::mem::size_of::<f64>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            self.sums_scalar(),
            ScalarValue::UInt64(Some(self.rows)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let (Some(sums), Some(rows)) = (states.first(), states.get(1)) else {
            return Err(ScaleError::Arguments(format!(
                "`{MEAN_ABS_SHAP}`: malformed partial state"
            ))
            .into());
        };
        let sums = sums.as_list::<i32>();
        let rows: &UInt64Array = rows.as_primitive();
        for i in 0..sums.len() {
            if sums.is_null(i) || rows.is_null(i) {
                continue;
            }
            let part = sums.value(i);
            let part: &Float64Array = part.as_primitive();
            if part.is_empty() {
                continue;
            }
            self.add(part.values(), rows.value(i));
        }
        Ok(())
    }
}

/// The three scalar UDFs bound to `model` (`None`: planning-only, e.g. on a scheduler).
pub fn scalar_udfs(model: Option<Arc<ScoringModel>>) -> Vec<ScalarUDF> {
    [ScalarKind::Label, ScalarKind::Proba, ScalarKind::Explain]
        .into_iter()
        .map(|kind| {
            ScalarUDF::from(FlowxaiScalar {
                kind,
                model: model.clone(),
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

/// The aggregate UDF `mean_abs_shap` bound to `model` (`None`: planning-only).
pub fn aggregate_udfs(model: Option<Arc<ScoringModel>>) -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(MeanAbsShap {
        model,
        signature: Signature::variadic_any(Volatility::Immutable),
    })]
}
