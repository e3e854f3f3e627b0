//! Snapshot metadata: one [`Record`] per key, and the [`MetaStore`] that keeps them.
//!
//! The store is deliberately small: keyed records, an id counter, and transactions. A
//! snapshotter reads through [`MetaStore::view`] and changes state through
//! [`MetaStore::update`], whose writes land all together or not at all; that is what makes
//! commit (one key out, another in) atomic. Berth's daemon implements the trait over its
//! database, one store per snapshotter; [`MemoryMetaStore`] is the reference implementation.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
    time::SystemTime,
};

use berth_proto::errdefs::Error;

use super::{Kind, Usage};

/// What a snapshotter remembers about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Names the snapshot's directory (`<root>/snapshots/<id>`); unique, never reused.
    pub id: u64,
    /// Active, view or committed.
    pub kind: Kind,
    /// The parent's key; empty for none.
    pub parent: String,
    /// Labels, none with an empty value.
    pub labels: HashMap<String, String>,
    /// Creation (or commit) time.
    pub created_at: SystemTime,
    /// Last change of this record.
    pub updated_at: SystemTime,
    /// Measured at commit for committed snapshots; zero for the others.
    pub usage: Usage,
}

/// One transaction's access to the records.
///
/// Reads see the transaction's own earlier writes. Read-only transactions get `&dyn
/// MetaTxn`, so only [`MetaStore::update`] can call the writing methods.
pub trait MetaTxn {
    /// The record of `key`, if there is one.
    fn get(&self, key: &str) -> Result<Option<Record>, Error>;
    /// Calls `f` with every key and record, in key order; the first error stops the scan.
    fn for_each(&self, f: &mut dyn FnMut(&str, &Record) -> Result<(), Error>) -> Result<(), Error>;
    /// Stores `record` under `key`, replacing any record there.
    fn put(&mut self, key: &str, record: Record) -> Result<(), Error>;
    /// Deletes the record of `key`; deleting a missing key is not an error.
    fn delete(&mut self, key: &str) -> Result<(), Error>;
    /// Allocates the next id from the store's counter (1, 2, 3, …); part of the transaction.
    fn next_id(&mut self) -> Result<u64, Error>;
}

/// Where a snapshotter keeps its records.
///
/// Contract for implementations:
/// - `f` runs exactly once per call;
/// - `update` calls are serialized, and all writes of one call, counter included, become
///   visible and durable together, or — when `f` or the store fails — not at all;
/// - `view` sees a consistent state: all of an update, or none of it.
pub trait MetaStore: Send + Sync {
    /// Runs `f` in a read-only transaction.
    fn view(&self, f: &mut dyn FnMut(&dyn MetaTxn) -> Result<(), Error>) -> Result<(), Error>;
    /// Runs `f` in a read-write transaction and applies its writes if it returns `Ok`.
    fn update(&self, f: &mut dyn FnMut(&mut dyn MetaTxn) -> Result<(), Error>)
    -> Result<(), Error>;
}

/// The committed contents of a [`MemoryMetaStore`].
#[derive(Debug, Default)]
struct State {
    records: BTreeMap<String, Record>,
    last_id: u64,
}

/// A [`MetaStore`] in memory: for tests and for the shared test suite.
#[derive(Debug, Default)]
pub struct MemoryMetaStore {
    state: Mutex<State>,
}

impl MemoryMetaStore {
    /// An empty store; the first id it hands out is 1.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Writes are applied only after `f` succeeded, so a panic cannot leave them half done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A transaction over a [`State`]: writes are buffered until the end.
struct MemTxn<'a> {
    base: &'a State,
    /// `None` marks a deletion.
    writes: BTreeMap<String, Option<Record>>,
    last_id: u64,
}

impl<'a> MemTxn<'a> {
    fn new(base: &'a State) -> Self {
        MemTxn {
            base,
            writes: BTreeMap::new(),
            last_id: base.last_id,
        }
    }
}

impl MetaTxn for MemTxn<'_> {
    fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        Ok(match self.writes.get(key) {
            Some(written) => written.clone(),
            None => self.base.records.get(key).cloned(),
        })
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &Record) -> Result<(), Error>) -> Result<(), Error> {
        let mut merged: BTreeMap<&str, &Record> = self
            .base
            .records
            .iter()
            .map(|(k, r)| (k.as_str(), r))
            .collect();
        for (key, written) in &self.writes {
            match written {
                Some(record) => merged.insert(key, record),
                None => merged.remove(key.as_str()),
            };
        }
        merged.into_iter().try_for_each(|(k, r)| f(k, r))
    }

    fn put(&mut self, key: &str, record: Record) -> Result<(), Error> {
        self.writes.insert(key.to_string(), Some(record));
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.writes.insert(key.to_string(), None);
        Ok(())
    }

    fn next_id(&mut self) -> Result<u64, Error> {
        self.last_id = self
            .last_id
            .checked_add(1)
            .ok_or_else(|| Error::internal("snapshot ids exhausted"))?;
        Ok(self.last_id)
    }
}

impl MetaStore for MemoryMetaStore {
    fn view(&self, f: &mut dyn FnMut(&dyn MetaTxn) -> Result<(), Error>) -> Result<(), Error> {
        let state = self.lock();
        f(&MemTxn::new(&state))
    }

    fn update(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaTxn) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let mut txn = MemTxn::new(&state);
        f(&mut txn)?;
        let (writes, last_id) = (txn.writes, txn.last_id);
        for (key, written) in writes {
            match written {
                Some(record) => state.records.insert(key, record),
                None => state.records.remove(&key),
            };
        }
        state.last_id = last_id;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> Record {
        Record {
            id,
            kind: Kind::Active,
            parent: String::new(),
            labels: HashMap::new(),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
            usage: Usage::default(),
        }
    }

    fn keys(store: &MemoryMetaStore) -> Vec<String> {
        let mut keys = Vec::new();
        store
            .view(&mut |t| {
                t.for_each(&mut |k, _| {
                    keys.push(k.to_string());
                    Ok(())
                })
            })
            .unwrap();
        keys
    }

    #[test]
    fn failed_updates_leave_nothing_behind() {
        let store = MemoryMetaStore::new();
        store
            .update(&mut |t| {
                let id = t.next_id()?;
                t.put("a", record(id))
            })
            .unwrap();
        let err = store
            .update(&mut |t| {
                let id = t.next_id()?;
                t.put("b", record(id))?;
                t.delete("a")?;
                Err(Error::internal("boom"))
            })
            .unwrap_err();
        assert_eq!(err.message, "boom");
        assert_eq!(keys(&store), vec!["a"]);
        // The counter rolled back with the rest.
        let mut id = 0;
        store.update(&mut |t| t.next_id().map(|n| id = n)).unwrap();
        assert_eq!(id, 2);
    }

    #[test]
    fn transactions_read_their_own_writes() {
        let store = MemoryMetaStore::new();
        store.update(&mut |t| t.put("a", record(1))).unwrap();
        store
            .update(&mut |t| {
                t.put("b", record(2))?;
                t.delete("a")?;
                assert!(t.get("a")?.is_none());
                assert_eq!(t.get("b")?.map(|r| r.id), Some(2));
                let mut seen = Vec::new();
                t.for_each(&mut |k, _| {
                    seen.push(k.to_string());
                    Ok(())
                })?;
                assert_eq!(seen, vec!["b"]);
                Ok(())
            })
            .unwrap();
        assert_eq!(keys(&store), vec!["b"]);
    }
}
