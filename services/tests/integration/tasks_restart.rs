//! Tasks survive berthd: a SIGKILLed daemon leaves its containers running and finds them again;
//! a SIGKILLed shim is cleaned up after.

use std::time::Duration;

use containerd_client::services::v1::{WaitRequest, tasks_client::TasksClient};

use crate::{
    daemon::{Daemon, ns},
    tasks::{
        assert_no_leftovers, busybox, can_run, ctr, ctr_out, eventually, run_detached, runtimes,
        sweep, task_status,
    },
};

/// The pid of the shim serving task `id` (its command line has `-id <id>`).
fn shim_pid(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a| String::from_utf8_lossy(a).contains("containerd-shim"));
        let serves = args
            .windows(2)
            .any(|w| w[0] == b"-id" && w[1] == id.as_bytes());
        let starting = args.iter().any(|a| *a == b"start" || *a == b"delete");
        (is_shim && serves && !starting).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_berthd_leaves_tasks_running_and_finds_them_again() {
    if !can_run() {
        return;
    }
    let mut d = Daemon::start();
    let image = busybox(&d);
    let mut ids = Vec::new();
    for runtime in runtimes() {
        let short = runtime.split('.').nth(2).unwrap();
        for i in 0..20 {
            let id = format!("keep-{short}-{i}");
            run_detached(&d, runtime, &image, &id, &[], &["sleep", "1000"]);
            ids.push(id);
        }
        let id = format!("exit5-{short}");
        run_detached(
            &d,
            runtime,
            &image,
            &id,
            &[],
            &["sh", "-c", "sleep 2; exit 5"],
        );
        ids.push(id);
    }
    d.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.restart();
    for id in &ids {
        let want = if id.starts_with("exit5") {
            "STOPPED"
        } else {
            "RUNNING"
        };
        assert_eq!(task_status(&d, id).as_deref(), Some(want), "{id}");
    }
    let mut tasks = TasksClient::new(d.channel().await);
    for id in ids.iter().filter(|id| id.starts_with("keep")) {
        ctr(&d, &["task", "kill", "-s", "SIGKILL", id]);
    }
    for id in &ids {
        let want = if id.starts_with("exit5") { 5 } else { 137 };
        let waited = tasks
            .wait(ns(
                "default",
                WaitRequest {
                    container_id: id.clone(),
                    exec_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(waited.exit_status, want, "{id}");
        ctr(&d, &["task", "rm", id]);
        ctr(&d, &["c", "rm", id]);
        assert_no_leftovers(&d, id);
    }
    sweep(&d, &ids);
}

#[test]
fn killed_shim_is_cleaned_up() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    for runtime in runtimes() {
        let id = format!("shimkill-{}", runtime.split('.').nth(2).unwrap());
        run_detached(&d, runtime, &image, &id, &[], &["sleep", "1000"]);
        let pid = shim_pid(&id).expect("shim process");
        let bundle = d
            .dir
            .path()
            .join("state/io.containerd.runtime.v2.task/default")
            .join(&id);
        let address = std::fs::read_to_string(bundle.join("address")).unwrap();
        let socket = std::path::PathBuf::from(address.trim().trim_start_matches("unix://"));
        assert!(
            socket.exists(),
            "{runtime}: shim socket {}",
            socket.display()
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // The task stays until the cleanup is done; then the container can go.
        eventually(15, "task cleaned up after its shim", || {
            ctr_out(&d, &["c", "rm", &id]).status.success()
        });
        assert!(task_status(&d, &id).is_none());
        assert_no_leftovers(&d, &id);
        assert!(shim_pid(&id).is_none());
        assert!(
            !socket.exists(),
            "{runtime}: dead shim's socket left behind"
        );
        sweep(&d, &[id]);
    }
}

/// Whether a shim of `d` (started with `-address <its socket>`) serves task `id`.
fn has_shim(d: &Daemon, id: &str) -> bool {
    let address = d.socket().display().to_string();
    shim_pid(id).is_some_and(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|a| a == address.as_bytes()))
            .unwrap_or(false)
    })
}

/// Writes a runc wrapper into `dir` that touches `<dir>/create-called` and sleeps 3 s before
/// `runc create`, then runs it (or, with `fail`, exits 1 instead).
fn slow_runc(dir: &std::path::Path, fail: bool) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let runc = crate::daemon::which("runc").expect("runc");
    let path = dir.join(if fail { "failing-runc" } else { "slow-runc" });
    let then = if fail {
        "exit 1".to_string()
    } else {
        format!("exec {} \"$@\"", runc.display())
    };
    let script = format!(
        "#!/bin/sh\nfor a; do [ \"$a\" = create ] && {{ touch {called}; sleep 3; {then}; }}; done\nexec {runc} \"$@\"\n",
        called = dir.join("create-called").display(),
        runc = runc.display(),
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Kills berthd while the shim of container `id` waits on `runc` (the wrapper at `runc`)
/// during `Create`, then starts berthd again.
async fn kill_during_create(d: &mut Daemon, image: &str, id: &str, runc: &std::path::Path) {
    use containerd_client::services::v1::CreateTaskRequest;
    use containerd_shim_protos::{protobuf::Message as _, shim::oci::Options};
    ctr(
        d,
        &[
            "containers",
            "create",
            "--runtime",
            "io.containerd.berth.v2",
            image,
            id,
            "sleep",
            "1000",
        ],
    );
    let options = Options {
        binary_name: runc.display().to_string(),
        ..Default::default()
    };
    let request = CreateTaskRequest {
        container_id: id.to_string(),
        options: Some(prost_types::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: options.write_to_bytes().unwrap(),
        }),
        ..Default::default()
    };
    let mut tasks = TasksClient::new(d.channel().await);
    let create = tokio::spawn(async move { tasks.create(ns("default", request)).await });
    let called = d.dir.path().join("create-called");
    eventually(20, "runc create to be called", || called.exists());
    std::fs::remove_file(&called).unwrap();
    d.kill();
    assert!(
        create.await.unwrap().is_err(),
        "create answered by a dead daemon"
    );
    d.restart();
}

/// Regression (tests/faults kill-berthd-during-task-create): berthd killed while a shim was
/// still in `Create` cleaned up at once on restart, removing the bundle under the running
/// `runc create` and leaving the shim process serving nothing forever; and the shim itself
/// dropped the create when berthd's connection closed. Now the shim finishes the create, the
/// task shows up once created, and a create that fails is cleaned up after, shim included.
#[tokio::test(flavor = "multi_thread")]
async fn berthd_killed_during_task_create_waits_for_the_shim() {
    if !can_run() || crate::daemon::berth_shim_dir().is_none() {
        return;
    }
    let mut d = Daemon::start();
    let image = busybox(&d);
    let slow = slow_runc(d.dir.path(), false);
    kill_during_create(&mut d, &image, "slow-create", &slow).await;
    eventually(20, "the task its shim finished creating", || {
        task_status(&d, "slow-create").as_deref() == Some("CREATED")
    });
    ctr(&d, &["task", "rm", "-f", "slow-create"]);
    ctr(&d, &["c", "rm", "slow-create"]);
    assert_no_leftovers(&d, "slow-create");
    eventually(10, "the shim to exit", || !has_shim(&d, "slow-create"));

    let failing = slow_runc(d.dir.path(), true);
    kill_during_create(&mut d, &image, "failed-create", &failing).await;
    eventually(30, "the failed create to be cleaned up", || {
        ctr_out(&d, &["c", "rm", "failed-create"]).status.success()
    });
    assert!(task_status(&d, "failed-create").is_none());
    assert_no_leftovers(&d, "failed-create");
    eventually(10, "the shim of the failed create to exit", || {
        !has_shim(&d, "failed-create")
    });
}
