//! The restart monitor: containers labelled `containerd.io/restart.status=running` get a new
//! task when theirs exits (also when it died while berthd was down), within their policy;
//! `berth.io/auto-remove=true` containers are removed once their task exits.

use std::time::Duration;

use crate::{
    daemon::Daemon,
    tasks::{
        busybox, can_run, ctr, ctr_out, eventually, run_detached, runtimes, sweep, task_status,
    },
};

const STATUS: &str = "containerd.io/restart.status";
const POLICY: &str = "containerd.io/restart.policy";
const COUNT: &str = "containerd.io/restart.count";

/// The runtime to test with: Berth's shim when built, else Debian's.
fn runtime() -> &'static str {
    runtimes().last().expect("a shim to run containers with")
}

/// The pid column of `ctr task ls` for `id`, if listed.
fn task_pid(d: &Daemon, id: &str) -> Option<u32> {
    ctr(d, &["task", "ls"]).lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.first() == Some(&id)).then(|| cols.get(1)?.parse().ok())?
    })
}

/// Container `id`'s label `key`, as `ctr c info` shows it.
fn label(d: &Daemon, id: &str, key: &str) -> Option<String> {
    let info: serde_json::Value = serde_json::from_str(&ctr(d, &["c", "info", id])).unwrap();
    info["Labels"][key].as_str().map(str::to_string)
}

/// Waits until `id` runs with a pid other than `old`; returns the new pid.
fn running_again(d: &Daemon, id: &str, old: u32) -> u32 {
    let mut pid = None;
    eventually(15, &format!("{id} running again"), || {
        pid = task_pid(d, id).filter(|p| *p != old && *p != 0);
        pid.is_some() && task_status(d, id).as_deref() == Some("RUNNING")
    });
    pid.unwrap()
}

fn sigkill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// Stops the monitor from restarting `ids`, then removes them.
fn stop_and_sweep(d: &Daemon, ids: &[&str]) {
    for id in ids {
        let _ = ctr_out(d, &["c", "label", id, &format!("{STATUS}=stopped")]);
    }
    sweep(d, &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_always_survives_kills_and_berthd_restarts() {
    if !can_run() {
        return;
    }
    let mut d = Daemon::start();
    let image = busybox(&d);
    let id = "keeper";
    let labels = [
        "--label",
        &format!("{STATUS}=running"),
        "--label",
        &format!("{POLICY}=always"),
    ];
    run_detached(&d, runtime(), &image, id, &labels, &["sleep", "1000"]);
    let first = task_pid(&d, id).expect("task pid");

    // Killed: replaced by a new task within seconds, and counted.
    ctr(&d, &["task", "kill", "-s", "SIGKILL", id]);
    let second = running_again(&d, id, first);
    assert_eq!(label(&d, id, COUNT).as_deref(), Some("1"));

    // Killed while berthd is down: running again once berthd is back.
    d.kill();
    sigkill(second);
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.restart();
    let third = running_again(&d, id, second);
    assert_ne!(third, first);
    assert_eq!(label(&d, id, COUNT).as_deref(), Some("2"));
    assert!(d.log().contains("task restarted"), "{}", d.log());
    stop_and_sweep(&d, &[id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_on_failure_stopped_and_auto_remove() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let rt = runtime();
    let running = format!("{STATUS}=running");

    // on-failure:1: the failing task is restarted exactly once.
    let once = "once";
    let on_failure = format!("{POLICY}=on-failure:1");
    run_detached(
        &d,
        rt,
        &image,
        once,
        &["--label", &running, "--label", &on_failure],
        &["sh", "-c", "sleep 0.3; exit 3"],
    );
    eventually(15, "one restart of the failing task", || {
        label(&d, once, COUNT).as_deref() == Some("1")
    });

    // status=stopped: never restarted, whatever the policy.
    let stopped = "stopped";
    run_detached(
        &d,
        rt,
        &image,
        stopped,
        &[
            "--label",
            &format!("{STATUS}=stopped"),
            "--label",
            &format!("{POLICY}=always"),
        ],
        &["sleep", "1000"],
    );
    ctr(&d, &["task", "kill", "-s", "SIGKILL", stopped]);

    // auto-remove: task, container and snapshot go once the task exits.
    let gone = "gone";
    run_detached(
        &d,
        rt,
        &image,
        gone,
        &["--label", "berth.io/auto-remove=true"],
        &["sh", "-c", "sleep 0.5"],
    );
    eventually(15, "auto-removed container gone", || {
        !ctr(&d, &["c", "ls", "-q"]).lines().any(|l| l == gone)
    });
    assert!(task_status(&d, gone).is_none());
    assert!(
        !ctr(&d, &["snapshots", "ls"])
            .lines()
            .any(|l| l.starts_with(&format!("{gone} "))),
        "snapshot of {gone} left behind"
    );

    // Long enough for a second (wrong) restart of "once" and for any restart of "stopped".
    eventually(15, "the restarted task failing again", || {
        task_status(&d, once).as_deref() == Some("STOPPED")
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(task_status(&d, once).as_deref(), Some("STOPPED"));
    assert_eq!(label(&d, once, COUNT).as_deref(), Some("1"));
    assert_eq!(task_status(&d, stopped).as_deref(), Some("STOPPED"));
    assert_eq!(label(&d, stopped, COUNT), None);
    stop_and_sweep(&d, &[once, stopped]);
}
