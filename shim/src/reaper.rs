//! Child reaping: the shim is a subreaper, so every orphaned container process ends up as
//! its child and must be waited for.
//!
//! One task ([`run`]) reacts to SIGCHLD and reaps every exited child with `waitpid(-1)`.
//! Whoever needs a child's exit status registers the pid with [`watch`]; exits nobody has
//! claimed yet (a container's init can die before its pid file has been read) are kept for
//! a short while so a later [`watch`] still finds them. The shim runs on a single-threaded
//! runtime, so spawning a child and calling [`watch`] without an `.await` in between can
//! never lose the exit to the reaping task.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// How many unclaimed exits are remembered.
const UNCLAIMED_CAP: usize = 64;

#[derive(Default)]
struct Registry {
    waiters: HashMap<u32, oneshot::Sender<i32>>,
    unclaimed: VecDeque<(u32, i32)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The exit code containerd reports for a raw wait status: the exit code, or 128 plus the
/// signal number for a process killed by a signal.
pub fn exit_code(raw: i32) -> u32 {
    if libc::WIFSIGNALED(raw) {
        128 + libc::WTERMSIG(raw) as u32
    } else {
        libc::WEXITSTATUS(raw) as u32
    }
}

/// Registers interest in `pid`'s exit; the receiver yields its raw wait status.
pub fn watch(pid: u32) -> oneshot::Receiver<i32> {
    let (tx, rx) = oneshot::channel();
    let mut guard = registry();
    let reg = guard.get_or_insert_with(Registry::default);
    if let Some(i) = reg.unclaimed.iter().position(|(p, _)| *p == pid) {
        let (_, status) = reg.unclaimed.remove(i).unwrap_or((pid, 0));
        let _ = tx.send(status);
    } else {
        reg.waiters.insert(pid, tx);
    }
    rx
}

fn deliver(pid: u32, status: i32) {
    let mut guard = registry();
    let reg = guard.get_or_insert_with(Registry::default);
    match reg.waiters.remove(&pid) {
        Some(tx) => {
            let _ = tx.send(status);
        }
        None => {
            if reg.unclaimed.len() == UNCLAIMED_CAP {
                reg.unclaimed.pop_front();
            }
            reg.unclaimed.push_back((pid, status));
        }
    }
}

/// Reaps every child that has exited so far.
fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        tracing::debug!(pid, status = exit_code(status), "reaped");
        deliver(pid as u32, status);
    }
}

/// Makes this process a subreaper and spawns the reaping task.
pub fn start() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut sigchld = signal(SignalKind::child())?;
    tokio::spawn(async move {
        loop {
            reap_all();
            if sigchld.recv().await.is_none() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_containerd() {
        // exited with 3: status 3 << 8
        assert_eq!(exit_code(3 << 8), 3);
        // killed by SIGKILL: termination signal in the low bits
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM), 143);
        assert_eq!(exit_code(0), 0);
    }

    #[test]
    fn early_exits_are_kept_for_later_watchers() {
        deliver(4_000_001, 7 << 8);
        let mut rx = watch(4_000_001);
        assert_eq!(rx.try_recv().unwrap(), 7 << 8);
        let mut rx = watch(4_000_002);
        assert!(rx.try_recv().is_err());
        deliver(4_000_002, 0);
        assert_eq!(rx.try_recv().unwrap(), 0);
    }
}
