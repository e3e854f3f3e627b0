//! Copies a shim's log FIFO into berthd's log, one tracing event per line.
//!
//! The FIFO is opened read-write, as containerd does: the copy never sees end of file while a
//! shim restarts its writer, and a shim never blocks on a FIFO without reader. The copy stops
//! when its [`Copier`] is dropped (the task is gone).

use std::path::Path;

use berth_proto::errdefs::{Error, io_error};
use tokio::{io::AsyncBufReadExt as _, task::JoinHandle};

/// The running copy; dropping it stops the copy.
pub struct Copier(JoinHandle<()>);

impl Drop for Copier {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts copying the FIFO at `path` for task `id` of `namespace`.
pub fn copy(path: &Path, namespace: &str, id: &str) -> Result<Copier, Error> {
    let fifo = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)
        .map_err(|e| io_error(format!("open shim log {}", path.display()), e))?;
    let (namespace, id) = (namespace.to_string(), id.to_string());
    Ok(Copier(tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(fifo).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => tracing::info!(target: "shim", %namespace, %id, "{line}"),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%namespace, %id, error = %e, "shim log closed");
                    break;
                }
            }
        }
    })))
}
