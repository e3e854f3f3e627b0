//! Terminals: runc hands the pty master over `--console-socket`; the shim copies between
//! it and the client's FIFOs (or from it into a json-file log) and applies window sizes.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use containerd_shim::asynchronous::io::Pty;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tokio::io::Interest;
use tokio::net::UnixListener;

use crate::error::{Error, Result};
use crate::jsonlog::{JsonLog, Stream};
use crate::pipes::Tasks;
use crate::stdio::Destination;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A listening socket runc sends the pty master to; removed when dropped.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a fresh socket under the temp dir (only root can connect to it).
    pub fn new() -> Result<ConsoleSocket> {
        let path = std::env::temp_dir().join(format!(
            "berth-pty-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::io(format!("bind {}", path.display()), e))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The socket's path, for runc's `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts runc's connection and receives the pty master.
    pub async fn receive(&self) -> Result<File> {
        let (stream, _) = self
            .listener
            .accept()
            .await
            .map_err(|e| Error::io("accept console socket", e))?;
        loop {
            stream
                .readable()
                .await
                .map_err(|e| Error::io("console socket", e))?;
            let got = stream.try_io(Interest::READABLE, || {
                let mut buf = [0u8; 256];
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(std::io::Error::from)?;
                for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg
                        && let Some(fd) = fds.first()
                    {
                        // SAFETY: the kernel just installed this descriptor for us.
                        return Ok(Some(File::from(unsafe { OwnedFd::from_raw_fd(*fd) })));
                    }
                }
                Ok(None)
            });
            match got {
                Ok(Some(file)) => return Ok(file),
                Ok(None) => return Err(Error::Runtime("console socket: no pty received".into())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(Error::io("receive pty master", e)),
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies between the pty master and the client's FIFOs (or the terminal's output into a
/// json-file log); returns the master for resizing.
pub fn attach(master: File, stdin: &str, stdout: &str, tasks: &Tasks) -> Result<Pty> {
    let pty = Pty::new(master).map_err(|e| Error::Runtime(e.to_string()))?;
    if !stdin.is_empty() {
        tasks
            .io
            .copy_from_fifo(stdin, pty.clone())
            .map_err(|e| Error::Runtime(e.to_string()))?;
    }
    if let Destination::JsonLog(config, _) = Destination::parse(stdout)? {
        let log = Arc::new(Mutex::new(JsonLog::open(config)?));
        tasks.logs.spawn(pty.clone(), Stream::Stdout, log, None);
    } else if !stdout.is_empty() {
        tasks
            .io
            .copy_to_fifo(pty.clone(), stdout)
            .map_err(|e| Error::Runtime(e.to_string()))?;
    }
    Ok(pty)
}

/// Sets the terminal's window size.
pub fn resize(pty: &Pty, width: u32, height: u32) -> Result<()> {
    let size = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    let rc = unsafe { libc::ioctl(pty.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc < 0 {
        return Err(Error::io("resize pty", std::io::Error::last_os_error()));
    }
    Ok(())
}
