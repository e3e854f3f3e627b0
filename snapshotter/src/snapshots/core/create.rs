//! Creating and committing snapshots.

use std::{
    collections::HashMap,
    fs,
    sync::atomic::Ordering,
    time::{SystemTime, UNIX_EPOCH},
};

use berth_proto::errdefs::{Error, io_error};

use super::{
    Chain, Core, Fill, ancestors, check_key, clean_labels, get, remove::remove_dir_logged,
};
use crate::snapshots::{Kind, MetaTxn, Record, Usage, fsutil};

impl Core {
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

    /// Turns the active `key` into the committed `name`: usage measured, labels replaced,
    /// both keys changed in one update. The files stay where they are.
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
}
