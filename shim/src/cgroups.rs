//! A container's cgroup: where it is (v1 memory controller or the v2 unified tree), its
//! metrics as containerd's Anys, and OOM notifications.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use containerd_shim::cgroup::{collect_metrics, collect_metrics_v2, get_cgroup};
use containerd_shim_protos::events::task::TaskOOM;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::topics::TASK_OOM_EVENT_TOPIC;
use tokio::io::unix::AsyncFd;

use crate::error::{Error, Result};
use crate::events::Publisher;

/// Type URL of cgroup v1 metrics, as containerd's Go shim sends them.
pub const METRICS_V1: &str = "io.containerd.cgroups.v1.Metrics";
/// Type URL of cgroup v2 metrics.
pub const METRICS_V2: &str = "io.containerd.cgroups.v2.Metrics";

/// Where a process's memory cgroup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryCgroup {
    /// A v1 memory controller directory.
    V1(PathBuf),
    /// A v2 unified-tree directory.
    V2(PathBuf),
}

/// Moves process `pid` into the cgroup at `path` (relative to the cgroup root): in every
/// mounted hierarchy under `root` (`/sys/fs/cgroup`) where that cgroup exists — all v1
/// controllers that have it, or the v2 unified tree — as containerd does for the shim cgroup
/// of the runtime options. Hierarchies without it are skipped; none at all is an error.
pub fn join(pid: u32, path: &str, root: &Path) -> Result<()> {
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return Err(Error::InvalidArgument(format!(
            "cgroup path {path:?} leaves the cgroup root"
        )));
    }
    let mut dirs = vec![root.join(rel)];
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            // Skip the `cpu -> cpu,cpuacct` style aliases: their target is listed too.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path().join(rel));
            }
        }
    }
    let mut joined = 0;
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        if !procs.exists() {
            continue;
        }
        std::fs::write(&procs, pid.to_string())
            .map_err(|e| Error::io(format!("add {pid} to {}", procs.display()), e))?;
        joined += 1;
    }
    if joined == 0 {
        return Err(Error::NotFound(format!("cgroup {path} does not exist")));
    }
    Ok(())
}

/// Finds the memory cgroup in the text of `/proc/<pid>/cgroup`: the v1 `memory`
/// controller when mounted, else the v2 entry.
pub fn memory_cgroup(proc_cgroup: &str, root: &Path) -> Option<MemoryCgroup> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let dir = root.join("memory").join(rel);
            if dir.is_dir() {
                return Some(MemoryCgroup::V1(dir));
            }
        } else if controllers.is_empty() {
            let unified = root.join(rel);
            if unified.join("memory.events").is_file() {
                v2 = Some(MemoryCgroup::V2(unified));
            }
        }
    }
    v2
}

/// The cgroup metrics of the process `pid` as an Any (v1 or v2, whichever the host uses).
pub fn metrics(pid: u32) -> Result<Any> {
    let cg = get_cgroup(pid).map_err(|e| Error::NotFound(format!("cgroup of {pid}: {e}")))?;
    let (type_url, value) = if cg.v2() {
        let m = collect_metrics_v2(&cg).map_err(|e| Error::Runtime(e.to_string()))?;
        (METRICS_V2, m.write_to_bytes())
    } else {
        let m = collect_metrics(&cg).map_err(|e| Error::Runtime(e.to_string()))?;
        (METRICS_V1, m.write_to_bytes())
    };
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    any.value = value.map_err(|e| Error::Runtime(e.to_string()))?;
    Ok(any)
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: eventfd has no pointer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Error::io("eventfd", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn register(fd: OwnedFd) -> Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the descriptor, which stays open while registered.
    unsafe { AsyncFd::register(fd) }.map_err(|e| Error::io("register descriptor", e.into()))
}

/// Reads and discards what a non-blocking eventfd or inotify descriptor holds; returns
/// the size of the read.
fn drain(fd: &OwnedFd) -> isize {
    let mut buf = [0u8; 512];
    // SAFETY: reading into a stack buffer of the given size.
    unsafe { libc::read(fd.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
}

/// Reads `oom_kill N` from a v2 `memory.events`.
pub fn oom_kills(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Publishes `/tasks/oom` for `id` whenever its cgroup reports an OOM kill, until the
/// cgroup goes away; abort the returned task to stop earlier.
pub fn watch_oom(id: &str, pid: u32, publisher: Publisher) -> Result<tokio::task::JoinHandle<()>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| Error::io("read cgroup", e))?;
    let cg = memory_cgroup(&text, Path::new("/sys/fs/cgroup"))
        .ok_or_else(|| Error::NotFound(format!("memory cgroup of {pid}")))?;
    let mut event = TaskOOM::new();
    event.container_id = id.to_string();
    match cg {
        MemoryCgroup::V1(dir) => {
            let efd = eventfd()?;
            let control = std::fs::File::open(dir.join("memory.oom_control"))
                .map_err(|e| Error::io("open memory.oom_control", e))?;
            std::fs::write(
                dir.join("cgroup.event_control"),
                format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
            )
            .map_err(|e| Error::io("write cgroup.event_control", e))?;
            let afd = register(efd)?;
            Ok(tokio::spawn(async move {
                let _control = control;
                loop {
                    let Ok(mut guard) = afd.readable().await else {
                        return;
                    };
                    let n = drain(afd.get_ref());
                    guard.clear_ready();
                    if n != 8 {
                        continue;
                    }
                    // The eventfd also fires when the cgroup is removed.
                    if !dir.join("memory.oom_control").exists() {
                        return;
                    }
                    publisher.publish(TASK_OOM_EVENT_TOPIC, &event);
                }
            }))
        }
        MemoryCgroup::V2(dir) => {
            use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| Error::io("inotify", e.into()))?;
            let events = dir.join("memory.events");
            inotify
                .add_watch(&events, AddWatchFlags::IN_MODIFY)
                .map_err(|e| Error::io("watch memory.events", e.into()))?;
            let afd = register(OwnedFd::from(inotify))?;
            let mut seen = oom_kills(&std::fs::read_to_string(&events).unwrap_or_default());
            Ok(tokio::spawn(async move {
                loop {
                    let Ok(mut guard) = afd.readable().await else {
                        return;
                    };
                    drain(afd.get_ref());
                    guard.clear_ready();
                    let Ok(text) = std::fs::read_to_string(&events) else {
                        return;
                    };
                    let now = oom_kills(&text);
                    if now > seen {
                        seen = now;
                        publisher.publish(TASK_OOM_EVENT_TOPIC, &event);
                    }
                }
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cgroup_prefers_v1_then_v2() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory/default/c1")).unwrap();
        let text = "12:memory:/default/c1\n0::/default/c1\n";
        assert_eq!(
            memory_cgroup(text, root.path()),
            Some(MemoryCgroup::V1(root.path().join("memory/default/c1")))
        );
        std::fs::create_dir_all(root.path().join("pod/c2")).unwrap();
        std::fs::write(root.path().join("pod/c2/memory.events"), "oom_kill 0\n").unwrap();
        assert_eq!(
            memory_cgroup("0::/pod/c2\n", root.path()),
            Some(MemoryCgroup::V2(root.path().join("pod/c2")))
        );
        assert_eq!(memory_cgroup("0::/none\n", root.path()), None);
    }

    #[test]
    fn join_writes_every_hierarchy_that_has_the_cgroup() {
        let root = tempfile::tempdir().unwrap();
        for h in ["devices", "memory", "systemd"] {
            std::fs::create_dir_all(root.path().join(h)).unwrap();
        }
        for h in ["devices", "memory"] {
            let dir = root.path().join(h).join("berth/shim");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        }
        join(42, "/berth/shim", root.path()).unwrap();
        for h in ["devices", "memory"] {
            let procs = root.path().join(h).join("berth/shim/cgroup.procs");
            assert_eq!(std::fs::read_to_string(procs).unwrap(), "42");
        }
        assert!(!root.path().join("systemd/berth").exists());
        assert!(join(42, "/missing", root.path()).is_err());
        assert!(join(42, "/../etc", root.path()).is_err());
    }

    #[test]
    fn oom_kill_counter() {
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 2);
        assert_eq!(oom_kills(""), 0);
    }
}
