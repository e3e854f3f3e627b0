//! Two runc steps done in the shim itself, saving a runc process (~5 ms each) per container.
//!
//! * **start**: `runc create` leaves runc's init waiting to open `<state>/exec.fifo` for
//!   writing; `runc start` only opens the FIFO for reading, takes the byte init writes, and
//!   removes the FIFO. The shim does exactly that.
//! * **delete** of a stopped container: `runc delete` removes the container's cgroups and its
//!   state directory. The shim does that, from the cgroup paths in runc's `state.json`.
//!
//! Both follow runc 1.x's state layout and are used only when runc itself would do nothing
//! more: no OCI hooks (runc runs them in these steps), no systemd cgroup driver (cgroups
//! belong to systemd units then), and runc as the runtime binary. Anything unexpected makes
//! the caller fall back to runc.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use crate::error::{Error, Result};

/// runc's per-container state directory under its root.
pub fn state_dir(runc_root: &Path, id: &str) -> PathBuf {
    runc_root.join(id)
}

/// How often a start waiting for init checks that init is still alive.
const ALIVE_CHECK: Duration = Duration::from_millis(100);

/// Releases a created container's init process, as `runc start` does. `init_exited` tells
/// whether init has died meanwhile (then the start fails as runc's does). `Ok(false)` when
/// there is no FIFO to open: the caller leaves the start to runc, which knows why.
pub async fn start(state_dir: &Path, init_exited: impl Fn() -> bool) -> Result<bool> {
    let fifo = state_dir.join("exec.fifo");
    // Opening for reading (non-blocking: at once) lets init's blocked open for writing go on.
    let receiver = match tokio::net::unix::pipe::OpenOptions::new().open_receiver(&fifo) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("open {}", fifo.display()), e)),
    };
    let mut byte = [0u8; 8];
    let released = loop {
        tokio::select! {
            ready = receiver.readable() => {
                ready.map_err(|e| Error::io("wait on exec.fifo", e))?;
                match receiver.try_read(&mut byte) {
                    Ok(0) => break false,
                    Ok(_) => break true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(Error::io("read exec.fifo", e)),
                }
            }
            _ = tokio::time::sleep(ALIVE_CHECK) => {
                if init_exited() {
                    break false;
                }
            }
        }
    };
    if !released {
        return Err(Error::FailedPrecondition(
            "container process is already dead".into(),
        ));
    }
    std::fs::remove_file(&fifo).map_err(|e| Error::io(format!("remove {}", fifo.display()), e))?;
    Ok(true)
}

/// The cgroup directories runc recorded for a container (deduplicated: v1 controllers that
/// are mounted together share one).
fn cgroup_paths(state: &Value) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = state
        .get("cgroup_paths")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.dedup();
    paths
}

/// Removes a cgroup directory and the cgroups below it, retrying briefly while the kernel
/// still counts a just-reaped process in it (as runc does).
fn remove_cgroup(path: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path())?;
        }
    }
    let mut delay = Duration::from_millis(5);
    for attempt in 0.. {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if attempt < 5 && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes a stopped container's runc state: its cgroups, then its state directory.
pub fn delete(state_dir: &Path) -> Result<()> {
    let state_file = state_dir.join("state.json");
    let bytes = match std::fs::read(&state_file) {
        Ok(b) => b,
        // Already deleted: nothing to do, like `runc delete` of an unknown container.
        Err(e) if e.kind() == ErrorKind::NotFound && !state_dir.exists() => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", state_file.display()), e)),
    };
    let state: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Runtime(format!("{}: {e}", state_file.display())))?;
    for path in cgroup_paths(&state) {
        remove_cgroup(&path)
            .map_err(|e| Error::io(format!("remove cgroup {}", path.display()), e))?;
    }
    std::fs::remove_dir_all(state_dir)
        .map_err(|e| Error::io(format!("remove {}", state_dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_are_read_and_deduplicated() {
        let state = serde_json::json!({"cgroup_paths": {
            "cpu": "/sys/fs/cgroup/cpu,cpuacct/default/x",
            "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/default/x",
            "memory": "/sys/fs/cgroup/memory/default/x",
        }});
        assert_eq!(
            cgroup_paths(&state),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/default/x"),
                PathBuf::from("/sys/fs/cgroup/memory/default/x"),
            ]
        );
        assert!(cgroup_paths(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn delete_removes_state_and_plain_directories() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("cg/default/x");
        std::fs::create_dir_all(cg.join("nested")).unwrap();
        let state = dir.path().join("runc/x");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            state.join("state.json"),
            serde_json::json!({"cgroup_paths": {"memory": cg}}).to_string(),
        )
        .unwrap();
        delete(&state).unwrap();
        assert!(!state.exists());
        assert!(!cg.exists());
        assert!(dir.path().join("cg/default").exists());
        // Deleting again is a no-op.
        delete(&state).unwrap();
    }

    #[tokio::test]
    async fn start_releases_a_waiting_writer_and_removes_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let writer_path = fifo.clone();
        // Stands in for runc's init: blocks opening for writing, writes one byte, closes.
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap();
            std::io::Write::write_all(&mut f, b"0").unwrap();
        });
        assert!(start(dir.path(), || false).await.unwrap());
        writer.join().unwrap();
        assert!(!fifo.exists());
        // A second start finds no FIFO and leaves the answer to runc.
        assert!(!start(dir.path(), || false).await.unwrap());
    }

    #[tokio::test]
    async fn start_fails_when_init_died() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = start(dir.path(), || true).await.unwrap_err();
        assert!(err.to_string().contains("already dead"), "{err}");
    }
}
