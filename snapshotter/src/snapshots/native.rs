//! The native snapshotter: every active snapshot is a full copy of its parent, so it works on
//! any filesystem and needs nothing from the kernel but bind mounts.
//!
//! `prepare` copies the parent's files (owners, modes, times, extended attributes, hard
//! links, symlinks and device nodes) into the new snapshot's `fs` directory; committing
//! keeps that copy as it is. Mounts are recursive binds: an active snapshot's own directory
//! read-write; a view's parent directory read-only (views copy nothing); a view without
//! parent its own empty directory, read-only.

use std::{collections::HashMap, path::Path, sync::Arc};

use berth_proto::errdefs::Error;

use super::{
    Info, Kind, MetaStore, Snapshotter, Usage,
    core::{Chain, Core},
    fsutil,
};
use crate::mount::Mount;

/// The copying snapshotter.
pub struct Native {
    core: Core,
}

impl Native {
    /// Opens the snapshotter rooted at `root` (created if missing), keeping records in `store`.
    /// The root follows the overlay snapshotter's rule: absolute, without `,` `:` `\`.
    pub fn new(root: &Path, store: Arc<dyn MetaStore>) -> Result<Self, Error> {
        Ok(Native {
            core: Core::new(root, store)?,
        })
    }

    fn mounts_of(&self, chain: &Chain) -> Vec<Mount> {
        let (source, mode) = match (chain.kind, chain.parents.first()) {
            (Kind::View, Some(&parent)) => (self.core.fs_path(parent), "ro"),
            (Kind::View, None) => (self.core.fs_path(chain.id), "ro"),
            _ => (self.core.fs_path(chain.id), "rw"),
        };
        vec![Mount {
            kind: "bind".into(),
            source: source.display().to_string(),
            options: vec!["rbind".into(), mode.into()],
        }]
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        let fill = |dir: &Path, parents: &[u64]| {
            let fs = dir.join("fs");
            fsutil::mkdir(&fs, 0o755)?;
            match parents.first() {
                Some(&nearest) if kind == Kind::Active => {
                    fsutil::copy_tree(&self.core.fs_path(nearest), &fs)
                        .map_err(|e| e.context("copying parent snapshot"))
                }
                _ => Ok(()),
            }
        };
        let chain = self.core.create(kind, key, parent, labels, &fill)?;
        Ok(self.mounts_of(&chain))
    }
}

impl Snapshotter for Native {
    fn stat(&self, key: &str) -> Result<Info, Error> {
        self.core.stat(key)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info, Error> {
        self.core.update_info(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage, Error> {
        self.core.usage(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, Error> {
        Ok(self.mounts_of(&self.core.chain(key)?))
    }

    fn prepare(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        self.create(Kind::Active, key, parent, labels)
    }

    fn view(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        self.create(Kind::View, key, parent, labels)
    }

    fn commit(&self, name: &str, key: &str, labels: HashMap<String, String>) -> Result<(), Error> {
        self.core.commit(name, key, labels)
    }

    fn remove(&self, key: &str) -> Result<(), Error> {
        self.core.remove(key)
    }

    fn walk(&self, f: &mut dyn FnMut(&Info) -> Result<(), Error>) -> Result<(), Error> {
        self.core.walk(f)
    }

    fn cleanup(&self) -> Result<(), Error> {
        self.core.cleanup()
    }
}
