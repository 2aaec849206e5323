//! A real cluster on 127.0.0.1: one `flowxai-scheduler` and two `flowxai-executor` processes.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowxai_ballista::{score, Engine, ScoreOptions};

/// Kills the processes when the test ends, whatever happens.
struct Cluster {
    children: Vec<Child>,
    scheduler_port: u16,
    work_dirs: Vec<PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_cluster(root: &Path, name: &str, executor_models: &[&Path]) -> Cluster {
    start_cluster_in(root, name, executor_models, None)
}

/// [`start_cluster`] with executors started with `--data-root` when one is given.
fn start_cluster_in(
    root: &Path,
    name: &str,
    executor_models: &[&Path],
    data_root: Option<&Path>,
) -> Cluster {
    let scheduler_port = common::free_port();
    let mut children = vec![Command::new(env!("CARGO_BIN_EXE_flowxai-scheduler"))
        .args([
            "--bind",
            &format!("127.0.0.1:{scheduler_port}"),
            "--external-host",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()];
    wait_for_port(scheduler_port);
    let mut work_dirs = Vec::new();
    for (i, model) in executor_models.iter().enumerate() {
        let work_dir = root.join(format!("{name}-executor-{i}"));
        std::fs::create_dir_all(&work_dir).unwrap();
        let (port, grpc) = (common::free_port(), common::free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowxai-executor"));
        cmd.args([
            "--scheduler-host",
            "127.0.0.1",
            "--scheduler-port",
            &scheduler_port.to_string(),
        ])
        .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "--grpc-port",
            &grpc.to_string(),
        ])
        .args(["--concurrent-tasks", "2"])
        .arg("--work-dir")
        .arg(&work_dir)
        .arg("--model")
        .arg(model)
        .stdout(Stdio::null());
        if let Some(dir) = data_root {
            cmd.arg("--data-root").arg(dir);
        }
        children.push(cmd.spawn().unwrap());
        wait_for_port(port);
        work_dirs.push(work_dir);
    }
    // Executors register with the scheduler right after their Flight service is up.
    std::thread::sleep(Duration::from_secs(2));
    Cluster {
        children,
        scheduler_port,
        work_dirs,
    }
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Files below `dir` (task outputs an executor wrote).
fn files_below(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                files_below(&p)
            } else {
                1
            }
        })
        .sum()
}

fn options(f: &common::Fixture, name: &str, explain: Option<usize>) -> ScoreOptions {
    ScoreOptions {
        inputs: f.inputs.clone(),
        output: Some(f.dir.path().join(name)),
        probabilities: true,
        explain_top_k: explain,
        target_partitions: 4,
    }
}

/// Runs `score` on the cluster, failing the test instead of hanging.
async fn score_on(
    cluster: &Cluster,
    model: &Arc<flowxai_datafusion::ScoringModel>,
    o: &ScoreOptions,
) -> datafusion::error::Result<usize> {
    let engine = Engine::Ballista(format!("127.0.0.1:{}", cluster.scheduler_port));
    let run = score(&engine, Arc::clone(model), o);
    match tokio::time::timeout(Duration::from_secs(180), run).await {
        Ok(r) => r.map(|s| s.rows),
        Err(_) => panic!("the Ballista job neither finished nor failed within 180 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_executor_processes_score_like_the_model_and_refuse_what_they_cannot_run() {
    let f = common::fixture();
    let forest = common::load(&f.forest_dir);
    let root = f.dir.path();

    // 1. Scheduler + two executors holding the forest: same answers as the model called directly,
    //    and both executors ran tasks.
    {
        let cluster = start_cluster(root, "ok", &[&f.forest_dir, &f.forest_dir]);
        let local = options(&f, "local.parquet", Some(3));
        score(&Engine::Local, Arc::clone(&forest), &local)
            .await
            .unwrap();
        let remote = options(&f, "ballista.parquet", Some(3));
        let rows = score_on(&cluster, &forest, &remote).await.unwrap();
        assert_eq!(rows, f.frame.n_rows());
        common::assert_same_scores(
            local.output.as_ref().unwrap(),
            remote.output.as_ref().unwrap(),
        );
        for dir in &cluster.work_dirs {
            assert!(
                files_below(dir) > 0,
                "executor with work dir {} ran no task",
                dir.display()
            );
        }
        // A directory output: the executors write one file per partition there.
        let parts = options(&f, "ballista-parts", Some(3));
        let rows = score_on(&cluster, &forest, &parts).await.unwrap();
        assert_eq!(rows, f.frame.n_rows());
        common::assert_same_scores(
            local.output.as_ref().unwrap(),
            parts.output.as_ref().unwrap(),
        );
    }

    // 2. An executor holding another model refuses the plan, naming both hashes.
    {
        let cluster = start_cluster(root, "other", &[&f.mlp_dir]);
        let err = score_on(&cluster, &forest, &options(&f, "other.parquet", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model mismatch") && err.contains(forest.hash()),
            "{err}"
        );
    }

    // 3. A stock Ballista executor (no flowxai UDFs; in this process, over loopback) fails the
    //    job with an error that says what is missing.
    {
        let cluster = start_cluster(root, "plain", &[]);
        let (port, grpc) = (common::free_port(), common::free_port());
        let executor = tokio::spawn(flowxai_ballista::run_executor(
            flowxai_ballista::ExecutorOptions {
                bind_host: "127.0.0.1".into(),
                external_host: Some("127.0.0.1".into()),
                port,
                grpc_port: grpc,
                scheduler_host: "127.0.0.1".into(),
                scheduler_port: cluster.scheduler_port,
                vcores: 2,
                work_dir: Some(root.join("plain-executor")),
                model: None,
                data_root: None,
            },
        ));
        wait_for_port(port);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let err = score_on(&cluster, &forest, &options(&f, "plain.parquet", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("flowxai-executor --model"), "{err}");
        executor.abort();
    }

    // 4. Executors confined to a data root (`--data-root`): a job reading a file outside it and
    //    one writing to `<root>/../x` fail, each naming the path and the root; a job inside it
    //    runs. `score` is called as a library here, so only the executors check.
    {
        let data = root.join("confined-data");
        std::fs::create_dir_all(&data).unwrap();
        let inside: Vec<PathBuf> = f
            .inputs
            .iter()
            .map(|p| {
                let to = data.join(p.file_name().unwrap());
                std::fs::copy(p, &to).unwrap();
                to
            })
            .collect();
        let cluster = start_cluster_in(root, "confined", &[&f.forest_dir], Some(&data));
        let job = |inputs: Vec<PathBuf>, output: PathBuf| ScoreOptions {
            inputs,
            output: Some(output),
            probabilities: true,
            explain_top_k: None,
            target_partitions: 2,
        };
        let rows = score_on(&cluster, &forest, &job(inside.clone(), data.join("scored")))
            .await
            .unwrap();
        assert_eq!(rows, f.frame.n_rows());
        let canonical_root = data.canonicalize().unwrap().display().to_string();
        let outside_input = f.inputs[0].clone(); // an absolute path beside the root
        let err = score_on(
            &cluster,
            &forest,
            &job(vec![outside_input.clone()], data.join("out2")),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("outside the data root")
                && err.contains(outside_input.file_name().unwrap().to_str().unwrap())
                && err.contains(&canonical_root),
            "{err}"
        );
        let escape = data.join("../x");
        let err = score_on(&cluster, &forest, &job(inside, escape))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("outside the data root") && err.contains(&canonical_root),
            "{err}"
        );
        assert_eq!(
            files_below(&root.join("x")),
            0,
            "a file was written outside the root"
        );
    }
}

/// Servers bind loopback unless told otherwise, and an executor bound off loopback must be
/// given the folder its tasks may touch.
#[test]
fn servers_bind_loopback_by_default_and_exposed_executors_need_a_data_root() {
    let help = |bin: &str| {
        let out = Command::new(bin).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let scheduler = help(env!("CARGO_BIN_EXE_flowxai-scheduler"));
    assert!(
        scheduler.contains("[default: 127.0.0.1:50050]"),
        "{scheduler}"
    );
    let executor = help(env!("CARGO_BIN_EXE_flowxai-executor"));
    assert!(executor.contains("[default: 127.0.0.1]"), "{executor}");

    let out = Command::new(env!("CARGO_BIN_EXE_flowxai-executor"))
        .args(["--bind-host", "0.0.0.0", "--model", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--data-root"), "{err}");
}
