//! `berthctl` container lifecycle and I/O against a private berthd: run (foreground,
//! detached, with a terminal), exec, logs, stop/start/kill/rm, wait, rename, pause, volumes and
//! restart policies, and nothing left behind after `rm`.

use std::{
    process::{Command, Output, Stdio},
    time::Duration,
};

use crate::{
    daemon::{Daemon, berthctl, berthctl_bin, text, which},
    tasks::{busybox, can_run, ctr, eventually, task_status},
};

/// Runs berthctl in namespace `default`; returns its output whatever the status.
fn bc(d: &Daemon, args: &[&str]) -> Output {
    berthctl(d, "default", args)
}

/// Runs berthctl; it must succeed. Returns stdout.
fn bc_ok(d: &Daemon, args: &[&str]) -> String {
    let out = bc(d, args);
    assert!(out.status.success(), "berthctl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The exit code of a berthctl command, with its output for assertion messages.
fn code(d: &Daemon, args: &[&str]) -> (Option<i32>, String) {
    let out = bc(d, args);
    (out.status.code(), text(&out))
}

/// Asserts that no container, task or active snapshot is left in the daemon.
fn assert_nothing_left(d: &Daemon) {
    assert_eq!(
        ctr(d, &["containers", "ls", "-q"]).trim(),
        "",
        "containers left"
    );
    assert_eq!(ctr(d, &["tasks", "ls", "-q"]).trim(), "", "tasks left");
    let snapshots = ctr(d, &["snapshots", "ls"]);
    assert!(
        !snapshots.lines().any(|l| l.contains("Active")),
        "active snapshots left:\n{snapshots}"
    );
}

/// Whether berthd serves the given Berth API yet (the logs and volumes services come with
/// the daemon-side work); prints why a part is skipped otherwise.
fn served(out: &Output, what: &str) -> bool {
    let t = text(out).to_lowercase();
    let missing = t.contains("not implemented") || t.contains("unimplemented");
    if missing {
        eprintln!("skipping {what}: berthd does not serve it yet");
    }
    !missing
}

#[test]
fn cli_run_foreground_exit_codes_and_options() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    assert_eq!(bc_ok(&d, &["run", "--rm", &image, "echo", "hi"]), "hi\n");
    let (c, t) = code(&d, &["run", "--rm", &image, "sh", "-c", "exit 7"]);
    assert_eq!(c, Some(7), "{t}");
    let (c, t) = code(&d, &["run", "--rm", &image, "nope"]);
    assert_eq!(c, Some(127), "{t}");

    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-u",
            "65534",
            "--hostname",
            "berthy",
            &image,
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; hostname",
        ],
    );
    assert_eq!(out, "bar\n/tmp\n65534\nberthy\n");
    // A user given by name is looked up in the image's /etc/passwd.
    let out = bc_ok(&d, &["run", "--rm", "-u", "nobody", &image, "id", "-un"]);
    assert_eq!(out.trim(), "nobody");
    let (c, t) = code(&d, &["run", "--rm", "--read-only", &image, "touch", "/x"]);
    assert_ne!(c, Some(0), "{t}");
    assert!(t.contains("Read-only file system"), "{t}");
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "--memory",
            "32m",
            &image,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(out.trim(), "33554432");
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            &image,
            "grep",
            "CapEff",
            "/proc/self/status",
        ],
    );
    assert!(out.contains("0000000000000000"), "{out}");
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            &image,
            "via",
            "entry",
        ],
    );
    assert_eq!(out, "via entry\n");
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "--pids-limit",
            "10",
            "--security-opt",
            "no-new-privileges",
            &image,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; grep NoNewPrivs /proc/self/status",
        ],
    );
    assert!(out.starts_with("10\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let env_file = d.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let env_file = env_file.display().to_string();
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "--env-file",
            &env_file,
            &image,
            "sh",
            "-c",
            "echo $FROM_FILE",
        ],
    );
    assert_eq!(out, "yes\n");
    // --pull never does not fetch a missing image.
    let (c, t) = code(&d, &["run", "--rm", "--pull", "never", "nosuch:1", "true"]);
    assert_eq!(c, Some(125), "{t}");
    assert!(t.contains("no such image"), "{t}");
    // A foreground run without --rm leaves an exited container; rm removes everything.
    let out = bc(&d, &["run", "--name", "once", &image, "true"]);
    assert!(out.status.success(), "{}", text(&out));
    bc_ok(&d, &["rm", "once"]);
    // Usage errors exit 125.
    assert_eq!(
        code(&d, &["run", "--restart", "sometimes", &image]).0,
        Some(125)
    );
    assert_nothing_left(&d);
}

#[test]
fn cli_run_detached_lifecycle() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let id = bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            &image,
            "sh",
            "-c",
            "echo started; sleep 1000",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(task_status(&d, &id).as_deref(), Some("RUNNING"));
    // The name is taken.
    let (c, t) = code(&d, &["run", "-d", "--name", "web", &image, "true"]);
    assert_eq!(c, Some(125), "{t}");
    assert!(t.contains("already in use"), "{t}");

    assert_eq!(bc_ok(&d, &["exec", "web", "echo", "x"]), "x\n");
    let (c, t) = code(&d, &["exec", "web", "nope"]);
    assert_eq!(c, Some(127), "{t}");
    let (c, t) = code(&d, &["exec", "web", "sh", "-c", "exit 9"]);
    assert_eq!(c, Some(9), "{t}");
    let out = bc_ok(
        &d,
        &[
            "exec",
            "-e",
            "A=b",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "web",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -un)",
        ],
    );
    assert_eq!(out, "b /tmp nobody\n");
    // A numeric uid takes its group from the image's /etc/passwd; an unlisted one gets gid 0.
    let out = bc_ok(&d, &["exec", "-u", "65534", "web", "id", "-g"]);
    assert_eq!(out, "65534\n");
    let out = bc_ok(&d, &["exec", "-u", "4242", "web", "id", "-g"]);
    assert_eq!(out, "0\n");

    let logs = bc(&d, &["logs", "web"]);
    if served(&logs, "logs") {
        eventually(5, "log has `started`", || {
            bc_ok(&d, &["logs", "web"]).contains("started")
        });
    }

    // rm refuses a running container.
    let (c, t) = code(&d, &["rm", "web"]);
    assert_ne!(c, Some(0), "{t}");
    assert!(t.contains("container is running"), "{t}");

    // sh as pid 1 ignores SIGTERM: stop kills it after the grace period.
    assert_eq!(bc_ok(&d, &["stop", "-t", "1", "web"]).trim(), "web");
    assert_eq!(task_status(&d, &id).as_deref(), Some("STOPPED"));
    assert_eq!(bc_ok(&d, &["wait", "web"]).trim(), "137");
    assert_eq!(bc_ok(&d, &["start", "web"]).trim(), "web");
    assert_eq!(task_status(&d, &id).as_deref(), Some("RUNNING"));

    let before = ctr(&d, &["task", "ls"]);
    assert_eq!(bc_ok(&d, &["restart", "-t", "1", "web"]).trim(), "web");
    assert_eq!(task_status(&d, &id).as_deref(), Some("RUNNING"));
    assert_ne!(
        ctr(&d, &["task", "ls"]),
        before,
        "restart kept the same process"
    );

    bc_ok(&d, &["pause", "web"]);
    assert_eq!(task_status(&d, &id).as_deref(), Some("PAUSED"));
    bc_ok(&d, &["unpause", "web"]);
    assert_eq!(task_status(&d, &id).as_deref(), Some("RUNNING"));

    bc_ok(&d, &["rename", "web", "site"]);
    assert!(!bc(&d, &["exec", "web", "true"]).status.success());
    bc_ok(&d, &["exec", "site", "true"]);
    // An ID prefix finds it too.
    bc_ok(&d, &["exec", &id[..10], "true"]);

    assert_eq!(bc_ok(&d, &["kill", "site"]).trim(), "site");
    eventually(10, "killed", || {
        task_status(&d, &id).as_deref() == Some("STOPPED")
    });
    assert_eq!(bc_ok(&d, &["rm", "site"]).trim(), "site");

    // rm -f removes a running one, even a paused one.
    let other = bc_ok(&d, &["run", "-d", &image, "sleep", "1000"]);
    bc_ok(&d, &["pause", other.trim()]);
    bc_ok(&d, &["rm", "-f", other.trim()]);

    // wait prints the exit code and exits 0.
    bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "five",
            &image,
            "sh",
            "-c",
            "sleep 1; exit 5",
        ],
    );
    assert_eq!(bc_ok(&d, &["wait", "five"]).trim(), "5");
    bc_ok(&d, &["rm", "five"]);

    // create + start --attach runs in the foreground with the container's exit code.
    bc_ok(
        &d,
        &[
            "create",
            "--name",
            "later",
            &image,
            "sh",
            "-c",
            "echo attached; exit 4",
        ],
    );
    let out = bc(&d, &["start", "--attach", "later"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attached\n");
    bc_ok(&d, &["rm", "later"]);
    assert!(!bc(&d, &["rm", "nothing-here"]).status.success());
    assert_nothing_left(&d);
}

#[test]
fn cli_run_interactive_tty() {
    if !can_run() || which("script").is_none() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let cmd = format!(
        "stty cols 91 rows 17; {} --address {} run -it --rm {image} sh",
        berthctl_bin().display(),
        d.socket().display()
    );
    let mut script = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = script.stdin.take().unwrap();
    // Give the shell time to start before it reads its input.
    std::thread::sleep(Duration::from_millis(1500));
    use std::io::Write as _;
    input
        .write_all(b"stty size; echo $((6*7)); exit 3\n")
        .unwrap();
    let out = script.wait_with_output().unwrap();
    drop(input);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("42"), "{t}");
    assert!(t.contains("17 91"), "window size not passed: {t}");
    // The terminal was restored: script itself would otherwise keep it raw, so check that
    // berthctl exited cleanly and left nothing behind.
    assert_nothing_left(&d);
}

#[test]
fn cli_run_volumes_and_restart_policies() {
    if !can_run() {
        return;
    }
    let mut d = Daemon::start();
    let image = busybox(&d);
    let out = bc(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/data",
            &image,
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    );
    // The volume service and the restart monitor came to berthd together.
    if !served(&out, "volumes and the restart monitor") {
        assert_nothing_left(&d);
        return;
    }
    assert!(out.status.success(), "{}", text(&out));
    let out = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            &image,
            "cat",
            "/data/f",
        ],
    );
    assert_eq!(out, "kept\n");
    let (c, t) = code(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            &image,
            "touch",
            "/data/g",
        ],
    );
    assert_ne!(c, Some(0), "{t}");
    // A host directory binds too.
    let host = d.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("h"), "from host\n").unwrap();
    let bind = format!("{}:/h", host.display());
    assert_eq!(
        bc_ok(&d, &["run", "--rm", "-v", &bind, &image, "cat", "/h/h"]),
        "from host\n"
    );
    let mount = format!("type=bind,source={},target=/m,readonly", host.display());
    assert_eq!(
        bc_ok(
            &d,
            &["run", "--rm", "--mount", &mount, &image, "cat", "/m/h"]
        ),
        "from host\n"
    );

    // An anonymous volume goes with `rm -v`.
    bc_ok(
        &d,
        &[
            "run",
            "--name",
            "anon",
            "-v",
            "/scratch",
            &image,
            "touch",
            "/scratch/x",
        ],
    );
    assert_eq!(bc_ok(&d, &["volume", "ls", "-q"]).lines().count(), 2);
    bc_ok(&d, &["rm", "-v", "anon"]);
    assert_eq!(bc_ok(&d, &["volume", "ls", "-q"]).trim(), "data");
    // A create that fails after making its anonymous volume takes the volume back.
    let (c, t) = code(
        &d,
        &[
            "run",
            "--rm",
            "-u",
            "nosuchuser",
            "-v",
            "/scratch",
            &image,
            "true",
        ],
    );
    assert_eq!(c, Some(125), "{t}");
    assert!(t.contains("nosuchuser"), "{t}");
    assert_eq!(bc_ok(&d, &["volume", "ls", "-q"]).trim(), "data");

    // A new volume starts with the image's content at its mount point, as in Docker; not with
    // `nocopy`, and a volume that holds data is left as it is.
    let group = bc_ok(&d, &["run", "--rm", &image, "cat", "/etc/group"]);
    assert!(group.contains("root:x:0:"), "{group}");
    let seeded = bc_ok(
        &d,
        &["run", "--rm", "-v", "etc:/etc", &image, "cat", "/etc/group"],
    );
    assert_eq!(seeded, group);
    let bare = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "bare:/etc:nocopy",
            &image,
            "ls",
            "-A",
            "/etc",
        ],
    );
    assert_eq!(bare, "");
    let kept = bc_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "data:/etc:ro",
            &image,
            "ls",
            "-A",
            "/etc",
        ],
    );
    assert_eq!(kept, "f\n");
    bc_ok(&d, &["volume", "rm", "etc", "bare"]);

    let id = bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "keeper",
            "--restart",
            "always",
            &image,
            "sleep",
            "1000",
        ],
    );
    let id = id.trim().to_string();
    let pid_of = |d: &Daemon| -> Option<i32> {
        ctr(d, &["task", "ls"]).lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&id.as_str()) && cols.get(2) == Some(&"RUNNING"))
                .then(|| cols[1].parse().ok())
                .flatten()
        })
    };
    let first = pid_of(&d).expect("keeper running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(20, "keeper restarted after kill", || {
        pid_of(&d).is_some_and(|p| p != first)
    });
    // It comes back after a berthd crash as well (the restart monitor runs at start-up).
    let second = pid_of(&d).unwrap();
    d.kill();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.restart();
    eventually(20, "keeper restarted after berthd restart", || {
        pid_of(&d).is_some_and(|p| p != second)
    });
    // stop keeps it stopped.
    bc_ok(&d, &["stop", "-t", "1", "keeper"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(task_status(&d, &id).as_deref(), Some("STOPPED"));
    bc_ok(&d, &["rm", "keeper"]);
    // run -d --rm: berthd removes the container once it exits.
    bc_ok(&d, &["run", "-d", "--rm", "--name", "gone", &image, "true"]);
    eventually(20, "auto-removed", || {
        ctr(&d, &["containers", "ls", "-q"]).trim().is_empty()
    });
    assert_nothing_left(&d);
}

#[test]
fn cli_run_logs_and_attach() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            &image,
            "sh",
            "-c",
            "echo out; echo err >&2; sleep 0.3; echo late",
        ],
    );
    if !served(&bc(&d, &["logs", "talker"]), "logs") {
        return;
    }
    assert_eq!(bc_ok(&d, &["wait", "talker"]).trim(), "0");
    let out = bc(&d, &["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nlate\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(bc_ok(&d, &["logs", "--tail", "1", "talker"]), "late\n");
    let stamped = bc_ok(&d, &["logs", "-t", "talker"]);
    assert!(
        stamped
            .lines()
            .all(|l| l.len() > 30 && l.as_bytes()[10] == b'T'),
        "{stamped}"
    );
    assert_eq!(
        bc_ok(&d, &["logs", "--since", "1h", "talker"]),
        "out\nlate\n"
    );
    assert_eq!(bc_ok(&d, &["logs", "--until", "1h", "talker"]), "");
    // Follow ends when the container stops.
    bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "slow",
            &image,
            "sh",
            "-c",
            "sleep 1; echo bye",
        ],
    );
    assert_eq!(bc_ok(&d, &["logs", "-f", "slow"]), "bye\n");
    // attach streams new output and ends with the container's code.
    bc_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "late",
            &image,
            "sh",
            "-c",
            "sleep 1; echo attached; exit 3",
        ],
    );
    let out = bc(&d, &["attach", "late"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attached\n");
    // A foreground run prints its output and logs it too, as docker does; so does start -a.
    let big = "seq 1 20000";
    let out = bc(
        &d,
        &[
            "run",
            "--name",
            "fg",
            &image,
            "sh",
            "-c",
            &format!("echo one; echo two >&2; {big} | tail -n 1; exit 4"),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n20000\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    let logged = bc(&d, &["logs", "fg"]);
    assert_eq!(String::from_utf8_lossy(&logged.stdout), "one\n20000\n");
    assert_eq!(String::from_utf8_lossy(&logged.stderr), "two\n");
    let out = bc(&d, &["start", "-a", "fg"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n20000\n");
    assert_eq!(bc_ok(&d, &["logs", "fg"]), "one\n20000\none\n20000\n");
    // Much output, faster than a terminal reads it, arrives whole both ways.
    let out = bc(
        &d,
        &["run", "--name", "flood", &image, "seq", "1", "200000"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(printed.lines().count(), 200000);
    assert_eq!(printed.lines().last(), Some("200000"));
    assert_eq!(bc_ok(&d, &["logs", "flood"]), printed);
    bc_ok(&d, &["rm", "talker", "slow", "late", "fg", "flood"]);
    assert_nothing_left(&d);
}
