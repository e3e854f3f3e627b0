//! Mounting deep overlay chains: lowerdir lists longer than mount(2) accepts.
//!
//! # The limit
//!
//! mount(2) copies at most one page of option data and silently cuts it at 4095 bytes plus
//! the terminating NUL. An image with 128 layers under the root
//! `/var/lib/berth/io.containerd.snapshotter.v1.overlayfs` needs about 72 bytes per lower
//! layer (`…/snapshots/1234/fs:`), some 9.2 KB in all. Cut short, the list ends in a partial
//! path: the mount fails (ENOENT, measured here), or — when the partial path happens to name
//! another snapshot's directory — succeeds with the wrong layers.
//!
//! # The choice: relative lowerdirs from a thread with its own working directory
//!
//! Snapshotters return absolute paths, exactly as containerd does, because clients mount
//! them wherever they run (containerd's Go `mount.All`, used by `ctr` and the runc shim,
//! shortens long overlay lists itself). Whoever mounts in Berth uses [`CompactingMounter`]:
//! when an overlay's options approach the page (containerd's threshold, 512 bytes short of
//! it), it finds the deepest directory shared by all lower layers (`<root>/snapshots`),
//! rewrites them relative to it (`1234/fs`, about 8 bytes each) and performs the mount from a
//! short-lived thread that has unshared its filesystem context (`unshare(CLONE_FS)`) and
//! changed into that directory. The kernel resolves relative layer paths against the calling
//! thread's working directory, and after `CLONE_FS` that directory is the thread's alone, so
//! the rest of a multithreaded daemon never sees it change. For 128 layers under the root
//! above, the data shrinks from about 9.2 KB to under 1 KB (the unit tests measure and print
//! it). Compacted, a layer costs its id's digits plus 4 bytes, so some 480 layers fit with
//! 4-digit ids and 350 with 7-digit ones (overlayfs itself stops at 500).
//!
//! Options that would exceed the page even so are refused with `E2BIG` rather than cut.
//!
//! Alternatives measured and set aside: lower layers as `/proc/self/fd/<fd>/<id>/fs` through
//! one open directory descriptor (works, 3 KB for 128 layers, but leaves little headroom for
//! larger ids and shows meaningless paths in mountinfo); short symlinks (`<root>/l/<x>`, the
//! containers-storage way) stay absolute under a long root and do not fit; containerd's own
//! way, a forked child that changes directory and mounts, is off limits in a multithreaded
//! Rust process (after fork only async-signal-safe calls are allowed), and running
//! `mount(8)` in a child costs a process per mount and ties Berth to util-linux.

use std::{
    path::{Path, PathBuf},
    thread,
};

use crate::mount::{Error as MountError, Mount, Mounter, parse_options};

/// The most option bytes mount(2) reads (one 4 KiB page, less the terminating NUL).
pub const MOUNT_DATA_MAX: usize = 4095;

/// From this many option bytes on, overlay lower layers are made relative (containerd's
/// threshold: one page less 512 bytes).
pub const COMPACT_THRESHOLD: usize = 4096 - 512;

/// The option data mount(2) would get for `mount`: its options without the flag words.
pub fn mount_data(mount: &Mount) -> String {
    parse_options(&mount.options).1
}

/// Rewrites the `lowerdir` list of an overlay mount relative to the deepest directory all
/// its layers share. Returns that directory and the rewritten mount, or `None` when there is
/// nothing to shorten (not an overlay, fewer than two layers, relative or escaped paths, or
/// no shared directory below `/`).
pub fn compact_lowerdirs(mount: &Mount) -> Option<(PathBuf, Mount)> {
    if mount.kind != "overlay" {
        return None;
    }
    let index = mount
        .options
        .iter()
        .position(|o| o.starts_with("lowerdir="))?;
    let layers: Vec<&str> = mount.options[index]["lowerdir=".len()..]
        .split(':')
        .collect();
    if layers.len() < 2
        || layers
            .iter()
            .any(|l| !l.starts_with('/') || l.contains('\\'))
    {
        return None;
    }
    let parts = |layer: &'_ str| -> Vec<String> {
        layer
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    // The shared directory must be a proper ancestor of every layer.
    let mut common = parts(layers[0]);
    for layer in &layers {
        let mut own = parts(layer);
        own.pop();
        let shared = common.iter().zip(&own).take_while(|(a, b)| a == b).count();
        common.truncate(shared);
    }
    if common.is_empty() {
        return None;
    }
    let depth = common.len();
    let relative: Vec<String> = layers
        .iter()
        .map(|layer| parts(layer)[depth..].join("/"))
        .collect();
    let mut options = mount.options.clone();
    options[index] = format!("lowerdir={}", relative.join(":"));
    let dir = PathBuf::from(format!("/{}", common.join("/")));
    Some((
        dir,
        Mount {
            kind: mount.kind.clone(),
            source: mount.source.clone(),
            options,
        },
    ))
}

/// A [`Mounter`] that mounts overlays with long `lowerdir` lists through relative paths (see
/// the [module docs](self)); everything else goes to the inner mounter unchanged.
#[derive(Debug, Default, Clone)]
pub struct CompactingMounter<M> {
    inner: M,
}

impl<M: Mounter> CompactingMounter<M> {
    /// Wraps `inner`, which performs the actual mounts (usually
    /// [`SystemMounter`](crate::mount::SystemMounter)).
    pub fn new(inner: M) -> Self {
        CompactingMounter { inner }
    }

    /// The wrapped mounter.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

fn failure(mount: &Mount, target: &Path, errno: nix::Error) -> MountError {
    MountError::Mount {
        kind: mount.kind.clone(),
        what: mount.source.clone(),
        target: target.to_path_buf(),
        errno,
    }
}

/// Gives the calling thread a working directory of its own and moves it to `dir`.
fn enter(dir: &Path) -> Result<(), nix::Error> {
    // SAFETY: unshare(2) with CLONE_FS only copies the calling thread's root, working
    // directory and umask into a private structure; it touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
        return Err(nix::Error::last());
    }
    std::env::set_current_dir(dir).map_err(|e| {
        e.raw_os_error()
            .map(nix::Error::from_raw)
            .unwrap_or(nix::Error::EIO)
    })
}

impl<M: Mounter> Mounter for CompactingMounter<M> {
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), MountError> {
        let length = mount_data(mount).len();
        if length < COMPACT_THRESHOLD {
            return self.inner.mount(mount, target);
        }
        let Some((dir, compact)) = compact_lowerdirs(mount) else {
            if length > MOUNT_DATA_MAX {
                return Err(failure(mount, target, nix::Error::E2BIG));
            }
            return self.inner.mount(mount, target);
        };
        if mount_data(&compact).len() > MOUNT_DATA_MAX {
            return Err(failure(mount, target, nix::Error::E2BIG));
        }
        // The target must not move with the working directory.
        let target =
            std::path::absolute(target).map_err(|_| failure(mount, target, nix::Error::EINVAL))?;
        thread::scope(|scope| {
            let worker = scope.spawn(|| {
                enter(&dir).map_err(|errno| failure(mount, &target, errno))?;
                self.inner.mount(&compact, &target)
            });
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn unmount(&self, target: &Path, detach: bool) -> Result<(), MountError> {
        self.inner.unmount(target, detach)
    }
}
