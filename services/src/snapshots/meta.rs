//! Snapshot records in the metadata store: the snapshotters' [`MetaStore`], one tree per
//! snapshotter, written in the same atomic batches as everything else.

use std::sync::Arc;

use berth_proto::errdefs::Error;
use berth_snapshotter::snapshots::{Kind, MetaStore, MetaTxn, Record, Usage};

use crate::metadata::{Key, SnapshotRecord, Store, Timestamp, Update, View};

/// The metadata-backed store of one snapshotter.
pub struct SnapshotMeta {
    store: Arc<Store>,
    name: String,
}

impl SnapshotMeta {
    /// Records of snapshotter `name` in `store`.
    pub fn new(store: Arc<Store>, name: &str) -> SnapshotMeta {
        SnapshotMeta {
            store,
            name: name.to_string(),
        }
    }
}

fn to_record(r: SnapshotRecord) -> Result<Record, Error> {
    let kind = Kind::from_i32(r.kind)
        .ok_or_else(|| Error::internal(format!("snapshot record with unknown kind {}", r.kind)))?;
    Ok(Record {
        id: r.id,
        kind,
        parent: r.parent,
        labels: r.labels,
        created_at: to_time(r.created_at),
        updated_at: to_time(r.updated_at),
        usage: Usage {
            size: r.size,
            inodes: r.inodes,
        },
    })
}

fn from_record(r: Record) -> SnapshotRecord {
    SnapshotRecord {
        id: r.id,
        kind: r.kind.as_i32(),
        parent: r.parent,
        labels: r.labels,
        created_at: Timestamp::from(r.created_at),
        updated_at: Timestamp::from(r.updated_at),
        size: r.usage.size,
        inodes: r.usage.inodes,
    }
}

fn to_time(t: Timestamp) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
}

fn read_only() -> Error {
    Error::internal("snapshot metadata: write in a read-only transaction")
}

struct ReadTxn<'a> {
    view: View<'a>,
    name: &'a str,
}

impl MetaTxn for ReadTxn<'_> {
    fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        self.view
            .get::<SnapshotRecord>(&Key::snapshot(self.name, key))?
            .map(to_record)
            .transpose()
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &Record) -> Result<(), Error>) -> Result<(), Error> {
        for (key, r) in self
            .view
            .scan::<SnapshotRecord>(&Key::snapshots(self.name))?
        {
            f(&key, &to_record(r)?)?;
        }
        Ok(())
    }

    fn put(&mut self, _: &str, _: Record) -> Result<(), Error> {
        Err(read_only())
    }

    fn delete(&mut self, _: &str) -> Result<(), Error> {
        Err(read_only())
    }

    fn next_id(&mut self) -> Result<u64, Error> {
        Err(read_only())
    }
}

struct WriteTxn<'u, 'a> {
    update: &'u mut Update<'a>,
    name: &'u str,
}

impl MetaTxn for WriteTxn<'_, '_> {
    fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        self.update
            .get::<SnapshotRecord>(&Key::snapshot(self.name, key))?
            .map(to_record)
            .transpose()
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &Record) -> Result<(), Error>) -> Result<(), Error> {
        for (key, r) in self
            .update
            .scan::<SnapshotRecord>(&Key::snapshots(self.name))?
        {
            f(&key, &to_record(r)?)?;
        }
        Ok(())
    }

    fn put(&mut self, key: &str, record: Record) -> Result<(), Error> {
        self.update
            .put(&Key::snapshot(self.name, key), &from_record(record))
    }

    fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.update.delete(&Key::snapshot(self.name, key));
        Ok(())
    }

    fn next_id(&mut self) -> Result<u64, Error> {
        let key = Key::snapshot_counter(self.name);
        let next = self.update.get::<u64>(&key)?.unwrap_or(0) + 1;
        self.update.put(&key, &next)?;
        Ok(next)
    }
}

impl MetaStore for SnapshotMeta {
    fn view(&self, f: &mut dyn FnMut(&dyn MetaTxn) -> Result<(), Error>) -> Result<(), Error> {
        let txn = ReadTxn {
            view: self.store.view(),
            name: &self.name,
        };
        f(&txn)
    }

    fn update(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaTxn) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.store.update(|update| {
            let mut txn = WriteTxn {
                update,
                name: &self.name,
            };
            f(&mut txn)
        })
    }
}
