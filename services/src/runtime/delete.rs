//! Ending tasks: a normal delete through the shim, and the cleanup after a shim that died.

use std::{
    path::Path,
    sync::{Arc, Weak},
};

use berth_proto::{
    errdefs::{Error, Kind},
    events::{TaskDelete, TaskExit},
};
use containerd_shim_protos::{
    api::{DeleteRequest, DeleteResponse, ShutdownRequest},
    protobuf::well_known_types::empty::Empty,
};

use super::{
    Manager, Slot, Task, binary,
    bundle::Bundle,
    client::{self, Connection},
    create::{cleanup, remove},
    lock,
};
use crate::metadata::Timestamp;

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// The init process's pid.
    pub pid: u32,
    /// Its exit status.
    pub status: u32,
    /// When it exited.
    pub at: Option<prost_types::Timestamp>,
}

impl From<DeleteResponse> for Exit {
    fn from(r: DeleteResponse) -> Exit {
        Exit {
            pid: r.pid,
            status: r.exit_status,
            at: r.exited_at.into_option().map(|t| prost_types::Timestamp {
                seconds: t.seconds,
                nanos: t.nanos,
            }),
        }
    }
}

/// How long a delete waits for a shim without tasks to exit after Shutdown.
const SHIM_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Manager {
    /// Whether another registered task runs on `task`'s shim (a grouped, per-pod shim).
    fn shares_shim(&self, task: &Arc<Task>) -> bool {
        lock(&self.tasks).values().any(|slot| {
            matches!(slot, Slot::Ready(t) if !Arc::ptr_eq(t, task) && Arc::ptr_eq(&t.shim, &task.shim))
        })
    }

    /// Deletes the task of container `id` in `ns`: the shim deletes the init process (refused
    /// while it runs), then is asked to shut down, and the bundle goes.
    pub async fn delete(self: &Arc<Self>, ns: &str, id: &str) -> Result<Exit, Error> {
        let task = self.get(ns, id).await?;
        let req = DeleteRequest {
            id: id.to_string(),
            ..Default::default()
        };
        let deleted: Result<DeleteResponse, Error> = task.call("Delete", &req).await;
        let shim_gone = match &deleted {
            Err(e) if client::is_closed(e) => true,
            Err(e) if e.kind == Kind::NotFound => false,
            Err(e) => return Err(e.clone()),
            Ok(_) => false,
        };
        self.forget(&task);
        let shutdown = ShutdownRequest {
            id: id.to_string(),
            ..Default::default()
        };
        if !shim_gone {
            // The shim exits once it has no tasks left; it closes the connection doing so.
            let _: Result<Empty, Error> = task.call("Shutdown", &shutdown).await;
            // A shim left without tasks exits and takes its socket with it. Until it has, a new
            // task of the same container would start its shim on the same socket path and
            // reach the departing one (Go shims reuse a socket that still answers). Berth's
            // shim withdraws the socket before it answers Shutdown: nothing to wait for.
            if !self.shares_shim(&task) && socket_listed(task.shim.address()) {
                let _ = tokio::time::timeout(SHIM_EXIT_WAIT, task.shim.closed()).await;
            }
            tracing::debug!(namespace = ns, id, "shim shut down");
        }
        let leftover = match (&deleted, &task.binary) {
            (Err(_), Some(binary)) => cleanup(&self.invocation(binary, &task.bundle)).await,
            _ => None,
        };
        remove(&task.bundle);
        tracing::debug!(namespace = ns, id, "task deleted");
        match (deleted, leftover) {
            (Ok(r), _) | (Err(_), Some(r)) => Ok(r.into()),
            (Err(e), None) => Err(e),
        }
    }

    /// The connection to a shim closed: every task still registered on it lost its shim. Each
    /// stays listed until its cleanup is done, as in containerd.
    pub(super) async fn shim_closed(self: &Arc<Self>, conn: Weak<Connection>) {
        let orphans: Vec<Arc<Task>> = lock(&self.tasks)
            .values()
            .filter_map(|slot| match slot {
                Slot::Ready(t) if std::ptr::eq(Arc::as_ptr(&t.shim), conn.as_ptr()) => {
                    Some(t.clone())
                }
                _ => None,
            })
            .collect();
        for task in orphans {
            tracing::warn!(namespace = %task.namespace, id = %task.id, "shim disconnected; cleaning up");
            self.cleanup_dead(&task.bundle, task.binary.as_deref())
                .await;
            self.forget(&task);
        }
    }

    /// How to run `binary`'s verbs for the task of `bundle`.
    pub(super) fn invocation<'a>(
        &'a self,
        binary: &'a Path,
        bundle: &'a Bundle,
    ) -> binary::Invocation<'a> {
        binary::Invocation {
            binary,
            addresses: &self.settings.addresses,
            namespace: &bundle.namespace,
            id: &bundle.id,
            bundle: &bundle.path,
        }
    }

    /// Cleans up after the dead shim of the task in `bundle` (no longer registered), started
    /// from `binary`, and announces the task's end.
    pub(super) async fn cleanup_dead(&self, bundle: &Bundle, binary: Option<&Path>) {
        let exit = match binary {
            Some(binary) => cleanup(&self.invocation(binary, bundle))
                .await
                .map(Exit::from),
            None => None,
        }
        .unwrap_or(Exit {
            pid: 0,
            status: 255,
            at: Some(Timestamp::now().to_proto()),
        });
        // A killed shim cannot remove its socket; containerd leaves it behind, we do not.
        if let Ok(bootstrap) = bundle.read_bootstrap() {
            remove_dead_socket(&bootstrap.address);
        }
        remove(bundle);
        self.exchange.publish(
            &bundle.namespace,
            "/tasks/exit",
            &TaskExit {
                container_id: bundle.id.clone(),
                id: bundle.id.clone(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: exit.at,
            },
        );
        self.exchange.publish(
            &bundle.namespace,
            "/tasks/delete",
            &TaskDelete {
                container_id: bundle.id.clone(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: exit.at,
                id: String::new(),
            },
        );
    }
}

/// The socket path of shim `address` (`unix://…`; `@…` for an abstract one).
fn socket_path(address: &str) -> &Path {
    Path::new(address.strip_prefix("unix://").unwrap_or(address))
}

/// Whether the socket of shim `address` is still in the filesystem (abstract sockets count
/// as listed).
fn socket_listed(address: &str) -> bool {
    let path = socket_path(address);
    path.as_os_str().as_encoded_bytes().starts_with(b"@") || path.exists()
}

/// Removes the socket file at `address` (`unix://…`) when nothing listens there any more.
/// Anything that is not a socket is left alone.
fn remove_dead_socket(address: &str) {
    use std::os::unix::fs::FileTypeExt;
    let path = socket_path(address);
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && std::os::unix::net::UnixStream::connect(path).is_err() {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::debug!(socket = %path.display(), "removed dead shim socket"),
            Err(e) => {
                tracing::warn!(socket = %path.display(), error = %e, "removing dead shim socket")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_sockets_count_as_listed_and_missing_files_do_not() {
        assert!(socket_listed("unix://@berth-shim-x"));
        assert!(!socket_listed("unix:///nonexistent/berth/shim.sock"));
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(socket_listed(&format!("unix://{}", sock.display())));
    }
}
