//! The bookkeeping both snapshotters share: records, ids, directories, and the order of
//! steps that keeps a crash from leaving a record without its directory.
//!
//! [`Core`] implements every [`Snapshotter`](super::Snapshotter) operation except the two
//! that differ between overlay and native: how a new snapshot's directory is filled, and how
//! a snapshot is mounted. Those come in as a closure and as the returned [`Chain`].

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, atomic::AtomicU64},
    time::SystemTime,
};

use berth_proto::{
    errdefs::{Error, Kind as ErrorKind, io_error},
    labels,
};

use super::{Info, Kind, MetaStore, MetaTxn, Record, Usage, fsutil};

mod create;
mod remove;

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
            .mode(0o700)
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

    /// The record of `key` as an [`Info`].
    pub fn stat(&self, key: &str) -> Result<Info, Error> {
        self.view(|t| get(t, key).map(|r| info(key, &r)))
    }

    /// Changes labels by containerd's field-path rules (see `Snapshotter::update`).
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

    /// Stored usage, or a fresh measurement for active snapshots.
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

    /// Calls `f` for every record, outside the store's transaction.
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
}
