//! Mounts as containerd describes them (`type`, `source`, `options`), and the [`Mounter`]
//! seam that performs them.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use nix::mount::{MntFlags, MsFlags};

/// One mount, in containerd's shape (`containerd.types.Mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Filesystem type: `overlay`, `bind`, `tmpfs`, ….
    pub kind: String,
    /// What to mount: a device, a directory, or the type name for virtual filesystems.
    pub source: String,
    /// fstab-style options: flags such as `ro` or `rbind`, and data such as `lowerdir=…`.
    pub options: Vec<String>,
}

/// Why a mount or unmount failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused.
    #[error("mount {kind} {what} on {target}: {errno}")]
    Mount {
        /// Filesystem type.
        kind: String,
        /// The mount's source.
        what: String,
        /// Target directory.
        target: PathBuf,
        /// The kernel's answer.
        errno: nix::Error,
    },
    /// The kernel refused to unmount.
    #[error("unmount {target}: {errno}")]
    Unmount {
        /// Target directory.
        target: PathBuf,
        /// The kernel's answer.
        errno: nix::Error,
    },
}

/// Splits fstab-style options into mount(2) flags and the data string.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Performs mounts; the one seam between snapshotters and the kernel.
pub trait Mounter: Send + Sync {
    /// Mounts `mount` on `target`.
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), Error>;
    /// Unmounts `target` (lazily when `detach`).
    fn unmount(&self, target: &Path, detach: bool) -> Result<(), Error>;
}

/// The real mounter: mount(2) and umount2(2).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), Error> {
        let (flags, data) = parse_options(&mount.options);
        // mount(2) reads one page of data and silently cuts the rest: refuse instead (deep
        // overlay chains go through `snapshots::CompactingMounter`).
        if data.len() >= 4096 {
            return Err(Error::Mount {
                kind: mount.kind.clone(),
                what: mount.source.clone(),
                target: target.to_path_buf(),
                errno: nix::Error::E2BIG,
            });
        }
        let kind = if flags.contains(MsFlags::MS_BIND) {
            None
        } else {
            Some(mount.kind.as_str())
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        nix::mount::mount(Some(mount.source.as_str()), target, kind, flags, data).map_err(
            |errno| Error::Mount {
                kind: mount.kind.clone(),
                what: mount.source.clone(),
                target: target.to_path_buf(),
                errno,
            },
        )?;
        // A read-only bind needs a second, remounting pass.
        if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(
                |errno| Error::Mount {
                    kind: mount.kind.clone(),
                    what: mount.source.clone(),
                    target: target.to_path_buf(),
                    errno,
                },
            )?;
        }
        Ok(())
    }

    fn unmount(&self, target: &Path, detach: bool) -> Result<(), Error> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        nix::mount::umount2(target, flags).map_err(|errno| Error::Unmount {
            target: target.to_path_buf(),
            errno,
        })
    }
}

/// What a [`RecordingMounter`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A mount on a target.
    Mount(Mount, PathBuf),
    /// An unmount of a target.
    Unmount(PathBuf),
}

/// A test double that records calls instead of mounting.
#[derive(Debug, Default)]
pub struct RecordingMounter {
    calls: Mutex<Vec<Call>>,
}

impl RecordingMounter {
    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Mounter for RecordingMounter {
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), Error> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call::Mount(mount.clone(), target.to_path_buf()));
        }
        Ok(())
    }

    fn unmount(&self, target: &Path, _detach: bool) -> Result<(), Error> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(Call::Unmount(target.to_path_buf()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(o: &[&str]) -> Vec<String> {
        o.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_flags_from_data() {
        let (flags, data) = parse_options(&opts(&["ro", "nosuid", "lowerdir=/a:/b", "index=off"]));
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(data, "lowerdir=/a:/b,index=off");
        let (flags, data) = parse_options(&opts(&["rbind", "ro", "rw"]));
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(data.is_empty());
    }

    #[test]
    fn recording_mounter_keeps_order() {
        let m = RecordingMounter::default();
        let mount = Mount {
            kind: "bind".into(),
            source: "/src".into(),
            options: opts(&["rbind"]),
        };
        m.mount(&mount, Path::new("/t")).unwrap();
        m.unmount(Path::new("/t"), true).unwrap();
        assert_eq!(
            m.calls(),
            vec![Call::Mount(mount, "/t".into()), Call::Unmount("/t".into())]
        );
    }
}
