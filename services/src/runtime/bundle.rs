//! A task's bundle: the directory a shim works in.
//!
//! ```text
//! <state>/io.containerd.runtime.v2.task/<ns>/<id>/   0711
//!     config.json        the container's OCI spec
//!     rootfs/            the shim mounts the container's root filesystem here
//!     work -> <root>/io.containerd.runtime.v2.task/<ns>/<id>   the shim's persistent scratch
//!     log                FIFO the shim writes its log to; berthd copies it into its own
//!     bootstrap.json     where the shim listens and which task API it speaks (berthd)
//!     shim-binary-path   the shim binary, to clean up after it (berthd)
//!     address            written by the shim itself
//! ```
//!
//! The state directory is on tmpfs and vanishes with a reboot; a bundle still present when
//! berthd starts names a task that may still be running.

use std::{
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, Kind, io_error};

use super::binary::Bootstrap;

/// The runtime's directory name under both root and state, as containerd names it.
pub const DIR: &str = "io.containerd.runtime.v2.task";

const BOOTSTRAP: &str = "bootstrap.json";
const BINARY: &str = "shim-binary-path";
const ADDRESS: &str = "address";

/// One task's bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The task id.
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    /// The bundle directory.
    pub path: PathBuf,
    work: PathBuf,
}

fn mkdir(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| io_error(format!("create {}", path.display()), e))?;
    // The umask may have narrowed the mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(format!("chmod {}", path.display()), e))
}

fn mkdir_all(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .recursive(true)
        .create(path)
        .map_err(|e| io_error(format!("create {}", path.display()), e))
}

impl Bundle {
    /// The bundle of `namespace`/`id` under `state` (and its work dir under `root`), which
    /// may or may not exist.
    pub fn at(state: &Path, root: &Path, namespace: &str, id: &str) -> Bundle {
        Bundle {
            id: id.to_string(),
            namespace: namespace.to_string(),
            path: state.join(namespace).join(id),
            work: root.join(namespace).join(id),
        }
    }

    /// Creates the bundle with `spec` as its `config.json`; AlreadyExists if it is there.
    pub fn create(&self, spec: &[u8]) -> Result<(), Error> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        mkdir_all(parent, 0o711)?;
        if let Err(e) = mkdir(&self.path, 0o711) {
            if e.kind == Kind::AlreadyExists {
                return Err(Error::already_exists(format!(
                    "bundle {}",
                    self.path.display()
                )));
            }
            return Err(e);
        }
        let made = (|| {
            mkdir_all(&self.work, 0o711)?;
            std::os::unix::fs::symlink(&self.work, self.path.join("work"))
                .map_err(|e| io_error("link work dir", e))?;
            std::fs::write(self.path.join("config.json"), spec)
                .map_err(|e| io_error("write config.json", e))?;
            mkdir(&self.path.join("rootfs"), 0o711)?;
            nix::unistd::mkfifo(
                &self.path.join("log"),
                nix::sys::stat::Mode::from_bits_truncate(0o700),
            )
            .map_err(|e| Error::internal(format!("create shim log fifo: {e}")))
        })();
        if let Err(e) = made {
            if let Err(d) = self.delete() {
                tracing::warn!(error = %d, bundle = %self.path.display(), "removing bundle");
            }
            return Err(e);
        }
        Ok(())
    }

    /// The shim log FIFO.
    pub fn log(&self) -> PathBuf {
        self.path.join("log")
    }

    /// Records how to reach and clean up after the shim.
    pub fn write_shim(&self, bootstrap: &Bootstrap, binary: &Path) -> Result<(), Error> {
        std::fs::write(self.path.join(BOOTSTRAP), bootstrap.to_json())
            .map_err(|e| io_error("write bootstrap.json", e))?;
        std::fs::write(
            self.path.join(BINARY),
            binary.as_os_str().as_encoded_bytes(),
        )
        .map_err(|e| io_error("write shim-binary-path", e))
    }

    /// How to reach the shim: berthd's `bootstrap.json`, else the `address` file a shim
    /// writes (task API v2).
    pub fn read_bootstrap(&self) -> Result<Bootstrap, Error> {
        match std::fs::read_to_string(self.path.join(BOOTSTRAP)) {
            Ok(text) => Bootstrap::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = std::fs::read_to_string(self.path.join(ADDRESS))
                    .map_err(|e| io_error("read shim address", e))?;
                Bootstrap::parse(&text)
            }
            Err(e) => Err(io_error("read bootstrap.json", e)),
        }
    }

    /// The shim binary recorded at start, if any.
    pub fn read_binary(&self) -> Option<PathBuf> {
        std::fs::read_to_string(self.path.join(BINARY))
            .ok()
            .map(PathBuf::from)
    }

    /// Unmounts what is left on `rootfs` and removes the bundle and its work dir. A rootfs
    /// that cannot be unmounted keeps the bundle (its contents are the container's files).
    pub fn delete(&self) -> Result<(), Error> {
        let rootfs = self.path.join("rootfs");
        loop {
            match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => continue,
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
                Err(e) => {
                    return Err(Error::internal(format!(
                        "unmount {}: {e}",
                        rootfs.display()
                    )));
                }
            }
        }
        match std::fs::remove_dir(&rootfs) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("remove {}", rootfs.display()), e)),
        }
        for dir in [&self.work, &self.path] {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(format!("remove {}", dir.display()), e)),
            }
        }
        Ok(())
    }
}

/// Every bundle under `state`, as (namespace, id) pairs.
pub fn list(state: &Path) -> Vec<(String, String)> {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    names(state)
        .into_iter()
        .flat_map(|ns| {
            names(&state.join(&ns))
                .into_iter()
                .map(move |id| (ns.clone(), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_delete_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (state, root) = (tmp.path().join("state"), tmp.path().join("root"));
        let b = Bundle::at(&state, &root, "ns", "c1");
        b.create(b"{}").unwrap();
        assert_eq!(list(&state), vec![("ns".to_string(), "c1".to_string())]);
        assert!(b.path.join("work").join(".").is_dir());
        assert_eq!(
            b.create(b"{}").unwrap_err().kind,
            Kind::AlreadyExists,
            "a second create must not reuse the bundle"
        );
        b.delete().unwrap();
        assert!(!b.path.exists());
        assert!(!root.join("ns").join("c1").exists());
        assert!(list(&state).is_empty());
    }
}
