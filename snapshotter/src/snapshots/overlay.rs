//! The overlayfs snapshotter: each snapshot stores only its own changes, and a live snapshot
//! is the overlay of its upper directory on its ancestors' directories.
//!
//! Mounts, by kind and depth (`S` = `<root>/snapshots`):
//!
//! | snapshot | mount |
//! |---|---|
//! | active, no parent | `bind S/<id>/fs`, `rw,rbind` |
//! | active, parents | `overlay`: `index=off` (when the kernel has the knob), `workdir=S/<id>/work`, `upperdir=S/<id>/fs`, `lowerdir=S/<p1>/fs:S/<p2>/fs:…` (nearest parent first) |
//! | view, no parent | `bind S/<id>/fs`, `ro,rbind` (an empty directory) |
//! | view, one parent | `bind S/<p1>/fs`, `ro,rbind` |
//! | view, more parents | `overlay`: `lowerdir=…` only, which overlayfs mounts read-only |
//!
//! `index=off` matters because the kernel default may be `on`: with the inodes index on,
//! overlayfs stamps an upper directory with the identity of the layers it was first mounted
//! over and refuses later mounts that combine it differently, while a snapshot's upper
//! directory becomes a lower layer of other snapshots all the time (containerd sets it too).
//! `userxattr`, needed only inside user namespaces, is not used: Berth runs as real root.
//!
//! The paths are absolute, as containerd's are, so any client can mount them. For deep
//! chains the `lowerdir` list outgrows what mount(2) accepts; mount such lists with
//! [`CompactingMounter`](super::CompactingMounter) (see [`deep`](super::deep)).

use std::{collections::HashMap, fs, os::unix::fs::MetadataExt, path::Path, sync::Arc};

use berth_proto::errdefs::{Error, io_error};

use super::{
    Info, Kind, MetaStore, Snapshotter, Usage,
    core::{Chain, Core},
    fsutil,
};
use crate::mount::Mount;

/// Where overlayfs shows whether it knows the `index` option.
const INDEX_PARAMETER: &str = "/sys/module/overlay/parameters/index";

/// The overlayfs snapshotter.
pub struct Overlay {
    core: Core,
    index_off: bool,
}

impl Overlay {
    /// Opens the snapshotter rooted at `root` (created if missing), keeping records in `store`.
    /// The root must be absolute and free of `,` `:` `\`, which would break mount options.
    pub fn new(root: &Path, store: Arc<dyn MetaStore>) -> Result<Self, Error> {
        Ok(Overlay {
            core: Core::new(root, store)?,
            index_off: Path::new(INDEX_PARAMETER).exists(),
        })
    }

    fn mounts_of(&self, chain: &Chain) -> Vec<Mount> {
        overlay_mounts(&self.core.snapshots_dir(), chain, self.index_off)
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        let fill = |dir: &Path, parents: &[u64]| {
            let upper = dir.join("fs");
            fsutil::mkdir(&upper, 0o755)?;
            if kind == Kind::Active {
                fsutil::mkdir(&dir.join("work"), 0o711)?;
            }
            // The merged root takes the upper directory's owner: inherit the parent's.
            if let Some(&nearest) = parents.first() {
                let below = self.core.fs_path(nearest);
                let meta = fs::metadata(&below)
                    .map_err(|e| io_error(format!("stat parent {}", below.display()), e))?;
                std::os::unix::fs::lchown(&upper, Some(meta.uid()), Some(meta.gid()))
                    .map_err(|e| io_error(format!("chown {}", upper.display()), e))?;
            }
            Ok(())
        };
        let chain = self.core.create(kind, key, parent, labels, &fill)?;
        Ok(self.mounts_of(&chain))
    }
}

/// The mounts of `chain` under `snapshots` (`<root>/snapshots`); see the module table.
pub(crate) fn overlay_mounts(snapshots: &Path, chain: &Chain, index_off: bool) -> Vec<Mount> {
    let fs_path = |id: u64| format!("{}/{id}/fs", snapshots.display());
    let bind = |source: String, mode: &str| Mount {
        kind: "bind".into(),
        source,
        options: vec![mode.into(), "rbind".into()],
    };
    match (chain.kind, chain.parents.as_slice()) {
        (Kind::Active, []) => return vec![bind(fs_path(chain.id), "rw")],
        (_, []) => return vec![bind(fs_path(chain.id), "ro")],
        (Kind::View, [only]) => return vec![bind(fs_path(*only), "ro")],
        _ => {}
    }
    let mut options = Vec::new();
    if index_off {
        options.push("index=off".to_string());
    }
    if chain.kind == Kind::Active {
        options.push(format!("workdir={}/{}/work", snapshots.display(), chain.id));
        options.push(format!("upperdir={}", fs_path(chain.id)));
    }
    let lower: Vec<String> = chain.parents.iter().map(|&id| fs_path(id)).collect();
    options.push(format!("lowerdir={}", lower.join(":")));
    vec![Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options,
    }]
}

impl Snapshotter for Overlay {
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
