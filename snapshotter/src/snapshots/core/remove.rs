//! Removing snapshots and the directories nothing refers to.

use std::{collections::HashSet, fs, path::Path};

use berth_proto::errdefs::{Error, io_error};

use super::{Core, check_key, get};

impl Core {
    /// Deletes the record of `key` (refused while it has children), then its directory.
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

    /// Deletes every entry of `<root>/snapshots` that names no recorded id.
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
pub(super) fn remove_dir_logged(path: &Path) {
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
