//! A container's root filesystem as the CLI touches it (`cp`, `export`), and the one rule that
//! makes that safe: every path inside it is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a descriptor of the root, so a symlink
//! in the container (absolute, or climbing with `..`) can never lead outside it.
//!
//! A running container is reached through `/proc/<pid>/root` (its own mount namespace, volumes
//! included); any other container's snapshot is mounted on a private temporary directory and
//! unmounted when the [`ContainerRoot`] is dropped.

use std::{
    ffi::OsStr,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Component, Path, PathBuf},
};

use anyhow::Context as _;
use berth_snapshotter::{
    mount::{Mount, Mounter, SystemMounter},
    snapshots::CompactingMounter,
};
use containerd_client::services::v1::{
    Container,
    snapshots::{MountsRequest, snapshots_client::SnapshotsClient},
};
use rustix::{
    fs::{self, Mode, OFlags, ResolveFlags},
    io::Errno,
};

use crate::{client::Client, task};

/// How paths resolve: confined to the root, and no `/proc` magic links.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// How directories are opened.
pub const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// A directory that every path is resolved in, held by descriptor.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the root directory itself (a trusted host path; it may be a symlink or
    /// `/proc/<pid>/root`).
    pub fn open(path: &Path) -> anyhow::Result<Root> {
        let fd = fs::open(path, DIR, Mode::empty())
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Root { fd })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `rel` (`/` or empty means the root) inside the root with `flags`.
    pub fn open_at(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        openat2(self.fd.as_fd(), rel, flags)
    }

    /// Opens the directory holding the last component of `rel` and returns it with that name
    /// (`None` when `rel` names the root, or ends in `.` or `..`).
    pub fn parent_of<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, Option<&'a OsStr>), Errno> {
        let ends_in_dots = matches!(
            rel.components().next_back(),
            Some(Component::CurDir | Component::ParentDir)
        ) || rel.as_os_str().as_bytes().ends_with(b"/.");
        match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(name)) if !ends_in_dots => {
                Ok((self.open_at(parent, DIR)?, Some(name)))
            }
            _ => Ok((self.open_at(rel, DIR)?, None)),
        }
    }

    /// Opens the directory `rel`, creating missing components (mode 0755) one by one; each
    /// step is resolved inside the root and a non-directory in the way is an error.
    pub fn make_dirs(&self, rel: &Path) -> anyhow::Result<OwnedFd> {
        let mut current = self.open_at(Path::new("/"), DIR)?;
        let mut prefix = PathBuf::from("/");
        for part in rel.components() {
            let Component::Normal(part) = part else {
                continue;
            };
            prefix.push(part);
            current = match self.open_at(&prefix, DIR) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let shown = prefix.display();
                    fs::mkdirat(&current, part, Mode::from_raw_mode(0o755))
                        .with_context(|| format!("creating directory {shown}"))?;
                    fs::openat(&current, part, DIR | OFlags::NOFOLLOW, Mode::empty())
                        .with_context(|| format!("opening directory {shown}"))?
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("opening directory {}", prefix.display()));
                }
            };
        }
        Ok(current)
    }
}

/// `openat2` confined to `dir`, retried when a concurrent rename makes the kernel ask.
pub fn openat2(dir: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let mut tries = 0;
    loop {
        match fs::openat2(dir, path, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN | Errno::INTR) if tries < 32 => tries += 1,
            other => return other,
        }
    }
}

/// A container's root filesystem, reachable as a directory for as long as this lives.
pub struct ContainerRoot {
    root: Root,
    mounted: Option<tempfile::TempDir>,
}

/// Whether `id`'s task runs (or is paused) as host process `pid`.
async fn runs_as(client: &Client, id: &str) -> anyhow::Result<Option<u32>> {
    Ok(task::state(client, id)
        .await?
        .filter(|s| s.pid > 0 && matches!(s.docker_state(), "running" | "paused"))
        .map(|s| s.pid))
}

impl ContainerRoot {
    /// Reaches `container`'s root: its running task's `/proc/<pid>/root` when `live` is
    /// allowed, else its snapshot mounted on a private temporary directory.
    ///
    /// The pid cannot be a reused one: `/proc/<pid>` is opened first, then the task is asked
    /// again; while it still runs as that pid, the descriptor is that process's.
    pub async fn open(
        client: &Client,
        container: &Container,
        live: bool,
    ) -> anyhow::Result<ContainerRoot> {
        if live && let Some(pid) = runs_as(client, &container.id).await? {
            let proc_dir = fs::open(format!("/proc/{pid}"), DIR, Mode::empty());
            if let Ok(proc_dir) = proc_dir
                && runs_as(client, &container.id).await? == Some(pid)
            {
                let fd = fs::openat(&proc_dir, "root", DIR, Mode::empty())
                    .with_context(|| format!("opening the root of process {pid}"))?;
                return Ok(ContainerRoot {
                    root: Root { fd },
                    mounted: None,
                });
            }
        }
        let mounts = SnapshotsClient::new(client.channel.clone())
            .mounts(client.request(MountsRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            }))
            .await
            .with_context(|| {
                format!(
                    "getting the mounts of snapshot {} of container {}",
                    container.snapshot_key, container.id
                )
            })?
            .into_inner()
            .mounts;
        let dir = tempfile::Builder::new()
            .prefix("berthctl-rootfs-")
            .tempdir()
            .context("creating a temporary mount point")?;
        mount_all(&mounts, dir.path())?;
        let fd = fs::open(dir.path(), DIR, Mode::empty()).map_err(|e| {
            let _ = SystemMounter.unmount(dir.path(), true);
            anyhow::Error::new(e).context("opening the mounted root filesystem")
        })?;
        Ok(ContainerRoot {
            root: Root { fd },
            mounted: Some(dir),
        })
    }

    /// The root directory, for confined resolution.
    pub fn root(&self) -> &Root {
        &self.root
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some(dir) = &self.mounted
            && let Err(e) = SystemMounter.unmount(dir.path(), true)
        {
            eprintln!("berthctl: unmounting {}: {e}", dir.path().display());
        }
    }
}

/// Mounts containerd-shaped mounts on `target`, in order.
fn mount_all(mounts: &[containerd_client::types::Mount], target: &Path) -> anyhow::Result<()> {
    let mounter = CompactingMounter::new(SystemMounter);
    for m in mounts {
        let mount = Mount {
            kind: m.r#type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        };
        mounter
            .mount(&mount, target)
            .with_context(|| format!("mounting the container's {} filesystem", m.r#type))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let abs = outside.path().join("secret");
        std::os::unix::fs::symlink(&abs, root_dir.path().join("abs")).unwrap();
        let climb = format!("../../../../../../..{}", abs.display());
        std::os::unix::fs::symlink(&climb, root_dir.path().join("climb")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let err = |p: &str| root.open_at(Path::new(p), OFlags::RDONLY).unwrap_err();
        assert_eq!(err("abs"), Errno::NOENT);
        assert_eq!(err("climb"), Errno::NOENT);
        let top = root.open_at(Path::new("/../../.."), DIR).unwrap();
        let ino = |fd: BorrowedFd<'_>| fs::fstat(fd).unwrap().st_ino;
        assert_eq!(ino(top.as_fd()), ino(root.fd()));
        assert_eq!(
            root.parent_of(Path::new("/abs")).unwrap().1,
            Some(OsStr::new("abs"))
        );
        assert_eq!(root.parent_of(Path::new("/")).unwrap().1, None);
        assert_eq!(root.parent_of(Path::new("/.")).unwrap().1, None);
    }
}
