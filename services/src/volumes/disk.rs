//! The volumes directory on disk: `<root>/volumes` (0700) holds one directory per volume,
//! `<name>/volume.json` (labels, creation time, anonymous) and `<name>/_data` (0755, what
//! containers mount).
//!
//! Changes are atomic renames: a volume is assembled in a hidden `.tmp-<random>` directory
//! and renamed into place without replacing anything (`RENAME_NOREPLACE`), and removed by
//! renaming it to a hidden `.rm-<random>` before deleting its tree. A crash leaves at most a
//! hidden directory, swept when the directory is opened again; a volume is never seen half
//! made or half removed. Hidden names are never valid volume names.

use std::{
    collections::{HashMap, HashSet},
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, Kind, io_error};
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use serde::{Deserialize, Serialize};

use super::name;
use crate::metadata::Timestamp;

/// The directory containers mount, inside a volume's directory.
pub const DATA: &str = "_data";
/// The metadata file inside a volume's directory.
pub const META: &str = "volume.json";
const TMP_PREFIX: &str = ".tmp-";
const RM_PREFIX: &str = ".rm-";

/// What `volume.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The volume's labels.
    pub labels: HashMap<String, String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Whether a container's anonymous mount created it.
    pub anonymous: bool,
}

/// The volumes directory.
#[derive(Debug)]
pub struct Dir {
    root: PathBuf,
}

impl Dir {
    /// Opens (creating, 0700) the volumes directory at `root` and sweeps what an interrupted
    /// create or remove left behind.
    pub fn open(root: &Path) -> Result<Dir, Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| io_error(format!("create {}", root.display()), e))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(format!("chmod {}", root.display()), e))?;
        let dir = Dir {
            root: root.to_path_buf(),
        };
        for entry in dir.entries()? {
            let hidden = entry
                .to_str()
                .is_some_and(|n| n.starts_with(TMP_PREFIX) || n.starts_with(RM_PREFIX));
            if hidden {
                let path = root.join(&entry);
                tracing::info!(path = %path.display(), "removing leftover of an interrupted volume change");
                remove_tree(&path)?;
            }
        }
        Ok(dir)
    }

    fn entries(&self) -> Result<Vec<std::ffi::OsString>, Error> {
        let read = fs::read_dir(&self.root)
            .map_err(|e| io_error(format!("read {}", self.root.display()), e))?;
        read.map(|e| {
            e.map(|e| e.file_name())
                .map_err(|e| io_error(format!("read {}", self.root.display()), e))
        })
        .collect()
    }

    /// The directory of volume `name` (a validated name).
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The directory containers mount for volume `name`.
    pub fn data(&self, name: &str) -> PathBuf {
        self.path(name).join(DATA)
    }

    /// The names of every volume on disk, sorted.
    pub fn names(&self) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = self
            .entries()?
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .filter(|n| name::validate(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The metadata of volume `name`, or `None` when there is no such volume.
    pub fn read(&self, name: &str) -> Result<Option<Meta>, Error> {
        let path = self.path(name).join(META);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("corrupt {}: {e}", path.display())))
    }

    /// Creates volume `name` with `meta`; false (and nothing changed) when it already exists.
    pub fn create(&self, name: &str, meta: &Meta) -> Result<bool, Error> {
        let tmp = self
            .root
            .join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let staged = stage(&tmp, meta);
        let placed = staged.and_then(|()| {
            renameat2(
                AT_FDCWD,
                &tmp,
                AT_FDCWD,
                &self.path(name),
                RenameFlags::RENAME_NOREPLACE,
            )
            .map_err(|errno| io_error(format!("create volume {name}"), std::io::Error::from(errno)))
        });
        match placed {
            Ok(()) => {
                sync_dir(&self.root)?;
                Ok(true)
            }
            Err(e) => {
                remove_tree(&tmp)?;
                if e.kind == Kind::AlreadyExists {
                    return Ok(false);
                }
                Err(e)
            }
        }
    }

    /// Removes volume `name` and its data; NotFound when there is none.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let doomed = self
            .root
            .join(format!("{RM_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        fs::rename(self.path(name), &doomed).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(format!("volume {name}"))
            } else {
                io_error(format!("remove volume {name}"), e)
            }
        })?;
        sync_dir(&self.root)?;
        remove_tree(&doomed)
    }
}

/// Builds a volume's directory at `dir`: `_data` (0755) and a synced `volume.json`.
fn stage(dir: &Path, meta: &Meta) -> Result<(), Error> {
    let io = |what: &str, p: &Path, e| io_error(format!("{what} {}", p.display()), e);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(dir)
        .map_err(|e| io("create", dir, e))?;
    let data = dir.join(DATA);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .map_err(|e| io("create", &data, e))?;
    // The umask may have taken bits away: containers expect 0755 as Docker makes it.
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
        .map_err(|e| io("chmod", &data, e))?;
    let path = dir.join(META);
    let json = serde_json::to_vec(meta)
        .map_err(|e| Error::internal(format!("encode volume metadata: {e}")))?;
    let mut file = fs::File::create(&path).map_err(|e| io("create", &path, e))?;
    file.write_all(&json).map_err(|e| io("write", &path, e))?;
    file.sync_all().map_err(|e| io("sync", &path, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(format!("sync {}", dir.display()), e))
}

/// Removes a directory tree (symlinks are removed, never followed); absent is fine.
fn remove_tree(path: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("remove {}", path.display()), e)),
    }
}

/// Bytes used under `dir`: the sizes of everything but directories, hard links counted
/// once, symlinks not followed, files that vanish meanwhile skipped (as Docker counts).
pub fn usage(dir: &Path) -> Result<u64, Error> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(format!("read {}", d.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("read {}", d.display()), e))?;
            // DirEntry::metadata does not traverse symlinks.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(format!("stat {}", entry.path().display()), e)),
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            labels: HashMap::from([("k".into(), "v".into())]),
            created_at: Timestamp::now(),
            anonymous: false,
        }
    }

    #[test]
    fn create_is_atomic_and_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(&tmp.path().join("volumes")).unwrap();
        let mode = fs::metadata(tmp.path().join("volumes"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let m = meta();
        assert!(dir.create("v1", &m).unwrap());
        let mut other = meta();
        other.labels.clear();
        assert!(!dir.create("v1", &other).unwrap());
        assert_eq!(dir.read("v1").unwrap(), Some(m));
        let mode = fs::metadata(dir.data("v1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(dir.names().unwrap(), ["v1"]);
    }

    #[test]
    fn remove_and_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("volumes");
        let dir = Dir::open(&root).unwrap();
        dir.create("v1", &meta()).unwrap();
        fs::create_dir_all(root.join(".tmp-x/_data")).unwrap();
        fs::create_dir_all(root.join(".rm-y")).unwrap();
        let dir = Dir::open(&root).unwrap();
        assert!(!root.join(".tmp-x").exists() && !root.join(".rm-y").exists());
        dir.remove("v1").unwrap();
        assert_eq!(dir.remove("v1").unwrap_err().kind, Kind::NotFound);
        assert!(dir.read("v1").unwrap().is_none());
        assert!(fs::read_dir(&root).unwrap().next().is_none());
    }

    #[test]
    fn usage_counts_files_once_and_skips_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("a"), vec![0u8; 1000]).unwrap();
        fs::write(d.join("sub/b"), vec![0u8; 24]).unwrap();
        fs::hard_link(d.join("a"), d.join("sub/a-again")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("big"), vec![0u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();
        let link_len = fs::symlink_metadata(d.join("link")).unwrap().len();
        assert_eq!(usage(d).unwrap(), 1024 + link_len);
    }
}
