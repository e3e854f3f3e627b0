//! Container logs: berthd's `json-file` log driver and `berth.logs.v1.Logs`.
//!
//! A container opts in with the label `berth.io/log-driver=json-file`. When its task is
//! created without stdout and stderr, berthd names a log file in their place
//! ([`LogDirs::stdio`]) and the shim does the writing, so logs keep flowing while berthd is
//! down. The layout under the daemon's root:
//!
//! ```text
//! <root>/logs/<namespace>/<container>/     0700, removed with the container
//!     json.log, json.log.1, json.log.2 …   Berth's shim: JSON lines, newest file first
//!     raw.log                              any other shim: raw output appended
//! ```
//!
//! Berth's shim (`io.containerd.berth.v2`) gets
//! `file:///<dir>/json.log?format=json-file&max-size=N&max-file=M` and writes Docker's
//! json-file lines (`{"log":…,"stream":…,"time":…}`), rotating by size. Other shims only know
//! plain `file://`, so they get `file:///<dir>/raw.log` and append raw bytes; those read back
//! as `stdout` entries stamped with the file's modification time.
//!
//! Reading ([`reader`], [`stream`]) goes through the files oldest first, applies the
//! request's `since`, `until` and `tail`, and with `follow` keeps polling the current file
//! (through rotations) until the container has no running task and the file is drained.

pub mod grpc;
pub mod reader;
pub mod stream;

use std::{
    collections::HashMap,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use berth_proto::{
    errdefs::{Error, io_error},
    labels::berth,
};
use tokio::sync::mpsc;

use crate::containers::Containers;

pub use stream::{Liveness, Query};

/// The current file of a json-file log.
pub const JSON_LOG: &str = "json.log";
/// The file other shims append raw output to.
pub const RAW_LOG: &str = "raw.log";
/// The runtime whose shim writes json-file logs.
pub const JSON_RUNTIME: &str = "io.containerd.berth.v2";
/// That shim's binary name (for runtimes given as a path).
pub const JSON_SHIM_BINARY: &str = "containerd-shim-berth-v2";
/// Rotation size when the container does not say (10 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
/// Files kept when the container does not say.
pub const DEFAULT_MAX_FILE: u32 = 3;

/// Where containers' logs live: `<root>/logs`.
#[derive(Debug, Clone)]
pub struct LogDirs {
    root: PathBuf,
}

/// A task's stdout and stderr, as berthd fills them in for a logging container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stdio {
    /// The stdout URI.
    pub stdout: String,
    /// The stderr URI (empty for terminals, whose output is all on stdout).
    pub stderr: String,
}

impl Stdio {
    /// The same json-file log, with the output also copied to the client FIFOs `stdout` and
    /// `stderr` (either may be empty): a container followed in the foreground is logged too.
    /// Only Berth's shim reads these query parameters.
    pub fn teed(self, stdout: &str, stderr: &str) -> Stdio {
        let mut uri = self.stdout;
        for (key, fifo) in [("stdout-fifo", stdout), ("stderr-fifo", stderr)] {
            if !fifo.is_empty() {
                uri.push_str(&format!("&{key}={}", encode_path(Path::new(fifo))));
            }
        }
        Stdio {
            stderr: uri.clone(),
            stdout: uri,
        }
    }
}

/// The FIFO paths a foreground client gave as stdout and stderr (a bare path or `fifo://`;
/// stderr may be empty): `None` when stdout is not a FIFO or stderr is something else.
pub fn foreground_fifos(stdout: &str, stderr: &str) -> Option<(String, String)> {
    let out = fifo_path(stdout)?;
    let err = if stderr.is_empty() {
        ""
    } else {
        fifo_path(stderr)?
    };
    Some((out.to_string(), err.to_string()))
}

/// The FIFO path a client gave as `uri` (a bare path or `fifo://`), if that is what it is.
fn fifo_path(uri: &str) -> Option<&str> {
    match uri.split_once("://") {
        None if uri.starts_with('/') => Some(uri),
        Some(("fifo", path)) if path.starts_with('/') && !path.contains('?') => Some(path),
        _ => None,
    }
}

impl LogDirs {
    /// The log dirs of a daemon rooted at `root`.
    pub fn new(root: &Path) -> LogDirs {
        LogDirs {
            root: root.join("logs"),
        }
    }

    /// The log directory of container `id` in `ns` (both validated identifiers).
    pub fn dir(&self, ns: &str, id: &str) -> PathBuf {
        self.root.join(ns).join(id)
    }

    /// The stdout and stderr to give the task of container `id` when its `labels` ask for
    /// the json-file driver (None otherwise), creating its log directory. `runtime` picks
    /// the format: JSON lines for Berth's shim, raw output for others.
    pub fn stdio(
        &self,
        ns: &str,
        id: &str,
        labels: &HashMap<String, String>,
        runtime: &str,
        terminal: bool,
    ) -> Result<Option<Stdio>, Error> {
        if labels.get(berth::LOG_DRIVER).map(String::as_str) != Some(berth::LOG_DRIVER_JSON_FILE) {
            return Ok(None);
        }
        let max_size = match labels.get(berth::LOG_MAX_SIZE) {
            Some(v) => parse_size(v).map_err(|e| e.context(berth::LOG_MAX_SIZE))?,
            None => DEFAULT_MAX_SIZE,
        };
        let max_file = match labels.get(berth::LOG_MAX_FILE) {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: {v:?} is not a positive number of files",
                        berth::LOG_MAX_FILE
                    ))
                })?,
            None => DEFAULT_MAX_FILE,
        };
        let dir = self.dir(ns, id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_error(format!("create log dir {}", dir.display()), e))?;
        let stdout = if writes_json(runtime) {
            format!(
                "file://{}?format=json-file&max-size={max_size}&max-file={max_file}",
                encode_path(&dir.join(JSON_LOG))
            )
        } else {
            format!("file://{}", encode_path(&dir.join(RAW_LOG)))
        };
        let stderr = if terminal {
            String::new()
        } else {
            stdout.clone()
        };
        Ok(Some(Stdio { stdout, stderr }))
    }

    /// Removes container `id`'s logs; a container that never logged has nothing to remove.
    pub fn remove(&self, ns: &str, id: &str) -> Result<(), Error> {
        let dir = self.dir(ns, id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error(format!("remove log dir {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Whether the shim of `runtime` (a name or a binary path) writes json-file logs.
pub fn writes_json(runtime: &str) -> bool {
    runtime == JSON_RUNTIME || Path::new(runtime).file_name() == Some(JSON_SHIM_BINARY.as_ref())
}

/// A byte count: digits with an optional `k`, `m` or `g` (powers of 1024, as Docker reads
/// `max-size`).
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid(format!("{text:?} is not a size in bytes")))
}

/// `path` for a `file://` URI: everything but unreserved characters and `/` percent-encoded,
/// so a `?`, `%` or space in the root cannot change the URI's meaning.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(*b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The log service's logic: finds a container's files and streams them.
pub struct Logs {
    dirs: LogDirs,
    containers: Arc<Containers>,
    liveness: Arc<dyn Liveness>,
}

impl Logs {
    /// Logs kept in `dirs` for `containers`; `liveness` says whether a container still runs.
    pub fn new(dirs: LogDirs, containers: Arc<Containers>, liveness: Arc<dyn Liveness>) -> Logs {
        Logs {
            dirs,
            containers,
            liveness,
        }
    }

    /// Starts streaming container `id`'s log as `query` asks; NotFound for an unknown
    /// container. The stream ends when the receiver is dropped.
    pub fn read(
        &self,
        ns: &str,
        id: &str,
        query: Query,
    ) -> Result<mpsc::Receiver<Result<reader::Entry, Error>>, Error> {
        self.containers.get(ns, id)?;
        let (tx, rx) = mpsc::channel(64);
        let source = stream::Source {
            dir: self.dirs.dir(ns, id),
            namespace: ns.to_string(),
            id: id.to_string(),
            liveness: self.liveness.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = source.send(query, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stdio_names_the_log_file_for_opted_in_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a root?");
        let dirs = LogDirs::new(&root);
        let none = dirs
            .stdio("default", "c1", &labels(&[]), JSON_RUNTIME, false)
            .unwrap();
        assert_eq!(none, None);
        assert!(!dirs.dir("default", "c1").exists());

        let json = labels(&[
            (berth::LOG_DRIVER, berth::LOG_DRIVER_JSON_FILE),
            (berth::LOG_MAX_SIZE, "200"),
        ]);
        let got = dirs
            .stdio("default", "c1", &json, JSON_RUNTIME, false)
            .unwrap()
            .unwrap();
        let dir = encode_path(&dirs.dir("default", "c1"));
        assert!(dir.contains("a%20root%3F"), "{dir}");
        assert_eq!(
            got.stdout,
            format!("file://{dir}/json.log?format=json-file&max-size=200&max-file=3")
        );
        assert_eq!(got.stderr, got.stdout);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dirs.dir("default", "c1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let tty = dirs
            .stdio(
                "default",
                "c2",
                &json,
                "/opt/containerd-shim-berth-v2",
                true,
            )
            .unwrap()
            .unwrap();
        assert!(tty.stdout.contains("json.log?"));
        assert_eq!(tty.stderr, "");

        let raw = dirs
            .stdio("default", "c3", &json, "io.containerd.runc.v2", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            raw.stdout,
            format!("file://{}/raw.log", encode_path(&dirs.dir("default", "c3")))
        );

        dirs.remove("default", "c1").unwrap();
        assert!(!dirs.dir("default", "c1").exists());
        dirs.remove("default", "never").unwrap();
    }

    #[test]
    fn foreground_fifos_ride_along_in_the_log_uri() {
        let base = Stdio {
            stdout: "file:///l/json.log?format=json-file".into(),
            stderr: "file:///l/json.log?format=json-file".into(),
        };
        let teed = base.clone().teed("/run/f/a b-stdout", "/run/f/x&y");
        assert_eq!(
            teed.stdout,
            "file:///l/json.log?format=json-file&stdout-fifo=/run/f/a%20b-stdout\
             &stderr-fifo=/run/f/x%26y"
        );
        assert_eq!(teed.stderr, teed.stdout);
        let out_only = base.teed("/run/f/o", "");
        assert!(
            out_only.stdout.ends_with("&stdout-fifo=/run/f/o"),
            "{out_only:?}"
        );

        let pair = |o: &str, e: &str| Some((o.to_string(), e.to_string()));
        assert_eq!(foreground_fifos("/run/f/o", ""), pair("/run/f/o", ""));
        assert_eq!(
            foreground_fifos("fifo:///run/f/o", "/run/f/e"),
            pair("/run/f/o", "/run/f/e")
        );
        assert_eq!(foreground_fifos("", ""), None);
        assert_eq!(foreground_fifos("/run/f/o", "file:///l"), None);
        assert_eq!(fifo_path("/run/f/o"), Some("/run/f/o"));
        assert_eq!(fifo_path("fifo:///run/f/o"), Some("/run/f/o"));
        for other in ["", "file:///l", "binary:///b", "relative", "fifo:///x?y"] {
            assert_eq!(fifo_path(other), None, "{other}");
        }
    }

    #[test]
    fn bad_rotation_labels_are_invalid_arguments() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = LogDirs::new(tmp.path());
        for (key, value) in [
            (berth::LOG_MAX_SIZE, "lots"),
            (berth::LOG_MAX_SIZE, "0"),
            (berth::LOG_MAX_FILE, "0"),
            (berth::LOG_MAX_FILE, "-1"),
        ] {
            let l = labels(&[
                (berth::LOG_DRIVER, berth::LOG_DRIVER_JSON_FILE),
                (key, value),
            ]);
            let err = dirs.stdio("n", "c", &l, JSON_RUNTIME, false).unwrap_err();
            assert_eq!(
                err.kind,
                berth_proto::errdefs::Kind::InvalidArgument,
                "{key}={value}"
            );
        }
    }

    #[test]
    fn sizes_take_docker_units() {
        assert_eq!(parse_size("200").unwrap(), 200);
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert!(parse_size("m").is_err());
        assert!(parse_size("1.5m").is_err());
    }
}
