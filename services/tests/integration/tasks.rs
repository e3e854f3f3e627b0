//! Running containers with Debian's `ctr`: the tasks service and the runtime manager, against
//! Debian's Go shim (`io.containerd.runc.v2`) and Berth's own (`io.containerd.berth.v2`, when
//! built).

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::daemon::{Daemon, berth_shim_dir, text, which};

/// The runtimes to test with: Debian's Go shim, and ours when it has been built.
pub fn runtimes() -> Vec<&'static str> {
    let mut out = Vec::new();
    if which("containerd-shim-runc-v2").is_some() {
        out.push("io.containerd.runc.v2");
    } else {
        eprintln!("skipping io.containerd.runc.v2: containerd-shim-runc-v2 not installed");
    }
    if berth_shim_dir().is_some() {
        out.push("io.containerd.berth.v2");
    } else {
        eprintln!("skipping io.containerd.berth.v2: containerd-shim-berth-v2 not built");
    }
    out
}

/// Whether the machine can run containers here (root, ctr, runc).
pub fn can_run() -> bool {
    let ok = nix::unistd::geteuid().is_root() && which("ctr").is_some() && which("runc").is_some();
    if !ok {
        eprintln!("skipping: needs root, ctr and runc");
    }
    ok
}

/// Imports a busybox image into `d` and returns its name.
pub fn busybox(d: &Daemon) -> String {
    let layout = d.dir.path().join("busybox");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/busybox-image.sh");
    let out = Command::new(script).arg(&layout).arg("1").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let archive = d.dir.path().join("busybox.tar");
    let out = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let archive = archive.display().to_string();
    ctr(d, &["images", "import", "--base-name", "busybox", &archive]);
    "busybox:1".to_string()
}

/// Runs ctr against `d` and returns its output, whatever the status.
pub fn ctr_out(d: &Daemon, args: &[&str]) -> Output {
    d.ctr(args)
        .expect("ctr installed")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs ctr against `d`; it must succeed. Returns stdout.
pub fn ctr(d: &Daemon, args: &[&str]) -> String {
    let out = ctr_out(d, args);
    assert!(out.status.success(), "ctr {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status column of `ctr task ls` for `id`, if listed.
pub fn task_status(d: &Daemon, id: &str) -> Option<String> {
    ctr(d, &["task", "ls"]).lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.first() == Some(&id)).then(|| cols.get(2).unwrap_or(&"").to_string())
    })
}

/// Polls `cond` every 50 ms until it holds or `secs` pass.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts nothing of task `id` is left: no bundle, no runc state, no mount.
pub fn assert_no_leftovers(d: &Daemon, id: &str) {
    let state = d.dir.path().join("state");
    let bundle = state.join("io.containerd.runtime.v2.task/default").join(id);
    assert!(!bundle.exists(), "bundle {} left behind", bundle.display());
    let runc = state.join("runc/default").join(id);
    assert!(!runc.exists(), "runc state {} left behind", runc.display());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&format!(" {}/rootfs ", bundle.display())),
        "rootfs of {id} still mounted"
    );
}

/// Starts container `id` from `image` detached on `runtime`, running `command`; `flags` go
/// before the image (e.g. `--annotation k=v`).
pub fn run_detached(
    d: &Daemon,
    runtime: &str,
    image: &str,
    id: &str,
    flags: &[&str],
    command: &[&str],
) {
    let mut args = vec!["run", "-d", "--runtime", runtime];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[image, id]);
    args.extend_from_slice(command);
    ctr(d, &args);
}

/// Kills task `id`, waits until it is reported STOPPED, then deletes the task and the
/// container.
pub fn kill_and_remove(d: &Daemon, id: &str) {
    ctr(d, &["task", "kill", "-s", "SIGKILL", id]);
    eventually(10, &format!("{id} stopped"), || {
        task_status(d, id).as_deref() == Some("STOPPED")
    });
    ctr(d, &["task", "rm", id]);
    ctr(d, &["c", "rm", id]);
}

/// Kills whatever is left of `ids` at the end of a test (best effort).
pub fn sweep(d: &Daemon, ids: &[String]) {
    for id in ids {
        let _ = ctr_out(d, &["task", "kill", "-s", "SIGKILL", id]);
    }
    for id in ids {
        let _ = ctr_out(d, &["task", "rm", "-f", id]);
        let _ = ctr_out(d, &["c", "rm", id]);
    }
}

#[test]
fn ctr_run_rm_prints_output_and_exit_code() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    for runtime in runtimes() {
        let id = format!("echo-{}", runtime.split('.').nth(2).unwrap());
        let out = ctr_out(
            &d,
            &[
                "run",
                "--rm",
                "--runtime",
                runtime,
                &image,
                &id,
                "sh",
                "-c",
                "echo hi; exit 3",
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{runtime}: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hi",
            "{runtime}"
        );
        assert_no_leftovers(&d, &id);
    }
}

#[test]
fn ctr_task_lifecycle() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    for runtime in runtimes() {
        let id = format!("life-{}", runtime.split('.').nth(2).unwrap());
        run_detached(&d, runtime, &image, &id, &[], &["sleep", "1000"]);
        let ps = ctr(&d, &["task", "exec", "--exec-id", "e1", &id, "ps"]);
        assert!(ps.contains("sleep 1000"), "{runtime}: {ps}");
        assert_eq!(
            task_status(&d, &id).as_deref(),
            Some("RUNNING"),
            "{runtime}"
        );
        ctr(&d, &["task", "pause", &id]);
        assert_eq!(task_status(&d, &id).as_deref(), Some("PAUSED"), "{runtime}");
        ctr(&d, &["task", "resume", &id]);
        assert_eq!(
            task_status(&d, &id).as_deref(),
            Some("RUNNING"),
            "{runtime}"
        );
        let metrics = ctr(&d, &["task", "metrics", &id]);
        assert!(metrics.contains(&id), "{runtime}: {metrics}");
        let pids = ctr(&d, &["task", "ps", &id]);
        assert!(pids.lines().count() >= 2, "{runtime}: {pids}");
        // Checkpoints are refused as not supported, and the task keeps running.
        let checkpoint = ctr_out(&d, &["task", "checkpoint", &id]);
        assert!(!checkpoint.status.success(), "{runtime}");
        assert!(
            text(&checkpoint).contains("not supported"),
            "{}",
            text(&checkpoint)
        );
        assert_eq!(
            task_status(&d, &id).as_deref(),
            Some("RUNNING"),
            "{runtime}"
        );
        // A running task is neither deleted nor its container.
        assert!(!ctr_out(&d, &["task", "rm", &id]).status.success());
        assert!(!ctr_out(&d, &["c", "rm", &id]).status.success());
        ctr(&d, &["task", "kill", "-s", "SIGKILL", &id]);
        eventually(10, "task stopped", || {
            task_status(&d, &id).as_deref() == Some("STOPPED")
        });
        let exec = ctr_out(&d, &["task", "exec", "--exec-id", "e2", &id, "true"]);
        assert!(!exec.status.success());
        assert!(
            text(&exec).contains("failed precondition"),
            "{}",
            text(&exec)
        );
        ctr(&d, &["task", "rm", &id]);
        ctr(&d, &["c", "rm", &id]);
        assert_no_leftovers(&d, &id);
    }
}

#[test]
fn ctr_run_tty_reports_window_size() {
    if !can_run() || which("script").is_none() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    for runtime in runtimes() {
        let id = format!("tty-{}", runtime.split('.').nth(2).unwrap());
        let ctr_cmd = format!(
            "stty cols 91 rows 17; {} --address {} run -t --rm --runtime {runtime} {image} {id} sh -c 'sleep 1; stty size; tty'",
            which("ctr").unwrap().display(),
            d.socket().display()
        );
        // ctr resizes the pty once the task has started: the shell waits for that. script's
        // input stays open meanwhile (it ends the session at end of input).
        let mut script = Command::new("script")
            .args(["-qfec", &ctr_cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = script.stdin.take();
        let out = script.wait_with_output().unwrap();
        drop(input);
        let t = text(&out);
        assert!(out.status.success(), "{runtime}: {t}");
        assert!(
            t.contains("17 91"),
            "{runtime}: window size not passed: {t}"
        );
        assert!(t.contains("/dev/pts/"), "{runtime}: no pty: {t}");
        assert_no_leftovers(&d, &id);
    }
}

#[test]
fn oom_kill_is_published() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    for runtime in runtimes() {
        let id = format!("oom-{}", runtime.split('.').nth(2).unwrap());
        let mut events = d
            .ctr(&["events"])
            .unwrap()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // ctr events subscribes asynchronously: give it a moment before the event happens.
        std::thread::sleep(Duration::from_millis(300));
        let out = ctr_out(
            &d,
            &[
                "run",
                "--rm",
                "--runtime",
                runtime,
                "--memory-limit",
                "33554432",
                &image,
                &id,
                "sh",
                "-c",
                "x=$(head -c 200000000 /dev/zero | tr '\\000' x); echo survived",
            ],
        );
        let _ = events.kill();
        let seen = events.wait_with_output().unwrap();
        let seen = String::from_utf8_lossy(&seen.stdout);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("survived"),
            "{runtime}: not OOM-killed: {}",
            text(&out)
        );
        assert!(
            seen.contains("/tasks/oom"),
            "{runtime}: no /tasks/oom in\n{seen}"
        );
        assert_no_leftovers(&d, &id);
    }
}

#[test]
fn containers_of_one_pod_share_a_shim() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let bundles = d
        .dir
        .path()
        .join("state/io.containerd.runtime.v2.task/default");
    for runtime in runtimes() {
        let ids: Vec<String> = ["pod-a", "pod-b"]
            .iter()
            .map(|n| format!("{n}-{}", runtime.rsplit('.').nth(1).unwrap()))
            .collect();
        let annotation = format!("io.kubernetes.cri.sandbox-id=sandbox-{runtime}");
        for id in &ids {
            let flags = ["--annotation", annotation.as_str()];
            run_detached(&d, runtime, &image, id, &flags, &["sleep", "1000"]);
        }
        let address = |id: &str| std::fs::read_to_string(bundles.join(id).join("address")).unwrap();
        let shared = address(&ids[0]);
        assert_eq!(
            shared,
            address(&ids[1]),
            "{runtime}: one shim serves the pod"
        );
        let socket = shared.trim_start_matches("unix://").to_string();

        // Removing one container leaves the shim serving the other.
        kill_and_remove(&d, &ids[0]);
        let out = ctr(
            &d,
            &[
                "task",
                "exec",
                "--exec-id",
                "probe",
                &ids[1],
                "echo",
                "served",
            ],
        );
        assert_eq!(out.trim(), "served", "{runtime}");
        assert!(
            Path::new(&socket).exists(),
            "{runtime}: shim gone too early"
        );

        // The last one takes the shim with it.
        kill_and_remove(&d, &ids[1]);
        eventually(10, "the pod's shim to exit", || {
            !Path::new(&socket).exists()
        });
        for id in &ids {
            assert_no_leftovers(&d, id);
        }
    }
}
