//! The metadata store: every record berthd keeps, in one sled database.
//!
//! Only this module touches sled, so the engine can be swapped without touching the services.
//! Records are JSON values under byte keys whose parts are joined by a NUL byte (names may
//! contain `/`, never NUL). The key tree:
//!
//! ```text
//! meta ␀ schema                                  → schema version (migrations.rs)
//! v1 ␀ namespaces ␀ <ns>                         → NamespaceRecord
//! v1 ␀ ns ␀ <ns> ␀ content ␀ <digest>            → ContentRecord
//! v1 ␀ ns ␀ <ns> ␀ leases ␀ <id>                 → LeaseRecord (its resources inside)
//! v1 ␀ ns ␀ <ns> ␀ images ␀ <name>               → ImageRecord
//! v1 ␀ ns ␀ <ns> ␀ containers ␀ <id>             → ContainerRecord
//! v1 ␀ snapshotters ␀ <name> ␀ <ns>/<key>        → SnapshotRecord (one tree per snapshotter)
//! meta ␀ snapshot-id ␀ <name>                    → the snapshotter's id counter
//! v1 ␀ ns ␀ <ns> ␀ <bucket> ␀ …                  → records of later services (images, containers, snapshots)
//! ```
//!
//! # Consistency
//! Writers are serialised by one lock, like bolt's single writer: an [`Update`] reads through
//! its own pending writes, and on success all of them land in one atomic sled batch, followed by
//! a flush, so a SIGKILL at any point leaves either all of an update or none of it, and nothing a
//! client was told succeeded is lost. Readers never wait: a [`View`] reads the committed tree.

mod keys;
mod migrations;
mod records;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Mutex, MutexGuard},
};

use berth_proto::errdefs::{Error, Kind};
use serde::{Serialize, de::DeserializeOwned};

pub use keys::Key;
pub use records::{
    ContainerRecord, ContentRecord, DescriptorRecord, ImageRecord, LeaseRecord, LeaseResource,
    NamespaceRecord, SnapshotRecord, Timestamp,
};

/// The metadata database.
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    writer: Mutex<()>,
}

fn db_error(context: &str, err: impl std::fmt::Display) -> Error {
    Error::new(Kind::Internal, format!("metadata: {context}: {err}"))
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        db_error(
            &format!(
                "corrupt record {}",
                String::from_utf8_lossy(key).replace('\0', "/")
            ),
            e,
        )
    })
}

impl Store {
    /// Opens (or creates) the database in `dir` and runs pending migrations.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| db_error(&format!("create {}", dir.display()), e))?;
        let db = sled::Config::new()
            .path(dir.join("meta.sled"))
            .mode(sled::Mode::LowSpace)
            .cache_capacity(8 << 20)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|e| db_error(&format!("open {}", dir.display()), e))?;
        let tree = db
            .open_tree("berth")
            .map_err(|e| db_error("open tree", e))?;
        let store = Store {
            db,
            tree,
            writer: Mutex::new(()),
        };
        migrations::run(&store)?;
        Ok(store)
    }

    /// A reader over committed records.
    pub fn view(&self) -> View<'_> {
        View { tree: &self.tree }
    }

    /// Runs `f` as the only writer; its writes land atomically if it returns `Ok`.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut Update<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let guard = self.lock();
        let mut update = Update {
            tree: &self.tree,
            pending: BTreeMap::new(),
            _guard: guard,
        };
        let result = f(&mut update)?;
        if !update.pending.is_empty() {
            let mut batch = sled::Batch::default();
            for (k, v) in std::mem::take(&mut update.pending) {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            self.tree
                .apply_batch(batch)
                .map_err(|e| db_error("apply batch", e))?;
            self.db.flush().map_err(|e| db_error("flush", e))?;
        }
        Ok(result)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no partial write (batches are atomic).
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Read access to committed records.
pub struct View<'a> {
    tree: &'a sled::Tree,
}

impl View<'_> {
    /// The record at `key`, if any.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, Error> {
        match self
            .tree
            .get(key.as_bytes())
            .map_err(|e| db_error("get", e))?
        {
            Some(v) => decode(key.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every record under `prefix`, as (last key part, record), in key order.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &Key) -> Result<Vec<(String, T)>, Error> {
        scan_tree(self.tree, prefix)?
            .into_iter()
            .map(|(k, v)| Ok((prefix.child_name(&k), decode(&k, &v)?)))
            .collect()
    }

    /// Whether anything lies under `prefix`.
    pub fn any_under(&self, prefix: &Key) -> Result<bool, Error> {
        Ok(self
            .tree
            .scan_prefix(prefix.as_prefix())
            .next()
            .transpose()
            .map_err(|e| db_error("scan", e))?
            .is_some())
    }
}

/// Raw (key, value) pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn scan_tree(tree: &sled::Tree, prefix: &Key) -> Result<Pairs, Error> {
    tree.scan_prefix(prefix.as_prefix())
        .map(|item| {
            let (k, v) = item.map_err(|e| db_error("scan", e))?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .collect()
}

/// A write in progress; see [`Store::update`].
pub struct Update<'a> {
    tree: &'a sled::Tree,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    _guard: MutexGuard<'a, ()>,
}

impl Update<'_> {
    /// The record at `key`, seeing this update's own writes.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, Error> {
        let bytes = match self.pending.get(key.as_bytes()) {
            Some(v) => v.clone(),
            None => self
                .tree
                .get(key.as_bytes())
                .map_err(|e| db_error("get", e))?
                .map(|v| v.to_vec()),
        };
        bytes.map(|v| decode(key.as_bytes(), &v)).transpose()
    }

    /// Stores `value` at `key`.
    pub fn put<T: Serialize>(&mut self, key: &Key, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| db_error("encode", e))?;
        self.pending.insert(key.as_bytes().to_vec(), Some(bytes));
        Ok(())
    }

    /// Removes the record at `key` (a no-op if absent).
    pub fn delete(&mut self, key: &Key) {
        self.pending.insert(key.as_bytes().to_vec(), None);
    }

    /// Removes every record under `prefix`.
    pub fn delete_under(&mut self, prefix: &Key) -> Result<(), Error> {
        for (k, _) in self.raw_scan(prefix)? {
            self.pending.insert(k, None);
        }
        Ok(())
    }

    /// Every record under `prefix`, seeing this update's own writes.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &Key) -> Result<Vec<(String, T)>, Error> {
        self.raw_scan(prefix)?
            .into_iter()
            .map(|(k, v)| Ok((prefix.child_name(&k), decode(&k, &v)?)))
            .collect()
    }

    /// Whether anything lies under `prefix`, seeing this update's own writes.
    pub fn any_under(&self, prefix: &Key) -> Result<bool, Error> {
        Ok(!self.raw_scan(prefix)?.is_empty())
    }

    fn raw_scan(&self, prefix: &Key) -> Result<Pairs, Error> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            scan_tree(self.tree, prefix)?.into_iter().collect();
        let p = prefix.as_prefix();
        for (k, v) in self.pending.range(p.clone()..) {
            if !k.starts_with(&p) {
                break;
            }
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn update_is_atomic_and_reads_its_own_writes() {
        let (_dir, store) = store();
        let a = Key::namespace("a");
        let b = Key::namespace("b");
        let failed: Result<(), Error> = store.update(|u| {
            u.put(&a, &NamespaceRecord::default())?;
            assert!(u.get::<NamespaceRecord>(&a)?.is_some());
            Err(Error::invalid("abort"))
        });
        assert!(failed.is_err());
        assert!(store.view().get::<NamespaceRecord>(&a).unwrap().is_none());
        store
            .update(|u| {
                u.put(&a, &NamespaceRecord::default())?;
                u.put(&b, &NamespaceRecord::default())
            })
            .unwrap();
        let all: Vec<(String, NamespaceRecord)> = store.view().scan(&Key::namespaces()).unwrap();
        assert_eq!(
            all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn scan_merges_pending_deletes() {
        let (_dir, store) = store();
        store
            .update(|u| u.put(&Key::namespace("x"), &NamespaceRecord::default()))
            .unwrap();
        store
            .update(|u| {
                u.delete(&Key::namespace("x"));
                assert!(!u.any_under(&Key::namespaces())?);
                Ok(())
            })
            .unwrap();
        assert!(!store.view().any_under(&Key::namespaces()).unwrap());
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .update(|u| u.put(&Key::namespace("keep"), &NamespaceRecord::default()))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(
            store
                .view()
                .get::<NamespaceRecord>(&Key::namespace("keep"))
                .unwrap()
                .is_some()
        );
    }
}
