//! Score and explain flows on [Apache DataFusion Ballista](https://datafusion.apache.org/ballista/).
//!
//! Ballista ships UDFs by name only, so every process of a cluster must know flowxai's:
//!
//! * [`run_scheduler`] (binary `flowxai-scheduler`): plans queries; registers the UDFs
//!   *planning-only* (no model: it never runs them).
//! * [`run_executor`] (binary `flowxai-executor`): runs tasks; loads one model bundle once and
//!   registers the UDFs bound to it. A stock Ballista executor (no flowxai UDFs) cannot prepare
//!   flowxai tasks: the job fails, and [`score`] says which executors are needed — a clear
//!   error, not a hang.
//! * [`connect`] / [`standalone`] / [`loopback`]: client contexts with the UDFs registered
//!   (`loopback` starts a scheduler and executors in this process, as a deployment runs them).
//! * [`score`] (binary `flowxai-score`, `cargo xtask score`): one entry point for the three
//!   engines — `local` (the bundle called directly on flowdata's Parquet), `datafusion` (this
//!   process) and `ballista://host:port` — writing the same Parquet output.
//!
//! Every plan carries the client's model hash; an executor holding another bundle refuses the
//! task with a "model mismatch" error naming both hashes.
#![warn(missing_docs)]

mod confine;
pub mod score;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::{default_config_producer, default_session_builder};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use flowxai_datafusion::{register, register_in_state, ScoringModel};

pub use confine::{ConfinedEngine, DataRoot};
pub use score::{
    score, score_on_context, scoring_dataframe, write_partitions, Engine, ScoreOptions,
    ScoreSummary,
};

/// Settings of a scheduler process.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address the gRPC service binds to (executors and clients connect here).
    pub bind: SocketAddr,
    /// Host name executors and clients should use for this scheduler.
    pub external_host: String,
    /// Spread tasks one per executor in turn (`true`) or fill each executor first.
    pub round_robin: bool,
}

/// Runs a Ballista scheduler that can plan flowxai queries, until the process is stopped.
pub async fn run_scheduler(options: SchedulerOptions) -> DfResult<()> {
    let session_builder = Arc::new(|config: SessionConfig| {
        let mut state = default_session_builder(config)?;
        register_in_state(&mut state, None)?;
        Ok(state)
    });
    let mut config = SchedulerConfig::default()
        .with_hostname(options.external_host.clone())
        .with_port(options.bind.port())
        .with_override_session_builder(session_builder);
    config.bind_host = options.bind.ip().to_string();
    if options.round_robin {
        config = config.with_task_distribution(TaskDistributionPolicy::RoundRobin);
    }
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista_err)?;
    ballista_scheduler::scheduler_process::start_server(cluster, options.bind, Arc::new(config))
        .await
        .map_err(ballista_err)
}

/// Settings of an executor process.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Interface the Flight (data) and gRPC services bind to.
    pub bind_host: String,
    /// Host name the scheduler and other executors use to reach this one.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle and result data).
    pub port: u16,
    /// gRPC port (task control).
    pub grpc_port: u16,
    /// Scheduler host.
    pub scheduler_host: String,
    /// Scheduler port.
    pub scheduler_port: u16,
    /// Concurrent tasks.
    pub vcores: usize,
    /// Where task outputs are written (a fresh temporary directory when `None`).
    pub work_dir: Option<PathBuf>,
    /// The model bundle the flowxai UDFs run; `None` registers no flowxai UDF at all (a stock
    /// Ballista executor, e.g. for clusters shared with other jobs).
    pub model: Option<Arc<ScoringModel>>,
    /// Every file a task reads or writes must lie inside this folder (tasks that reach outside
    /// fail naming the path and the root); `None` allows any path.
    pub data_root: Option<DataRoot>,
}

/// Runs a Ballista executor with the flowxai UDFs (when a model is given), until stopped.
pub async fn run_executor(options: ExecutorOptions) -> DfResult<()> {
    let mut state = default_session_builder(default_config_producer())?;
    if let Some(model) = &options.model {
        register_in_state(&mut state, Some(Arc::clone(model)))?;
    }
    let registry = BallistaFunctionRegistry::from(&state);
    // Ballista's own engine, each task's plan checked first. (Its pooled variant is private
    // to ballista-executor, so a confined executor opens a connection per shuffle fetch.)
    let engine = options.data_root.map(|root| {
        Arc::new(ConfinedEngine::new(
            root,
            Arc::new(DefaultExecutionEngine::new()),
        )) as Arc<dyn ExecutionEngine>
    });
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host,
        external_host: options.external_host,
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host,
        scheduler_port: options.scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.vcores.max(1),
        work_dir: options.work_dir.map(|p| p.display().to_string()),
        print_thread_info: false,
        override_function_registry: Some(Arc::new(registry)),
        override_execution_engine: engine,
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista_err)
}

/// A client context on the Ballista cluster whose scheduler is at `url`
/// (`df://host:port` or `ballista://host:port`), with the UDFs bound to `model`.
pub async fn connect(
    url: &str,
    model: Arc<ScoringModel>,
    target_partitions: usize,
) -> DfResult<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(client_config(target_partitions))
        .build();
    let url = url.replacen("ballista://", "df://", 1);
    let ctx = SessionContext::remote_with_state(&url, state).await?;
    // `remote_with_state` rebuilds the state for Ballista and drops custom UDFs: add them back.
    register(&ctx, Some(model));
    Ok(ctx)
}

/// A client context on an in-process Ballista cluster (scheduler + one executor over loopback
/// gRPC) that runs the UDFs bound to `model`.
pub async fn standalone(
    model: Arc<ScoringModel>,
    target_partitions: usize,
) -> DfResult<SessionContext> {
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(client_config(target_partitions))
        .build();
    register_in_state(&mut state, Some(Arc::clone(&model)))?;
    let ctx = SessionContext::standalone_with_state(state).await?;
    register(&ctx, Some(model));
    Ok(ctx)
}

/// A Ballista cluster inside this process, configured like a deployment of the
/// `flowxai-scheduler` and `flowxai-executor` binaries: one scheduler (push-based task
/// scheduling, tasks spread round-robin) and `executors` executors with `vcores` task slots
/// each, all on 127.0.0.1 and talking gRPC + Arrow Flight over loopback; task outputs go to
/// temporary directories and are fetched like on a cluster. Returns a client context
/// connected to it. The servers run on the current tokio runtime until it shuts down.
///
/// [`standalone`] differs: Ballista's standalone mode schedules pull-based (its executor asks
/// for work and sleeps 50 ms when there is none), which adds latency a deployment does not have.
pub async fn loopback(
    model: Arc<ScoringModel>,
    executors: usize,
    vcores: usize,
    target_partitions: usize,
) -> DfResult<SessionContext> {
    loopback_with_root(model, executors, vcores, target_partitions, None).await
}

/// [`loopback`] with executors confined to `data_root` (as `flowxai-executor --data-root`).
pub async fn loopback_with_root(
    model: Arc<ScoringModel>,
    executors: usize,
    vcores: usize,
    target_partitions: usize,
    data_root: Option<DataRoot>,
) -> DfResult<SessionContext> {
    let scheduler_port = free_loopback_port()?;
    let bind = SocketAddr::from(([127, 0, 0, 1], scheduler_port));
    let mut ports = vec![scheduler_port];
    tokio::spawn(run_scheduler(SchedulerOptions {
        bind,
        external_host: "127.0.0.1".into(),
        round_robin: true,
    }));
    for _ in 0..executors.max(1) {
        let port = free_loopback_port()?;
        ports.push(port);
        tokio::spawn(run_executor(ExecutorOptions {
            bind_host: "127.0.0.1".into(),
            external_host: Some("127.0.0.1".into()),
            port,
            grpc_port: free_loopback_port()?,
            scheduler_host: "127.0.0.1".into(),
            scheduler_port,
            vcores: vcores.max(1),
            work_dir: None,
            model: Some(Arc::clone(&model)),
            data_root: data_root.clone(),
        }));
    }
    // The servers bind in the background: wait until each accepts connections (ten seconds at
    // most), then connect.
    let url = format!("df://127.0.0.1:{scheduler_port}");
    for port in ports {
        let mut attempts = 0;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            attempts += 1;
            if attempts > 100 {
                return Err(DataFusionError::Execution(format!(
                    "loopback cluster: nothing listens on 127.0.0.1:{port} after 10 s"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    connect(&url, model, target_partitions).await
}

/// A free TCP port on 127.0.0.1 (found by binding port 0; another process could take it
/// before the server binds it, which is unlikely on one machine).
fn free_loopback_port() -> DfResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn client_config(target_partitions: usize) -> SessionConfig {
    use ballista::prelude::SessionConfigExt;
    SessionConfig::new_with_ballista().with_target_partitions(target_partitions.max(1))
}

fn ballista_err(e: ballista_core::error::BallistaError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
