//! A process's stdio as runc sees it ([`ProcessIo`], the `runc` crate's `Io`).
//!
//! Output is handed to the container directly whenever possible, so the shim copies
//! nothing: FIFOs are opened read-write (the open never blocks and the client sees EOF
//! once the container's last writer is gone), files are opened for append, a logging
//! binary gets the read ends of two pipes. Only stdin is copied (from its FIFO into a pipe)
//! so that CloseIO can end it, terminals are copied through the pty master
//! ([`crate::console`]), and a json-file log is written by the shim from two pipes
//! ([`crate::logcopy`]).

use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use containerd_shim::asynchronous::io::IoTasks;
use tokio::net::unix::pipe;

use crate::error::{Error, Result};
use crate::jsonlog::{JsonLog, LogConfig, Stream};
use crate::logcopy::LogCopies;
use crate::reaper;
use crate::stdio::{Destination, Tee};

/// The stdio strings of a create or exec request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    /// stdin FIFO or empty.
    pub stdin: String,
    /// stdout FIFO or URI, or empty.
    pub stdout: String,
    /// stderr FIFO or empty.
    pub stderr: String,
    /// Whether the process gets a terminal.
    pub terminal: bool,
}

/// The descriptors runc passes to a process, plus the copies the shim runs for it.
#[derive(Debug, Default)]
pub struct ProcessIo {
    fds: Mutex<[Option<OwnedFd>; 3]>,
    tasks: Tasks,
}

/// The copies serving a process's stdio (with the `Debug` the `runc` crate's `Io` trait
/// requires).
#[derive(Clone, Default)]
pub struct Tasks {
    /// Copies between the client's FIFOs and the process (stdin, terminals).
    pub io: IoTasks,
    /// Copies of the process's output into its json-file log.
    pub logs: LogCopies,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tasks")
    }
}

impl Tasks {
    /// Lets every output copy finish, then stops the rest (see [`IoTasks::shutdown`]);
    /// dropping the future early aborts the log copies.
    pub async fn shutdown(&self) {
        tokio::join!(self.io.shutdown(), self.logs.finish());
    }

    /// Stops every copy at once.
    pub async fn abort(&self) {
        self.logs.abort();
        self.io.abort().await;
    }

    /// Lets go of stdin, as CloseIO asks.
    pub fn close_input(&self) {
        self.io.close_input();
    }
}

fn open_null(write: bool) -> Result<OwnedFd> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open /dev/null", e))
}

fn open_fifo_writer(path: &std::path::Path) -> Result<OwnedFd> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

fn open_append(path: &std::path::Path) -> Result<OwnedFd> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

fn os_pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("pipe", std::io::Error::from(e)))
}

/// Starts a logging binary on fds 3 (stdout), 4 (stderr) and 5 (ready), waits until it
/// is ready and returns the write ends for the container.
async fn start_logger(
    path: &std::path::Path,
    args: &[String],
    id: &str,
    namespace: &str,
) -> Result<(OwnedFd, OwnedFd)> {
    let (out_r, out_w) = os_pipe()?;
    let (err_r, err_w) = os_pipe()?;
    let (ready_r, ready_w) = os_pipe()?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let fds = [out_r, err_r, ready_w];
    use std::os::fd::AsRawFd;
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: only async-signal-safe dup2 calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("start logging binary {}", path.display()), e))?;
    // The reaper collects it; nobody needs its status.
    drop(reaper::watch(child.id()));
    drop(fds);
    let mut ready = pipe::Receiver::from_owned_fd(ready_r)
        .map_err(|e| Error::io("logging binary ready pipe", e))?;
    let mut byte = [0u8; 1];
    use tokio::io::AsyncReadExt;
    let _ = ready.read(&mut byte).await;
    Ok((out_w, err_w))
}

impl ProcessIo {
    /// Opens what `paths` name for a process that has no terminal.
    pub async fn open(paths: &StdioPaths, id: &str, namespace: &str) -> Result<ProcessIo> {
        let tasks = Tasks::default();
        let stdin = if paths.stdin.is_empty() || paths.terminal {
            open_null(false)?
        } else {
            let (r, w) = os_pipe()?;
            let writer = pipe::Sender::from_owned_fd(w).map_err(|e| Error::io("stdin pipe", e))?;
            tasks
                .io
                .copy_from_fifo(&paths.stdin, writer)
                .map_err(|e| Error::Runtime(e.to_string()))?;
            r
        };
        if paths.terminal {
            return Ok(ProcessIo {
                fds: Mutex::new([Some(stdin), Some(open_null(true)?), Some(open_null(true)?)]),
                tasks,
            });
        }
        let (stdout, stderr) = match Destination::parse(&paths.stdout)? {
            Destination::Null => (open_null(true)?, stderr_fifo_or_null(&paths.stderr)?),
            Destination::Fifo(p) => (open_fifo_writer(&p)?, stderr_fifo_or_null(&paths.stderr)?),
            Destination::File(p) => {
                let f = open_append(&p)?;
                let g = f.try_clone().map_err(|e| Error::io("dup", e))?;
                (f, g)
            }
            Destination::JsonLog(config, tee) => open_json_log(config, &tee, &tasks.logs)?,
            Destination::Binary { path, args } => start_logger(&path, &args, id, namespace).await?,
        };
        Ok(ProcessIo {
            fds: Mutex::new([Some(stdin), Some(stdout), Some(stderr)]),
            tasks,
        })
    }

    /// The copy tasks of this process (stdin, terminal, log).
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }
}

/// Opens the json-file log `config` names and starts copying two pipes into it (and into
/// the FIFOs of `tee`); returns the pipes' write ends for the process's stdout and stderr.
fn open_json_log(config: LogConfig, tee: &Tee, copies: &LogCopies) -> Result<(OwnedFd, OwnedFd)> {
    let log = Arc::new(Mutex::new(JsonLog::open(config)?));
    let (out_r, out_w) = os_pipe()?;
    let (err_r, err_w) = os_pipe()?;
    let streams = [
        (out_r, Stream::Stdout, &tee.stdout),
        (err_r, Stream::Stderr, &tee.stderr),
    ];
    for (read, stream, fifo) in streams {
        let reader =
            pipe::Receiver::from_owned_fd(read).map_err(|e| Error::io("log output pipe", e))?;
        let also = match fifo {
            Some(path) => Some(
                pipe::Sender::from_owned_fd(open_fifo_writer(path)?)
                    .map_err(|e| Error::io(format!("FIFO {}", path.display()), e))?,
            ),
            None => None,
        };
        copies.spawn(reader, stream, log.clone(), also);
    }
    Ok((out_w, err_w))
}

fn stderr_fifo_or_null(stderr: &str) -> Result<OwnedFd> {
    match Destination::parse(stderr)? {
        Destination::Null => open_null(true),
        Destination::Fifo(p) => open_fifo_writer(&p),
        other => Err(Error::InvalidArgument(format!(
            "stderr must be a FIFO, not {other:?}"
        ))),
    }
}

#[async_trait]
impl runc::Io for ProcessIo {
    async fn set(&self, cmd: &mut runc::Command) -> std::io::Result<()> {
        let fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        let dup = |fd: &Option<OwnedFd>| -> std::io::Result<Stdio> {
            match fd {
                Some(fd) => Ok(Stdio::from(File::from(fd.try_clone()?))),
                None => Ok(Stdio::null()),
            }
        };
        cmd.stdin(dup(&fds[0])?);
        cmd.stdout(dup(&fds[1])?);
        cmd.stderr(dup(&fds[2])?);
        Ok(())
    }

    async fn close_after_start(&self) {
        let mut fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        *fds = [None, None, None];
    }
}
