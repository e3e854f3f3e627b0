//! The bookkeeping both snapshotters share: records, ids, directories, and the order of
//! steps that keeps a crash from leaving a record without its directory.
//!
//! [`Core`] implements every [`Snapshotter`](super::Snapshotter) operation except the two
//! that differ between overlay and native: how a new snapshot's directory is filled, and how
//! a snapshot is mounted. Those come in as a closure and as the returned [`Chain`].

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use berth_proto::{
    errdefs::{Error, Kind as ErrorKind, io_error},
    labels,
};

use super::{Info, Kind, MetaStore, MetaTxn, Record, Usage, fsutil};

/// Populates a new snapshot's directory, given the ids of its ancestors (nearest first).
pub(crate) type Fill<'a> = dyn Fn(&Path, &[u64]) -> Result<(), Error> + 'a;

/// A live (active or view) snapshot and the committed snapshots under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The snapshot's own id.
    pub id: u64,
    /// Active or view.
    pub kind: Kind,
    /// Ids of its ancestors, the immediate parent first.
    pub parents: Vec<u64>,
}

/// A snapshotter's root, metadata store and write lock.
pub(crate) struct Core {
    root: PathBuf,
    store: Arc<dyn MetaStore>,
    /// Serializes operations that change records or directories, so that `cleanup` never
    /// sees a directory whose record is about to be written.
    lock: Mutex<()>,
    /// Makes temporary directory names unique within this process.
    temp_seq: AtomicU64,
}

pub(crate) fn not_found(key: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("snapshot {key:?} does not exist: not found"),
    )
}

fn check_key(what: &str, key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "snapshot {what} must not be empty: invalid argument"
        )));
    }
    Ok(())
}

/// Drops labels with empty values (containerd never stores them) and checks the rest.
fn clean_labels(mut labels: HashMap<String, String>) -> Result<HashMap<String, String>, Error> {
    labels.retain(|_, v| !v.is_empty());
    labels::validate_all(&labels)?;
    Ok(labels)
}

fn info(key: &str, r: &Record) -> Info {
    Info {
        kind: r.kind,
        name: key.to_string(),
        parent: r.parent.clone(),
        labels: r.labels.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn get(txn: &dyn MetaTxn, key: &str) -> Result<Record, Error> {
    txn.get(key)?.ok_or_else(|| not_found(key))
}

/// The ids of `parent` and its ancestors, nearest first; checks `parent` is committed.
fn ancestors(txn: &dyn MetaTxn, parent: &str) -> Result<Vec<u64>, Error> {
    let mut ids = Vec::new();
    let mut next = parent.to_string();
    while !next.is_empty() {
        let record = txn.get(&next)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("parent snapshot {next:?} does not exist: not found"),
            )
        })?;
        if record.kind != Kind::Committed {
            return Err(Error::invalid(format!(
                "parent {next:?} is not a committed snapshot: invalid argument"
            )));
        }
        if ids.contains(&record.id) {
            return Err(Error::internal(format!("parent chain of {parent:?} loops")));
        }
        ids.push(record.id);
        next = record.parent;
    }
    Ok(ids)
}

impl Core {
    /// Opens (creating if needed) the snapshotter root `root`.
    pub fn new(root: &Path, store: Arc<dyn MetaStore>) -> Result<Core, Error> {
        let text = root
            .to_str()
            .ok_or_else(|| Error::invalid(format!("snapshotter root {root:?} is not UTF-8")))?;
        // These characters separate mount options and overlay layers.
        if !root.is_absolute() || text.contains([',', ':', '\\']) {
            return Err(Error::invalid(format!(
                "snapshotter root {text:?} must be absolute, without ',' ':' or '\\'"
            )));
        }
        let snapshots = root.join("snapshots");
        fs::DirBuilder::new()
            .recursive(true)
            .create(root)
            .map_err(|e| io_error(format!("create {text}"), e))?;
        match fsutil::mkdir(&snapshots, 0o700) {
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            other => other?,
        }
        Ok(Core {
            root: root.to_path_buf(),
            store,
            lock: Mutex::new(()),
            temp_seq: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn view<T>(&self, mut f: impl FnMut(&dyn MetaTxn) -> Result<T, Error>) -> Result<T, Error> {
        let mut out = None;
        self.store.view(&mut |t| {
            out = Some(f(t)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::internal("metadata store skipped a transaction"))
    }

    fn update<T>(
        &self,
        mut f: impl FnMut(&mut dyn MetaTxn) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut out = None;
        self.store.update(&mut |t| {
            out = Some(f(t)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::internal("metadata store skipped a transaction"))
    }

    /// `<root>/snapshots`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// `<root>/snapshots/<id>/fs`: a snapshot's files.
    pub fn fs_path(&self, id: u64) -> PathBuf {
        self.snapshots_dir().join(id.to_string()).join("fs")
    }

    pub fn stat(&self, key: &str) -> Result<Info, Error> {
        self.view(|t| get(t, key).map(|r| info(key, &r)))
    }

    pub fn update_info(&self, new: Info, fieldpaths: &[String]) -> Result<Info, Error> {
        check_key("key", &new.name)?;
        let _guard = self.lock();
        self.update(|t| {
            let mut record = get(t, &new.name)?;
            let mut labels = record.labels.clone();
            if fieldpaths.is_empty() {
                labels = new.labels.clone();
            }
            for path in fieldpaths {
                if let Some(label) = path.strip_prefix("labels.") {
                    match new.labels.get(label) {
                        Some(value) => labels.insert(label.to_string(), value.clone()),
                        None => labels.remove(label),
                    };
                } else if path == "labels" {
                    labels = new.labels.clone();
                } else {
                    return Err(Error::invalid(format!(
                        "cannot update {path:?} field on snapshot {:?}: invalid argument",
                        new.name
                    )));
                }
            }
            record.labels = clean_labels(labels)?;
            record.updated_at = SystemTime::now();
            t.put(&new.name, record.clone())?;
            Ok(info(&new.name, &record))
        })
    }

    pub fn usage(&self, key: &str) -> Result<Usage, Error> {
        let record = self.view(|t| get(t, key))?;
        match record.kind {
            Kind::Active => fsutil::disk_usage(&self.fs_path(record.id)),
            Kind::View | Kind::Committed => Ok(record.usage),
        }
    }

    /// The chain of a live snapshot, for its mounts.
    pub fn chain(&self, key: &str) -> Result<Chain, Error> {
        self.view(|t| {
            let record = get(t, key)?;
            if record.kind == Kind::Committed {
                return Err(Error::precondition(format!(
                    "requested snapshot {key:?} not active or view: failed precondition"
                )));
            }
            let parents = ancestors(t, &record.parent)?;
            Ok(Chain {
                id: record.id,
                kind: record.kind,
                parents,
            })
        })
    }

    /// Creates an active or view snapshot. `fill(dir, parents)` populates the new snapshot's
    /// directory (still under its temporary name) before it is numbered and recorded.
    pub fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
        fill: &Fill<'_>,
    ) -> Result<Chain, Error> {
        check_key("key", key)?;
        let labels = clean_labels(labels)?;
        let _guard = self.lock();
        let check = |t: &dyn MetaTxn| {
            if t.get(key)?.is_some() {
                return Err(Error::already_exists(format!("snapshot {key:?}")));
            }
            ancestors(t, parent)
        };
        let parents = self.view(check)?;

        let temp = self.snapshots_dir().join(format!(
            "new-{}-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            self.temp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        fsutil::mkdir(&temp, 0o700)?;
        if let Err(err) = fill(&temp, &parents) {
            remove_dir_logged(&temp);
            return Err(err);
        }
        // Number the directory before recording it: a crash in between leaves an orphan
        // that cleanup removes, never a record without its directory.
        let id = match self.update(|t| t.next_id()) {
            Ok(id) => id,
            Err(err) => {
                remove_dir_logged(&temp);
                return Err(err);
            }
        };
        let dir = self.snapshots_dir().join(id.to_string());
        if let Err(err) = fs::rename(&temp, &dir) {
            remove_dir_logged(&temp);
            return Err(io_error(format!("rename {}", temp.display()), err));
        }
        let now = SystemTime::now();
        let record = Record {
            id,
            kind,
            parent: parent.to_string(),
            labels,
            created_at: now,
            updated_at: now,
            usage: Usage::default(),
        };
        let recorded = self.update(|t| {
            check(t)?;
            t.put(key, record.clone())
        });
        if let Err(err) = recorded {
            remove_dir_logged(&dir);
            return Err(err);
        }
        Ok(Chain { id, kind, parents })
    }

    pub fn commit(
        &self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), Error> {
        check_key("name", name)?;
        check_key("key", key)?;
        let labels = clean_labels(labels)?;
        let _guard = self.lock();
        let check = |t: &dyn MetaTxn| {
            let record = get(t, key)?;
            if t.get(name)?.is_some() {
                return Err(Error::already_exists(format!("snapshot {name:?}")));
            }
            if record.kind != Kind::Active {
                return Err(Error::precondition(format!(
                    "snapshot {key:?} is not active: failed precondition"
                )));
            }
            Ok(record)
        };
        let record = self.view(check)?;
        let usage = fsutil::disk_usage(&self.fs_path(record.id))?;
        self.update(|t| {
            let active = check(t)?;
            let now = SystemTime::now();
            let committed = Record {
                kind: Kind::Committed,
                labels: labels.clone(),
                created_at: now,
                updated_at: now,
                usage,
                ..active
            };
            t.put(name, committed)?;
            t.delete(key)
        })
    }

    pub fn remove(&self, key: &str) -> Result<(), Error> {
        check_key("key", key)?;
        let removed = {
            let _guard = self.lock();
            let id = self.update(|t| {
                let record = get(t, key)?;
                let mut child = None;
                t.for_each(&mut |k, r| {
                    if child.is_none() && r.parent == key {
                        child = Some(k.to_string());
                    }
                    Ok(())
                })?;
                if let Some(child) = child {
                    return Err(Error::precondition(format!(
                        "cannot remove snapshot {key:?} with child {child:?}: failed precondition"
                    )));
                }
                t.delete(key)?;
                Ok(record.id)
            })?;
            // The record is gone; from here on a failure only leaves work for cleanup.
            let dir = self.snapshots_dir().join(id.to_string());
            let removed = self.snapshots_dir().join(format!("removed-{id}"));
            match fs::rename(&dir, &removed) {
                Ok(()) => Some(removed),
                Err(err) => {
                    if err.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(dir = %dir.display(), %err, "cannot rename removed snapshot");
                    }
                    None
                }
            }
        };
        if let Some(removed) = removed {
            remove_dir_logged(&removed);
        }
        Ok(())
    }

    pub fn walk(&self, f: &mut dyn FnMut(&Info) -> Result<(), Error>) -> Result<(), Error> {
        // Collect first, so that `f` runs outside the transaction and may call back in.
        let infos = self.view(|t| {
            let mut infos = Vec::new();
            t.for_each(&mut |k, r| {
                infos.push(info(k, r));
                Ok(())
            })?;
            Ok(infos)
        })?;
        infos.iter().try_for_each(f)
    }

    pub fn cleanup(&self) -> Result<(), Error> {
        let _guard = self.lock();
        let ids = self.view(|t| {
            let mut ids = HashSet::new();
            t.for_each(&mut |_, r| {
                ids.insert(r.id.to_string());
                Ok(())
            })?;
            Ok(ids)
        })?;
        let dir = self.snapshots_dir();
        let entries =
            fs::read_dir(&dir).map_err(|e| io_error(format!("read {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("read {}", dir.display()), e))?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| ids.contains(n)) {
                continue;
            }
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing unreferenced snapshot directory");
            remove_dir_logged(&path);
        }
        Ok(())
    }
}

/// Removes a directory tree (or a stray file), logging failures: by the time this runs, no
/// record refers to `path`, so a leftover is only work for the next cleanup.
fn remove_dir_logged(path: &Path) {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) => Err(err),
    };
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), %err, "cannot remove snapshot directory");
        }
        _ => {}
    }
}
