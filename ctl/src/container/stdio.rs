//! A process's stdio through FIFOs: the CLI makes them, hands their paths to berthd, opens
//! its own ends before the process is created, and copies between them and its own stdio.
//!
//! Output ends are opened read-only and non-blocking before the task exists (the shim opens
//! the other end read-write, so neither open waits), and read only once the task is created:
//! from then on a read returns EOF exactly when the container's last writer is gone. The
//! stdin end is opened read-write so that it never waits for the shim either; local EOF
//! closes it and asks berthd to close the process's stdin (`CloseIO`).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use containerd_client::services::v1::{CloseIoRequest, tasks_client::TasksClient};
use rustix::fs::{Mode, mkfifoat};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::unix::pipe,
    task::JoinHandle,
};

use crate::client::Client;

/// The FIFOs of one process, in a private directory removed on drop.
pub struct Fifos {
    dir: PathBuf,
    stdin: Option<PathBuf>,
    stdout: PathBuf,
    stderr: Option<PathBuf>,
}

/// The directory FIFO directories go in: `/run/berth/fifo` for root, else the user's runtime
/// dir, else the temp dir.
fn fifo_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/run/berth/fifo");
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("berth/fifo"))
        .unwrap_or_else(|| std::env::temp_dir().join("berth-fifo"))
}

fn make_fifo(path: &Path) -> anyhow::Result<()> {
    mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(0o600))
        .with_context(|| format!("creating FIFO {}", path.display()))
}

impl Fifos {
    /// Makes FIFOs for process `name` (`<id>` or `<id>-<exec id>`): stdout always, stdin when
    /// `stdin`, stderr unless `tty` (a terminal has one output stream).
    pub fn new(name: &str, stdin: bool, tty: bool) -> anyhow::Result<Fifos> {
        let root = fifo_root();
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let dir = root.join(format!("{}-{}", &crate::lookup::new_id()[..16], name));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let fifos = Fifos {
            stdin: stdin.then(|| dir.join("stdin")),
            stdout: dir.join("stdout"),
            stderr: (!tty).then(|| dir.join("stderr")),
            dir,
        };
        for p in [&fifos.stdin, &Some(fifos.stdout.clone()), &fifos.stderr]
            .into_iter()
            .flatten()
        {
            make_fifo(p)?;
        }
        Ok(fifos)
    }

    /// The (stdin, stdout, stderr) strings of a create or exec request.
    pub fn paths(&self) -> (String, String, String) {
        let s = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        (
            s(&self.stdin).unwrap_or_default(),
            self.stdout.display().to_string(),
            s(&self.stderr).unwrap_or_default(),
        )
    }

    /// Opens the CLI's ends (before the process is created).
    pub fn open(&self) -> anyhow::Result<Ends> {
        let reader = |p: &Path| {
            pipe::OpenOptions::new()
                .open_receiver(p)
                .with_context(|| format!("opening FIFO {}", p.display()))
        };
        let stdin = match &self.stdin {
            Some(p) => Some(
                pipe::OpenOptions::new()
                    .read_write(true)
                    .open_sender(p)
                    .with_context(|| format!("opening FIFO {}", p.display()))?,
            ),
            None => None,
        };
        Ok(Ends {
            stdin,
            stdout: reader(&self.stdout)?,
            stderr: self.stderr.as_deref().map(reader).transpose()?,
        })
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The CLI's ends of a process's FIFOs.
pub struct Ends {
    stdin: Option<pipe::Sender>,
    stdout: pipe::Receiver,
    stderr: Option<pipe::Receiver>,
}

/// Copies running for one process.
pub struct Copies {
    outputs: Vec<JoinHandle<()>>,
}

impl Ends {
    /// Starts copying (the process must exist): our stdin into its stdin FIFO (then
    /// `CloseIO`), its stdout and stderr FIFOs to ours.
    pub fn start(self, client: &Client, id: &str, exec_id: &str) -> Copies {
        if let Some(sender) = self.stdin {
            let client = client.clone();
            let (id, exec_id) = (id.to_string(), exec_id.to_string());
            tokio::spawn(async move {
                copy_stdin(sender).await;
                let _ = TasksClient::new(client.channel.clone())
                    .close_io(client.request(CloseIoRequest {
                        container_id: id,
                        exec_id,
                        stdin: true,
                    }))
                    .await;
            });
        }
        let mut outputs = vec![tokio::spawn(copy_out(self.stdout, tokio::io::stdout()))];
        if let Some(err) = self.stderr {
            outputs.push(tokio::spawn(copy_out(err, tokio::io::stderr())));
        }
        Copies { outputs }
    }
}

impl Copies {
    /// Waits until every output stream has reached EOF.
    pub async fn finish(self) {
        for h in self.outputs {
            let _ = h.await;
        }
    }
}

/// Copies a FIFO to one of our outputs until EOF, flushing every chunk.
async fn copy_out(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Copies our stdin into the process's stdin FIFO until EOF. Our stdin is read on a plain
/// thread (a blocking read there never holds up the CLI's exit).
async fn copy_stdin(mut sender: pipe::Sender) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some(chunk) = rx.recv().await {
        if sender.write_all(&chunk).await.is_err() {
            break;
        }
    }
}
