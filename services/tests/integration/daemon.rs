//! A private berthd for one test: temp root, state and socket; logs dumped on failure;
//! killed on drop.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use containerd_client::tonic::{Request, transport::Channel};

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    config: String,
}

impl Daemon {
    /// Starts berthd in a fresh temp dir and waits until it answers `Version`.
    pub fn start() -> Daemon {
        Daemon::start_with_config("")
    }

    /// Starts berthd with `config` (TOML; `{dir}` stands for the daemon's temp dir).
    pub fn start_with_config(config: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .expect("tempdir");
        let config = config.replace("{dir}", &dir.path().display().to_string());
        let mut d = Daemon {
            dir,
            child: None,
            config,
        };
        d.spawn();
        d
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("berthd.log")
    }

    fn spawn(&mut self) {
        let collections_before = self.collections();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // An explicit --config must exist: give each daemon its own (empty: all defaults).
        let config = self.dir.path().join("config.toml");
        std::fs::write(&config, &self.config).expect("config file");
        let mut path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .collect::<Vec<_>>();
        if let Some(dir) = berth_shim_dir() {
            path.insert(0, dir);
        }
        let child = Command::new(berthd_bin())
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .arg("--address")
            .arg(self.socket())
            .arg("--config")
            .arg(&config)
            .arg("--log-level")
            .arg("debug,h2=info,hyper=info,tonic=info,tower=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        self.wait_ready(collections_before);
    }

    /// Waits for the socket and for the start-up garbage collection, so that tests do not
    /// race the collector for content they have not protected yet.
    fn wait_ready(&mut self, collections_before: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berthd exited early with {status}\n{}", self.log());
            }
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok()
                && self.collections() > collections_before
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("berthd did not come up\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn collections(&self) -> usize {
        self.log().matches("garbage collection done").count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILLs the daemon (a crash) and waits for it to die.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the daemon to stop with SIGTERM and returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap()
    }

    /// Starts the daemon again on the same directories.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub async fn channel(&self) -> Channel {
        containerd_client::connect(self.socket())
            .await
            .expect("connect to berthd")
    }

    /// Runs `ctr` against this daemon (None when ctr is not installed).
    pub fn ctr(&self, args: &[&str]) -> Option<Command> {
        let ctr = which("ctr")?;
        let mut cmd = Command::new(ctr);
        cmd.arg("--address").arg(self.socket()).args(args);
        Some(cmd)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- berthd log ----\n{}", self.log());
        }
        self.kill();
    }
}

/// The berthd binary: `$BERTHD_BIN` (a copy that a parallel build into the same target dir
/// cannot replace mid-test), else the one cargo built for these tests.
pub fn berthd_bin() -> PathBuf {
    std::env::var_os("BERTHD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berthd")))
}

/// The directory holding Berth's shim `containerd-shim-berth-v2`: `$BERTH_SHIM_DIR`, else the
/// directory berthd was built into (the private daemons get it on their `PATH`).
pub fn berth_shim_dir() -> Option<PathBuf> {
    let candidates = std::env::var_os("BERTH_SHIM_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            Path::new(env!("CARGO_BIN_EXE_berthd"))
                .parent()
                .map(Path::to_path_buf),
        );
    candidates
        .into_iter()
        .find(|dir| dir.join("containerd-shim-berth-v2").is_file())
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| Path::new(p).is_file())
    })
}

/// Standard output and error of a finished command, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Standard output of a command that must have succeeded.
pub fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ctr` against `d` and returns its output; the command must succeed.
pub fn ctr_ok(d: &Daemon, args: &[&str]) -> String {
    ok(d.ctr(args)
        .expect("ctr installed")
        .output()
        .expect("run ctr"))
}

/// The `berthctl` binary: `$BERTHCTL_BIN`, else the one built next to berthd (the target dir
/// may be shared by several checkouts: the variable pins a copy).
pub fn berthctl_bin() -> PathBuf {
    std::env::var_os("BERTHCTL_BIN").map_or_else(
        || Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berthctl"),
        PathBuf::from,
    )
}

/// Runs `berthctl` against this daemon in namespace `ns`.
pub fn berthctl(d: &Daemon, ns: &str, args: &[&str]) -> std::process::Output {
    let bin = berthctl_bin();
    assert!(
        bin.exists(),
        "build berthctl first (cargo build -p berthctl)"
    );
    Command::new(bin)
        .arg("--address")
        .arg(d.socket())
        .args(["--namespace", ns])
        .args(args)
        .output()
        .expect("run berthctl")
}

/// Creates lease `id` in `namespace` (content written under it survives collection).
pub async fn lease(ch: &Channel, namespace: &str, id: &str) {
    containerd_client::services::v1::leases_client::LeasesClient::new(ch.clone())
        .create(ns(
            namespace,
            containerd_client::services::v1::CreateRequest {
                id: id.into(),
                labels: Default::default(),
            },
        ))
        .await
        .expect("create lease");
}

/// Wraps a message in a request carrying the namespace header.
pub fn ns<T>(namespace: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("containerd-namespace", namespace.parse().unwrap());
    req
}

/// Like [`ns`], with a lease header too.
pub fn ns_lease<T>(namespace: &str, lease: &str, msg: T) -> Request<T> {
    let mut req = ns(namespace, msg);
    req.metadata_mut()
        .insert("containerd-lease", lease.parse().unwrap());
    req
}

/// Skips a test that needs `ctr` when it is not installed (CI installs it).
#[macro_export]
macro_rules! ctr_or_skip {
    ($daemon:expr, $args:expr) => {
        match $daemon.ctr($args) {
            Some(cmd) => cmd,
            None => {
                if std::env::var_os("CI").is_some() {
                    panic!("ctr is required in CI");
                }
                eprintln!("skipping: ctr not installed");
                return;
            }
        }
    };
}
