//! The shim under a private containerd 1.6 (as root): run, exec, pause/resume, metrics,
//! ps, kill, delete, terminals, OOM, a killed shim and a killed daemon.
//! Skips (with a message) when containerd, ctr or runc is missing or not root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = "io.containerd.berth.v2";
const IMAGE: &str = "berth.test/busybox:latest";

struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn sock(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    fn start(dir: tempfile::TempDir) -> Daemon {
        let mut d = Daemon { dir, child: None };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let root = self.dir.path();
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{r}/c.sock\"\n[ttrpc]\n  address = \"{r}/c.sock.ttrpc\"\n",
                r = root.display()
            ),
        )
        .unwrap();
        let shim_dir = Path::new(env!("CARGO_BIN_EXE_containerd-shim-berth-v2"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("containerd.log"))
            .unwrap();
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(&config)
            .env("PATH", path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not start: {}", self.log());
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.sock())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn task_status(&self, id: &str) -> String {
        self.ok(&["task", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            .unwrap_or_default()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.task_status(id) != want {
            assert!(Instant::now() < deadline, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.ctr(&["task", "rm", id]).status.success() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.ctr(&["c", "rm", id]);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.ctr(&["task", "ls", "-q"]);
            for id in String::from_utf8_lossy(&ids.stdout).lines() {
                self.remove(id.trim());
            }
            let cs = self.ctr(&["c", "ls", "-q"]);
            for id in String::from_utf8_lossy(&cs.stdout).lines() {
                let _ = self.ctr(&["c", "rm", id.trim()]);
            }
        }
        self.kill();
        // Unmount anything left below the temp dir before it is removed.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.path().display().to_string();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|t| t.starts_with(&prefix))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = Command::new("umount").arg("-l").arg(t).status();
        }
    }
}

fn prerequisites() -> bool {
    let missing: Vec<&str> = [
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/usr/sbin/runc",
        "/bin/busybox",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if !missing.is_empty() {
        eprintln!("skipping: missing {missing:?}");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root");
        return false;
    }
    true
}

fn daemon_with_image() -> Daemon {
    let dir = tempfile::Builder::new()
        .prefix("berth-shim-")
        .tempdir_in("/tmp")
        .unwrap();
    let layout = dir.path().join("img");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/busybox-image.sh");
    assert!(
        Command::new(script)
            .arg(&layout)
            .arg("latest")
            .status()
            .unwrap()
            .success()
    );
    let tar = dir.path().join("img.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let d = Daemon::start(dir);
    d.ok(&[
        "images",
        "import",
        "--index-name",
        IMAGE,
        tar.to_str().unwrap(),
    ]);
    d
}

#[test]
fn flows_under_containerd() {
    if !prerequisites() {
        return;
    }
    let mut d = daemon_with_image();

    // run --rm: output and exit code
    let out = d.ctr(&[
        "run",
        "--runtime",
        RUNTIME,
        "--rm",
        IMAGE,
        "t1",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    assert_eq!(out.status.code(), Some(3), "{}", d.log());

    // detached: exec, pause/resume, metrics, ps, kill, rm
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        "t2",
        "sleep",
        "1000",
    ]);
    assert_eq!(d.task_status("t2"), "RUNNING");
    let ps = d.ok(&["task", "exec", "--exec-id", "e1", "t2", "ps"]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    d.ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e2",
        "t2",
        "sleep",
        "500",
    ]);
    let pids = d.ok(&["task", "ps", "t2"]);
    assert!(pids.contains("ExecID:e2"), "{pids}");
    d.ok(&["task", "pause", "t2"]);
    assert_eq!(d.task_status("t2"), "PAUSED");
    d.ok(&["task", "resume", "t2"]);
    assert_eq!(d.task_status("t2"), "RUNNING");
    let metrics = d.ok(&["task", "metrics", "t2"]);
    assert!(
        metrics.contains("memory.usage_in_bytes") || metrics.contains("memory.usage"),
        "{metrics}"
    );
    d.ok(&["task", "kill", "-s", "SIGKILL", "t2"]);
    d.wait_status("t2", "STOPPED");
    d.ok(&["task", "rm", "t2"]);
    d.ok(&["c", "rm", "t2"]);

    // terminal
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "ctr -a {} run -t --runtime {RUNTIME} --rm {IMAGE} tt sh -c 'tty; exit 5'",
            d.sock().display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(5));

    // OOM: exit 137 and a /tasks/oom event
    let mut events = Command::new("ctr")
        .arg("-a")
        .arg(d.sock())
        .arg("events")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = d.ctr(&[
        "run",
        "--runtime",
        RUNTIME,
        "--rm",
        "--memory-limit",
        "33554432",
        IMAGE,
        "oom",
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137));
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let seen = events.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&seen.stdout).contains("/tasks/oom"));

    // a killed shim: containerd cleans up
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        "k1",
        "sleep",
        "1000",
    ]);
    let pid = d
        .ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("k1"))
        .unwrap()
        .to_string();
    let task_pid: i32 = pid.split_whitespace().nth(1).unwrap().parse().unwrap();
    let shim_pid = std::fs::read_to_string(format!("/proc/{task_pid}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<i32>()
        .unwrap();
    // SAFETY: signalling the shim we started through containerd.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{task_pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "container outlived its shim's cleanup"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = d.ctr(&["task", "rm", "k1"]);
    d.ok(&["c", "rm", "k1"]);

    // a killed daemon: the container survives and is manageable afterwards
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        "r1",
        "sleep",
        "1000",
    ]);
    d.kill();
    d.spawn();
    assert_eq!(d.task_status("r1"), "RUNNING");
    d.ok(&["task", "kill", "-s", "SIGKILL", "r1"]);
    d.wait_status("r1", "STOPPED");
    d.ok(&["task", "rm", "r1"]);
    d.ok(&["c", "rm", "r1"]);
}
