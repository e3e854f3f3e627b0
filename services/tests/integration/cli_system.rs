//! `berthctl` system-level and low-level verbs against a private berthd: volumes, content,
//! leases, snapshots, tasks and container records, `system info|df|prune`, `events`,
//! `completion`, output formats, usage errors and an unreachable daemon.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use sha2::Digest as _;

use crate::{
    daemon::{Daemon, berthctl, ok, text},
    tasks::{busybox, can_run, ctr, eventually, run_detached, sweep, task_status},
};

const RUNTIME: &str = "io.containerd.berth.v2";

fn berthctl_bin() -> PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berthctl")
}

/// Runs berthctl with `args` only (no daemon address given).
fn bare(args: &[&str]) -> Output {
    Command::new(berthctl_bin())
        .args(args)
        .env_remove("BERTH_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("run berthctl")
}

/// Runs berthctl against `d` with `input` on standard input.
fn with_input(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(berthctl_bin())
        .arg("--address")
        .arg(d.socket())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berthctl");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    child.wait_with_output().unwrap()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn cli_system_usage_errors_and_unreachable_daemon() {
    // clap usage errors exit 125 like docker's; help and version exit 0 on stdout.
    let out = bare(&["no-such-verb"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    let out = bare(&["volume", "create", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    let out = bare(&["volume", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example:"));
    let out = bare(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("berthctl "));

    // Completion needs no daemon.
    let script = ok(bare(&["completion", "bash"]));
    assert!(script.contains("_berthctl"), "{script}");
    assert!(script.contains("prune"), "completion misses sub-verbs");
    assert!(ok(bare(&["completion", "fish"])).contains("berthctl"));

    // A missing socket, and a stale one nobody listens on, both get the friendly message.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [&missing, &stale] {
        let socket = socket.to_str().unwrap();
        for verb in [
            &["version"][..],
            &["info"],
            &["system", "df"],
            &["volume", "ls"],
            &["events"],
            &["content", "ls"],
            &["snapshot", "ls"],
            &["lease", "ls"],
            &["task", "ls"],
            &["container", "ls"],
            &["plugins"],
        ] {
            let mut args = vec!["-a", socket];
            args.extend_from_slice(verb);
            let out = bare(&args);
            assert_eq!(out.status.code(), Some(125), "{verb:?}: {}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("cannot reach berthd at {socket}: is it running?")),
                "{verb:?}: {err}"
            );
        }
    }
}

#[test]
fn cli_system_volumes_content_and_leases() {
    let d = Daemon::start();
    let run = |args: &[&str]| berthctl(&d, "default", args);

    // Volumes.
    assert_eq!(
        ok(run(&["volume", "create", "--label", "team=web", "data"])).trim(),
        "data"
    );
    let generated = ok(run(&["volume", "create"])).trim().to_string();
    assert_eq!(generated.len(), 64, "{generated}");
    let listed = ok(run(&["volume", "ls"]));
    assert_eq!(
        lines(&listed)[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(
        listed.contains("local") && listed.contains("data"),
        "{listed}"
    );
    let quiet = ok(run(&["volume", "ls", "-q", "--filter", "label=team=web"]));
    assert_eq!(lines(&quiet), ["data"]);
    let json = ok(run(&[
        "volume", "ls", "--format", "json", "--filter", "name=dat",
    ]));
    let item: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(item["Name"], "data");
    assert_eq!(item["Labels"]["team"], "web");
    let inspect = ok(run(&["volume", "inspect", "data"]));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect[0]["Driver"], "local");
    assert_eq!(inspect[0]["Scope"], "local");
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap().to_string();
    assert!(inspect[0].get("UsageData").is_none());
    std::fs::write(format!("{mountpoint}/f"), b"12345").unwrap();
    let usage = ok(run(&[
        "volume",
        "inspect",
        "-s",
        "--format",
        "{{.UsageData.Size}} {{.UsageData.RefCount}}",
        "data",
    ]));
    assert_eq!(usage.trim(), "5 0");
    let out = run(&["volume", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out).contains("no such volume: nope"),
        "{}",
        text(&out)
    );
    // Without a terminal, prune refuses unless forced.
    let out = run(&["volume", "prune"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).contains("-f/--force"), "{}", text(&out));
    let pruned = ok(run(&["volume", "prune", "-a", "-f"]));
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    assert!(
        pruned.contains(&generated) && pruned.contains("data"),
        "{pruned}"
    );
    assert!(pruned.contains("Total reclaimed space: 5B"), "{pruned}");
    ok(run(&["volume", "create", "gone"]));
    assert_eq!(ok(run(&["volume", "rm", "gone"])).trim(), "gone");
    assert_eq!(ok(run(&["volume", "ls", "-q"])), "");

    // Content: ingest, list, read back, refuse a wrong size, remove.
    let blob = b"hello from berthctl\n";
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(blob)));
    let out = with_input(
        &d,
        &[
            "content",
            "ingest",
            "--expected-size",
            &blob.len().to_string(),
            "--label",
            "containerd.io/gc.root=1",
            "ref-1",
        ],
        blob,
    );
    assert_eq!(ok(out).trim(), digest);
    let listed = ok(run(&["content", "ls"]));
    assert_eq!(
        lines(&listed)[0].split_whitespace().collect::<Vec<_>>(),
        ["DIGEST", "SIZE", "AGE", "LABELS"]
    );
    assert!(
        listed.contains(&digest) && listed.contains("containerd.io/gc.root=1"),
        "{listed}"
    );
    assert_eq!(lines(&ok(run(&["content", "ls", "-q"]))), [digest.as_str()]);
    let got = run(&["content", "get", &digest]);
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(got.stdout, blob);
    let out = with_input(
        &d,
        &["content", "ingest", "--expected-size", "99", "ref-2"],
        blob,
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    let active = ok(run(&["content", "active"]));
    assert!(active.contains("ref-2"), "{active}");
    assert_eq!(ok(run(&["content", "rm", &digest])).trim(), digest);
    let out = run(&["content", "get", &digest]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).contains("no such content"), "{}", text(&out));

    // Leases.
    assert_eq!(
        ok(run(&[
            "lease",
            "create",
            "--id",
            "l1",
            "--expires-in",
            "1h",
            "--label",
            "a=b"
        ]))
        .trim(),
        "l1"
    );
    let listed = ok(run(&["lease", "ls"]));
    assert!(
        listed.contains("l1")
            && listed.contains("a=b")
            && listed.contains("containerd.io/gc.expire="),
        "{listed}"
    );
    let json = ok(run(&["lease", "ls", "--format", "{{json .}}"]));
    let item: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
    assert_eq!(item["ID"], "l1");
    assert_eq!(ok(run(&["lease", "rm", "l1"])).trim(), "l1");
    assert_eq!(ok(run(&["lease", "ls", "-q"])), "");

    // Version, plugins and namespaces through --format and -q.
    let version = ok(run(&["version", "--format", "{{.Server.Version}}"]));
    assert!(version.trim().contains("berth"), "{version}");
    let plugins = ok(run(&["plugins", "-q"]));
    assert!(
        plugins
            .lines()
            .any(|l| l == "io.containerd.snapshotter.v1.overlayfs"),
        "{plugins}"
    );
    let ns = ok(run(&["namespace", "ls", "--format", "{{.Name}}"]));
    assert!(ns.lines().any(|l| l == "default"), "{ns}");
}

/// Reads `events` output lines from a child until one satisfies `want`.
fn wait_for_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no matching event line: {e}"),
        }
    }
}

#[test]
fn cli_system_containers_tasks_snapshots_and_events() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let run = |args: &[&str]| berthctl(&d, "default", args);

    // `events` runs as a child; its lines are read as they come.
    let mut events = Command::new(berthctl_bin())
        .arg("--address")
        .arg(d.socket())
        .args(["events", "--filter", "type=container"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Subscribing is asynchronous: give it a moment.
    std::thread::sleep(Duration::from_millis(500));

    let ids = vec!["web1".to_string(), "done1".to_string()];
    run_detached(
        &d,
        RUNTIME,
        &image,
        "web1",
        &["--label", "berth.io/name=web"],
        &["sleep", "1000"],
    );
    run_detached(&d, RUNTIME, &image, "done1", &[], &["true"]);
    let started = wait_for_line(&rx, |l| {
        l.contains(" /tasks/start ") && l.contains("\"container_id\":\"web1\"")
    });
    assert!(started.contains(" default /tasks/start {"), "{started}");
    let _ = events.kill();
    let _ = events.wait();
    eventually(10, "done1 stopped", || {
        task_status(&d, "done1").as_deref() == Some("STOPPED")
    });

    // Container records and tasks, low level.
    let listed = ok(run(&["container", "ls"]));
    assert_eq!(
        lines(&listed)[0].split_whitespace().collect::<Vec<_>>(),
        ["CONTAINER", "IMAGE", "RUNTIME"]
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("web1") && l.contains(RUNTIME)),
        "{listed}"
    );
    assert_eq!(
        lines(&ok(run(&["container", "ls", "-q"]))),
        ["done1", "web1"]
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(run(&["container", "info", "web"]))).unwrap();
    assert_eq!(info[0]["ID"], "web1");
    assert_eq!(info[0]["SnapshotKey"], "web1");
    assert!(info[0]["Spec"]["process"]["args"].is_array(), "{info}");
    let labels = ok(run(&["container", "label", "web", "tier=front"]));
    assert!(
        labels.contains("tier=front") && labels.contains("berth.io/name=web"),
        "{labels}"
    );
    let tasks = ok(run(&["task", "ls"]));
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with("web1") && l.ends_with("RUNNING")),
        "{tasks}"
    );
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with("done1") && l.ends_with("STOPPED")),
        "{tasks}"
    );
    let status = ok(run(&["task", "ls", "--format", "{{.ID}}={{.Status}}"]));
    assert_eq!(lines(&status), ["done1=STOPPED", "web1=RUNNING"]);
    let ps = ok(run(&["task", "ps", "web"]));
    assert!(ps.lines().count() >= 2 && ps.starts_with("PID"), "{ps}");
    let out = run(&["container", "rm", "done1"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).contains("task rm"), "{}", text(&out));

    // Snapshots.
    let keys = ok(run(&["snapshot", "ls", "-q"]));
    assert!(
        keys.lines().any(|l| l == "web1") && keys.lines().any(|l| l.starts_with("sha256:")),
        "{keys}"
    );
    let tree = ok(run(&["snapshot", "tree"]));
    assert!(
        tree.lines().next().unwrap().starts_with("sha256:"),
        "{tree}"
    );
    assert!(
        tree.contains("  \\_ web1") && tree.contains("  \\_ done1"),
        "{tree}"
    );
    let mounts = ok(run(&["snapshot", "mounts", "/mnt/x", "web1"]));
    assert!(
        mounts.starts_with("mount -t overlay overlay /mnt/x -o "),
        "{mounts}"
    );
    assert!(
        mounts.contains("upperdir=") && mounts.contains("lowerdir="),
        "{mounts}"
    );

    // System info and df.
    let counts = ok(run(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}",
    ]));
    assert_eq!(counts.trim(), "2 1 1 1");
    let info = ok(run(&["system", "info"]));
    assert!(
        info.contains(" Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n"),
        "{info}"
    );
    assert!(info.contains(" Snapshotters: overlayfs native"), "{info}");
    let df = ok(run(&["system", "df"]));
    let rows: Vec<Vec<&str>> = df
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{df}"
    );
    assert_eq!(&rows[1][..3], ["Images", "1", "1"], "{df}");
    assert_eq!(&rows[2][..3], ["Containers", "2", "1"], "{df}");
    assert_eq!(&rows[3][..3], ["Local Volumes", "0", "0"], "{df}");
    let json = ok(run(&["system", "df", "--format", "json"]));
    assert_eq!(json.lines().count(), 3, "{json}");
    assert!(ok(run(&["system", "df", "-v"])).contains("Containers space usage:"));

    // Prune removes the stopped container, its task and its snapshot, and keeps the rest.
    let out = run(&["system", "prune"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "prune without -f and without a terminal"
    );
    let pruned = ok(run(&["system", "prune", "-f"]));
    assert!(
        pruned.starts_with("Deleted Containers:\ndone1\n"),
        "{pruned}"
    );
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert_eq!(lines(&ok(run(&["container", "ls", "-q"]))), ["web1"]);
    assert!(!ok(run(&["snapshot", "ls", "-q"])).contains("done1"));

    // Kill through the low-level task verbs, then remove the task and the record.
    ok(run(&["task", "kill", "-s", "SIGKILL", "web"]));
    eventually(10, "web1 stopped", || {
        task_status(&d, "web1").as_deref() == Some("STOPPED")
    });
    assert_eq!(ok(run(&["task", "rm", "web"])).trim(), "web1");
    assert_eq!(
        ok(run(&["container", "rm", "--snapshot", "web"])).trim(),
        "web1"
    );
    assert_eq!(ok(run(&["container", "ls", "-q"])), "");
    assert!(!ok(run(&["snapshot", "ls", "-q"])).contains("web1"));
    // The image is unused now: `prune -a` removes it.
    let pruned = ok(run(&["system", "prune", "-a", "-f"]));
    assert!(
        pruned.contains("Deleted Images:\nuntagged: busybox:1"),
        "{pruned}"
    );
    assert_eq!(ctr(&d, &["images", "ls", "-q"]), "");
    sweep(&d, &ids);
}
