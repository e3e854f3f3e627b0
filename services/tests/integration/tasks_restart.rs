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
