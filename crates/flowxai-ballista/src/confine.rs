//! `--data-root`: every file a job reads or writes must lie inside one folder.
//!
//! A Ballista executor runs whatever plan reaches it; without a root, anyone who can reach the
//! scheduler could make it read any Parquet file and write into any writable folder. With a
//! [`DataRoot`], [`ConfinedEngine`] checks every file scan and every file sink of each task's
//! plan before the task runs, and `score` checks its inputs and output the same way. Paths are
//! resolved as the file system will resolve them (symbolic links followed, `..` applied) before
//! they are compared with the root.
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ballista_core::JobId;
use ballista_executor::execution_engine::{ExecutionEngine, QueryStageExecutor};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::file_format::parquet::ParquetSink;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSink};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;

/// A folder that confines every path of a job (canonical: symbolic links resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoot {
    root: PathBuf,
}

impl DataRoot {
    /// The root at `dir`, which must be an existing folder.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = flowxai_ballista::DataRoot::new(dir.path()).unwrap();
    /// assert!(root.confine(&dir.path().join("day1.parquet")).is_ok());
    /// let escape = root.confine(&dir.path().join("../etc/passwd")).unwrap_err();
    /// assert!(escape.to_string().contains("outside the data root"));
    /// ```
    pub fn new(dir: &Path) -> DfResult<Self> {
        let root = dir.canonicalize().map_err(|e| {
            DataFusionError::Configuration(format!("data root {}: {e}", dir.display()))
        })?;
        if !root.is_dir() {
            return Err(DataFusionError::Configuration(format!(
                "data root {} is not a folder",
                dir.display()
            )));
        }
        Ok(Self { root })
    }

    /// The canonical root folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `path` resolved (relative to the current folder, symbolic links followed, `..` applied,
    /// a missing tail taken as written) if it lies inside the root; an error naming the path
    /// and the root otherwise.
    pub fn confine(&self, path: &Path) -> DfResult<PathBuf> {
        let resolved = resolve(path).map_err(|why| {
            DataFusionError::Plan(format!(
                "path {} cannot be checked against the data root {}: {why}",
                path.display(),
                self.root.display()
            ))
        })?;
        if resolved.starts_with(&self.root) {
            Ok(resolved)
        } else {
            Err(DataFusionError::Plan(format!(
                "path {} is outside the data root {} (it resolves to {})",
                path.display(),
                self.root.display(),
                resolved.display()
            )))
        }
    }

    /// Checks every file that `plan` scans or writes; refuses data sources and sinks whose
    /// files it cannot see.
    pub fn check_plan(&self, plan: &Arc<dyn ExecutionPlan>) -> DfResult<()> {
        plan.apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
                let source = scan.data_source();
                if let Some(files) = source.downcast_ref::<FileScanConfig>() {
                    let store = files.object_store_url.as_str();
                    for file in files.file_groups.iter().flat_map(|g| g.iter()) {
                        let location = file.object_meta.location.as_ref();
                        self.confine(&local_path(store, location)?)?;
                    }
                } else if source.downcast_ref::<MemorySourceConfig>().is_none() {
                    return Err(DataFusionError::Plan(format!(
                        "a task reads an unknown data source ({}) and a data root is set",
                        scan.name()
                    )));
                }
            }
            if let Some(sink) = node.downcast_ref::<DataSinkExec>() {
                let Some(parquet) = sink.sink().downcast_ref::<ParquetSink>() else {
                    return Err(DataFusionError::Plan(
                        "a task writes through a sink other than Parquet and a data root is set"
                            .into(),
                    ));
                };
                for url in &parquet.config().table_paths {
                    let path = url.get_url().to_file_path().map_err(|()| {
                        DataFusionError::Plan(format!(
                            "output {} is not a local path and a data root is set",
                            url.as_str()
                        ))
                    })?;
                    self.confine(&path)?;
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map(|_| ())
    }
}

/// The local path of an object-store location (`file://` stores only).
fn local_path(store: &str, location: &str) -> DfResult<PathBuf> {
    if !store.starts_with("file://") {
        return Err(DataFusionError::Plan(format!(
            "{store}{location} is not a local file and a data root is set"
        )));
    }
    // object_store keeps local locations without the leading `/`.
    Ok(Path::new("/").join(location))
}

/// Absolute `path` as the file system resolves it: the longest existing ancestor canonicalised
/// (symbolic links followed), then the missing rest applied lexically (`..` pops). A dangling
/// symbolic link is refused: a write through it would land wherever it points.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("no current folder: {e}"))?
            .join(path)
    };
    for ancestor in absolute.ancestors() {
        let Ok(meta) = std::fs::symlink_metadata(ancestor) else {
            continue;
        };
        if meta.file_type().is_symlink() && std::fs::metadata(ancestor).is_err() {
            return Err(format!(
                "{} is a dangling symbolic link",
                ancestor.display()
            ));
        }
        let mut resolved = ancestor
            .canonicalize()
            .map_err(|e| format!("{}: {e}", ancestor.display()))?;
        let rest = absolute.strip_prefix(ancestor).map_err(|e| e.to_string())?;
        for c in rest.components() {
            match c {
                Component::Normal(part) => resolved.push(part),
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    return Err("unexpected root inside the path".into())
                }
            }
        }
        return Ok(resolved);
    }
    Err("no part of it exists".into())
}

/// Ballista's execution engine with every task's plan checked against a [`DataRoot`] first.
pub struct ConfinedEngine {
    root: DataRoot,
    inner: Arc<dyn ExecutionEngine>,
}

impl ConfinedEngine {
    /// Wraps `inner` (Ballista's `DefaultExecutionEngine`, usually).
    pub fn new(root: DataRoot, inner: Arc<dyn ExecutionEngine>) -> Self {
        Self { root, inner }
    }
}

impl ExecutionEngine for ConfinedEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> DfResult<Arc<dyn QueryStageExecutor>> {
        self.root.check_plan(&plan)?;
        self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )
    }
}
