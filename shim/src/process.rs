//! One process of a container (its init or an exec) and its lifecycle:
//! created → running (⇄ paused, init only) → stopped.

use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use containerd_shim::asynchronous::io::Pty;
use containerd_shim_protos::api::Status;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use tokio::sync::watch;

use crate::pipes::{StdioPaths, Tasks};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit code (128 + signal when killed).
    pub status: u32,
    /// When the shim saw it.
    pub at: SystemTime,
}

impl Exit {
    /// The exit time as a protobuf timestamp.
    pub fn timestamp(&self) -> Timestamp {
        to_timestamp(self.at)
    }
}

/// A protobuf timestamp for `t`.
pub fn to_timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

#[derive(Default)]
struct State {
    pid: u32,
    status: Option<Status>,
    pty: Option<Pty>,
    tasks: Option<Tasks>,
    spec: Option<oci_spec::runtime::Process>,
}

/// A container's init or exec process.
pub struct Process {
    /// The exec id, empty for the init process.
    pub exec_id: String,
    /// Its stdio as the client named it.
    pub stdio: StdioPaths,
    state: Mutex<State>,
    exit: watch::Sender<Option<Exit>>,
}

impl Process {
    /// A process not yet created.
    pub fn new(exec_id: &str, stdio: StdioPaths) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            stdio,
            state: Mutex::new(State::default()),
            exit: watch::Sender::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its pid (0 before it was created).
    pub fn pid(&self) -> u32 {
        self.state().pid
    }

    /// Its lifecycle state.
    pub fn status(&self) -> Status {
        if self.exit.borrow().is_some() {
            return Status::STOPPED;
        }
        self.state().status.unwrap_or(Status::UNKNOWN)
    }

    /// Records a lifecycle state (not `STOPPED`: that comes from [`Process::set_exited`]).
    pub fn set_status(&self, status: Status) {
        self.state().status = Some(status);
    }

    /// Records that runc created it with `pid`, and the copies serving its stdio.
    pub fn set_created(&self, pid: u32, tasks: Tasks, pty: Option<Pty>) {
        let mut s = self.state();
        s.pid = pid;
        s.status = Some(Status::CREATED);
        s.tasks = Some(tasks);
        s.pty = pty;
    }

    /// Its exit, once it has one.
    pub fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Records its exit and wakes every waiter (only the first exit counts).
    pub fn set_exited(&self, status: u32) -> Exit {
        let exit = Exit {
            status,
            at: SystemTime::now(),
        };
        self.exit.send_if_modified(|e| {
            if e.is_none() {
                *e = Some(exit);
                true
            } else {
                false
            }
        });
        self.exit().unwrap_or(exit)
    }

    /// Waits for its exit.
    pub async fn wait(&self) -> Exit {
        let mut rx = self.exit.subscribe();
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return exit;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; unreachable in practice.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Keeps an exec process's spec until it starts.
    pub fn set_spec(&self, spec: oci_spec::runtime::Process) {
        self.state().spec = Some(spec);
    }

    /// Takes the spec kept by [`Process::set_spec`].
    pub fn take_spec(&self) -> Option<oci_spec::runtime::Process> {
        self.state().spec.take()
    }

    /// The pty master, for terminals.
    pub fn pty(&self) -> Option<Pty> {
        self.state().pty.clone()
    }

    /// The stdio copy tasks.
    pub fn tasks(&self) -> Option<Tasks> {
        self.state().tasks.clone()
    }

    /// Stops copying its stdio (drains output for up to `drain`) and drops the pty.
    pub async fn close_io(&self, drain: std::time::Duration) {
        let tasks = self.state().tasks.take();
        if let Some(t) = tasks
            && tokio::time::timeout(drain, t.shutdown()).await.is_err()
        {
            t.abort().await;
        }
        self.state().pty = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_is_recorded_once_and_wakes_waiters() {
        let p = std::sync::Arc::new(Process::new("", StdioPaths::default()));
        p.set_status(Status::RUNNING);
        assert_eq!(p.status(), Status::RUNNING);
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait().await })
        };
        tokio::task::yield_now().await;
        let first = p.set_exited(137);
        p.set_exited(0);
        assert_eq!(p.exit().unwrap().status, 137);
        assert_eq!(waiter.await.unwrap(), first);
        assert_eq!(p.status(), Status::STOPPED);
    }
}
