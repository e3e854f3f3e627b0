//! Named volumes: directories under berthd's root (`<root>/volumes/<name>/_data`) that
//! containers bind-mount by name and that outlive the containers using them.
//!
//! Volumes are global, as Docker's are: every namespace sees the same ones. A container uses
//! the volumes its `berth.io/volumes` label lists, and a volume in use by any container of
//! any namespace is neither removed (unless forced) nor pruned. The layout on disk and its
//! atomic changes are [`disk`]'s; names follow Docker's rule ([`name`]), so nothing a client
//! sends can reach outside the volumes directory.
//!
//! Every operation touches the filesystem: callers on the async runtime run them through
//! [`crate::blocking::run`]. Creating and removing are serialised by one lock, so an in-use
//! check and the removal it allows do not interleave with another change.

pub mod disk;
pub mod grpc;
pub mod name;
pub mod users;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use berth_proto::{
    errdefs::Error,
    filters::{Adaptor, Filter, label_field},
    labels,
};

use crate::metadata::Timestamp;
use disk::{Dir, Meta};
use users::{ContainerRef, Users};

/// The directory under berthd's root that holds the volumes.
pub const DIR: &str = "volumes";

/// One volume as the store describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// The host directory containers mount.
    pub mountpoint: PathBuf,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Created by a container's anonymous mount.
    pub anonymous: bool,
    /// Bytes used, when asked for.
    pub size: Option<u64>,
    /// The containers using it, sorted.
    pub used_by: Vec<ContainerRef>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    /// The names of the volumes removed.
    pub removed: Vec<String>,
    /// The bytes their data used.
    pub space_reclaimed: u64,
}

/// The volume store.
pub struct Volumes {
    dir: Dir,
    users: Arc<dyn Users>,
    changes: Mutex<()>,
}

struct VolumeFields<'a>(&'a Volume);

impl Adaptor for VolumeFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "name" if path.len() == 1 => Some(self.0.name.clone()),
            "dangling" if path.len() == 1 => Some(self.0.used_by.is_empty().to_string()),
            "labels" => label_field(&self.0.labels, &path[1..]),
            _ => None,
        }
    }
}

impl Volumes {
    /// Opens the volumes kept in `root` (created 0700 if needed), whose users `users` finds.
    pub fn open(root: &Path, users: Arc<dyn Users>) -> Result<Volumes, Error> {
        Ok(Volumes {
            dir: Dir::open(root)?,
            users,
            changes: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn describe(
        &self,
        name: &str,
        meta: Meta,
        users: &HashMap<String, Vec<ContainerRef>>,
        with_size: bool,
    ) -> Result<Volume, Error> {
        let mountpoint = self.dir.data(name);
        let size = if with_size {
            Some(disk::usage(&mountpoint).map_err(|e| e.context(format!("volume {name}")))?)
        } else {
            None
        };
        Ok(Volume {
            name: name.to_string(),
            mountpoint,
            labels: meta.labels,
            created_at: meta.created_at,
            anonymous: meta.anonymous,
            size,
            used_by: users.get(name).cloned().unwrap_or_default(),
        })
    }

    /// Creates volume `name` (a random name when empty); an existing volume is returned
    /// unchanged, whatever `labels` and `anonymous` say.
    pub fn create(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, Error> {
        let name = if name.is_empty() {
            name::random()
        } else {
            name::validate(name)?;
            name.to_string()
        };
        labels::validate_all(&labels).map_err(|e| e.context("volume labels"))?;
        let meta = Meta {
            labels,
            created_at: Timestamp::now(),
            anonymous,
        };
        {
            let _changes = self.lock();
            if self.dir.create(&name, &meta)? {
                tracing::info!(volume = %name, anonymous, "volume created");
            }
        }
        self.get(&name, false)
    }

    /// Volume `name`, with its size when `with_size`; NotFound when there is none.
    pub fn get(&self, name: &str, with_size: bool) -> Result<Volume, Error> {
        name::validate(name)?;
        let meta = self
            .dir
            .read(name)?
            .ok_or_else(|| Error::not_found(format!("volume {name}")))?;
        self.describe(name, meta, &self.users.users()?, with_size)
    }

    /// The volumes matching `filter` (fields `name`, `labels.<key>`, `dangling`), by name.
    pub fn list(&self, filter: &Filter, with_size: bool) -> Result<Vec<Volume>, Error> {
        let users = self.users.users()?;
        let mut out = Vec::new();
        for name in self.dir.names()? {
            // A volume removed since the directory was read is no longer listed.
            let Some(meta) = self.dir.read(&name)? else {
                continue;
            };
            let volume = self.describe(&name, meta, &users, false)?;
            if filter.matches(&VolumeFields(&volume)) {
                out.push(volume);
            }
        }
        if with_size {
            for v in &mut out {
                v.size = Some(disk::usage(&v.mountpoint).map_err(|e| e.context(&v.name))?);
            }
        }
        Ok(out)
    }

    /// Removes volume `name` and its data. FailedPrecondition while a container uses it,
    /// unless `force`; NotFound when there is none.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), Error> {
        name::validate(name)?;
        let _changes = self.lock();
        let users = self.users.users()?;
        let using = users.get(name).map(Vec::as_slice).unwrap_or_default();
        if self.dir.read(name)?.is_none() {
            return Err(Error::not_found(format!("volume {name}")));
        }
        if !using.is_empty() && !force {
            let ids: Vec<String> = using.iter().map(|c| c.id.clone()).collect();
            return Err(Error::precondition(format!(
                "volume {name} is in use by container(s) {}",
                ids.join(", ")
            )));
        }
        self.dir.remove(name)?;
        tracing::info!(volume = name, force, in_use = using.len(), "volume removed");
        Ok(())
    }

    /// Removes every volume no container uses: only anonymous ones unless `all`.
    pub fn prune(&self, all: bool) -> Result<Pruned, Error> {
        let _changes = self.lock();
        let users = self.users.users()?;
        let mut pruned = Pruned::default();
        for name in self.dir.names()? {
            let Some(meta) = self.dir.read(&name)? else {
                continue;
            };
            if users.contains_key(&name) || !(all || meta.anonymous) {
                continue;
            }
            let size = disk::usage(&self.dir.data(&name))?;
            self.dir.remove(&name)?;
            tracing::info!(volume = %name, bytes = size, "volume pruned");
            pruned.space_reclaimed += size;
            pruned.removed.push(name);
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests;
