//! Mounting a container's `rootfs` from the create request's mounts, and unmounting it.

use std::path::{Path, PathBuf};

use containerd_shim_protos::api::Mount;
use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};

use crate::error::{Error, Result};

/// Mounts every mount onto `target` in order (creating it). Runs on a short-lived thread:
/// the mount helper may change its thread's working directory to shorten long overlay
/// options. On failure, what was mounted is unmounted again.
pub async fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    std::fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("mkdir {}", target.display()), e))?;
    let mounts: Vec<(String, String, Vec<String>)> = mounts
        .iter()
        .map(|m| (m.type_.clone(), m.source.clone(), m.options.clone()))
        .collect();
    let dir: PathBuf = target.to_path_buf();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            for (fs_type, source, options) in &mounts {
                let fs_type = Some(fs_type.as_str()).filter(|t| !t.is_empty());
                let source = Some(source.as_str()).filter(|t| !t.is_empty());
                containerd_shim::mount::mount_rootfs(fs_type, source, options, &dir)
                    .map_err(|e| Error::Runtime(format!("mount rootfs: {e}")))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Runtime("mount thread panicked".into())))
    });
    if result.is_err() {
        unmount(target);
    }
    result
}

/// Unmounts everything mounted on `target` (like containerd's `UnmountAll`).
pub fn unmount(target: &Path) {
    for _ in 0..32 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(Errno::EBUSY) => {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return,
            Err(e) => {
                tracing::warn!(target = %target.display(), error = %e, "unmount rootfs");
                return;
            }
        }
    }
}
