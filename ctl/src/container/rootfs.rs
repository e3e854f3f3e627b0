//! Mounting a container's snapshot for a moment, to read the image's `/etc/passwd` and
//! `/etc/group` when a user or group is given by name, and to fill new volumes from it.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use containerd_client::types::Mount;
use rustix::mount::{MountFlags, UnmountFlags};

/// A snapshot mounted at a private temp directory; unmounted and removed on drop.
pub struct MountedRootfs {
    dir: PathBuf,
    mounted: bool,
}

impl MountedRootfs {
    /// Mounts `mounts` (as `Snapshots.Mounts` returns them) at a fresh temp directory.
    pub fn mount(id: &str, mounts: &[Mount]) -> anyhow::Result<MountedRootfs> {
        let dir = std::env::temp_dir().join(format!("berthctl-rootfs-{id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut rootfs = MountedRootfs {
            dir,
            mounted: false,
        };
        let [m] = mounts else {
            bail!(
                "cannot read the image's files: the snapshot has {} mounts, expected one",
                mounts.len()
            );
        };
        mount_one(m, &rootfs.dir).with_context(|| {
            format!(
                "mounting the container's root filesystem at {} to read the image's files",
                rootfs.dir.display()
            )
        })?;
        rootfs.mounted = true;
        Ok(rootfs)
    }

    /// Where the root filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Mounts one containerd mount (overlay or bind) read-only at `target`.
fn mount_one(m: &Mount, target: &Path) -> anyhow::Result<()> {
    let mut flags = MountFlags::RDONLY;
    let mut data = Vec::new();
    for opt in &m.options {
        match opt.as_str() {
            "ro" | "rw" => {}
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            other => data.push(other),
        }
    }
    let fstype = if m.r#type == "bind" {
        flags |= MountFlags::BIND;
        "none"
    } else {
        m.r#type.as_str()
    };
    let data = CString::new(data.join(","))?;
    rustix::mount::mount(
        m.source.as_str(),
        target,
        fstype,
        flags,
        Some(data.as_c_str()),
    )
    .with_context(|| format!("mount {} ({})", m.source, m.r#type))?;
    Ok(())
}
