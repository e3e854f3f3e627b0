//! Snapshots: containerd's model of layered filesystems, with an overlayfs and a native
//! (copying) snapshotter.
//!
//! # The model
//!
//! A *snapshot* is a filesystem state, named by a client-chosen string (its *key*). Every
//! snapshot has a *parent* (the empty string means "an empty directory"), and a snapshot
//! holds only its changes relative to that parent. There are three kinds:
//!
//! - **active** — made by [`Snapshotter::prepare`]; mounted read-write, it collects changes
//!   (a layer being unpacked, a container's root filesystem);
//! - **view** — made by [`Snapshotter::view`]; a read-only look at its parent that can never
//!   be committed;
//! - **committed** — made by [`Snapshotter::commit`] from an active snapshot, which disappears
//!   in the same step. Only committed snapshots can be parents, and they never change again.
//!
//! Keys of all three kinds share one namespace. Removing a snapshot is refused while another
//! snapshot names it as parent, so chains are removed from the top down.
//!
//! Unpacking an image is `prepare(key, parent)` → mount → apply the layer → unmount →
//! `commit(chain_id, key)`, once per layer; running a container is `prepare(container,
//! image_top)` and, at the end, `remove(container)`.
//!
//! # Where things live
//!
//! Metadata (kind, parent, labels, times, usage, and the numeric id of each snapshot) is kept
//! in a [`MetaStore`], one per snapshotter; the daemon backs it with its own database,
//! [`MemoryMetaStore`] serves tests. On disk, a snapshotter owns one root:
//!
//! ```text
//! <root>/snapshots/<id>/fs        the snapshot's files (overlay: the upper layer)
//! <root>/snapshots/<id>/work      overlayfs work directory (overlay, active snapshots only)
//! <root>/snapshots/new-<n>        a snapshot being created (not yet numbered)
//! <root>/snapshots/removed-<id>   a snapshot being deleted
//! ```
//!
//! Directories are named by id, never by key: keys are arbitrary client strings (`/`, `..`
//! and all), so no key ever becomes part of a path. Ids come from a counter in the store and
//! are never reused. A directory with no record pointing to it (a crash between steps leaves
//! one behind at worst) is removed by [`Snapshotter::cleanup`].
//!
//! Each mutating operation changes the metadata in one atomic [`MetaStore::update`] and
//! orders its filesystem work so that a crash at any point leaves either the old state or the
//! new one, plus at most an orphaned directory:
//!
//! - create: the directory is built under `new-<n>`, renamed to `<id>`, then recorded;
//! - commit: the record is rewritten (active key out, committed name in) in one update;
//!   the files stay where they are;
//! - remove: the record goes first, then the directory is renamed to `removed-<id>` and
//!   deleted.
//!
//! # Deep chains
//!
//! An overlay mount lists every lower layer in one option string, and mount(2) reads at most
//! one page of options. See [`deep`] for how 128-layer chains are mounted.

mod core;
pub mod deep;
mod fsutil;
mod meta;
mod native;
mod overlay;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

use std::{collections::HashMap, fmt, time::SystemTime};

use berth_proto::errdefs::Error;

pub use self::{
    deep::CompactingMounter,
    meta::{MemoryMetaStore, MetaStore, MetaTxn, Record},
    native::Native,
    overlay::Overlay,
};
use crate::mount::Mount;

/// What a snapshot is for; the numbering is containerd's (`Unknown` = 0 is not a kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A read-only look at a committed parent; can never be committed.
    View,
    /// A writable snapshot collecting changes; can be committed.
    Active,
    /// An immutable snapshot; the only kind that can be a parent.
    Committed,
}

impl Kind {
    /// containerd's wire number: View = 1, Active = 2, Committed = 3.
    pub fn as_i32(self) -> i32 {
        match self {
            Kind::View => 1,
            Kind::Active => 2,
            Kind::Committed => 3,
        }
    }

    /// The kind for a wire number; `None` for 0 (Unknown) and anything out of range.
    pub fn from_i32(value: i32) -> Option<Kind> {
        match value {
            1 => Some(Kind::View),
            2 => Some(Kind::Active),
            3 => Some(Kind::Committed),
            _ => None,
        }
    }

    /// The lowercase name containerd's filters use: `view`, `active`, `committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }

    /// The kind named by `name`, ignoring case (containerd's `ParseKind`).
    pub fn parse(name: &str) -> Option<Kind> {
        [Kind::View, Kind::Active, Kind::Committed]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Snapshotter::stat`] and [`Snapshotter::walk`] report about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Active, view or committed.
    pub kind: Kind,
    /// The snapshot's key (or name, for committed snapshots).
    pub name: String,
    /// The parent's name; empty when the snapshot starts from an empty directory.
    pub parent: String,
    /// The only mutable part of a snapshot (see [`Snapshotter::update`]).
    pub labels: HashMap<String, String>,
    /// When the snapshot was created (for committed snapshots: when it was committed).
    pub created_at: SystemTime,
    /// When the snapshot's record last changed.
    pub updated_at: SystemTime,
}

/// Disk resources a snapshot takes by itself, excluding its parents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated (blocks × 512, hard links counted once).
    pub size: i64,
    /// Inodes in use, the snapshot's top directory included.
    pub inodes: i64,
}

/// containerd's snapshotter: allocates, mounts, commits and removes layered filesystems.
///
/// # Lifecycle
///
/// 1. [`prepare`](Self::prepare)`(key, parent)` creates an **active** snapshot and returns
///    the mounts that show it: mounted on a directory, it starts with the parent's contents
///    (or empty, for parent `""`) and captures every change made through it. The parent must
///    be committed. Reusing any existing key fails with AlreadyExists.
/// 2. The caller mounts, writes (unpacks a layer, runs a container), and unmounts.
///    [`mounts`](Self::mounts)`(key)` returns the same mounts again at any time.
/// 3. Then either [`commit`](Self::commit)`(name, key)` turns the changes into a
///    **committed** snapshot called `name` (same parent; `key` is gone afterwards and its
///    labels are *not* carried over), or [`remove`](Self::remove)`(key)` throws them away.
/// 4. A committed snapshot serves as parent for further `prepare` and
///    [`view`](Self::view) calls. `view(key, parent)` is a read-only **view** snapshot: it
///    must be removed, never committed.
/// 5. [`remove`](Self::remove) deletes any snapshot that is no parent; children go first.
///
/// Removal may leave directories behind if the process dies midway; they belong to no
/// snapshot and [`cleanup`](Self::cleanup) deletes them.
///
/// # Errors
///
/// Errors carry containerd's classes, because clients branch on them: NotFound for unknown
/// keys and parents, AlreadyExists for a key or name in use, FailedPrecondition for
/// committing anything but an active snapshot, removing a parent, or asking for the mounts
/// of a committed snapshot, InvalidArgument for empty keys, bad labels, parents that are not
/// committed and immutable fields in [`update`](Self::update).
pub trait Snapshotter: Send + Sync {
    /// The record of the snapshot `key` (of any kind).
    fn stat(&self, key: &str) -> Result<Info, Error>;

    /// Changes the labels of the snapshot `info.name` and returns the new record.
    ///
    /// With no field paths, the labels are replaced by `info.labels`. Otherwise each path is
    /// `labels` (replace all) or `labels.<key>` (set that one label from `info.labels`, or
    /// delete it when absent there); any other path is InvalidArgument. Labels with empty
    /// values are dropped. Kind, parent and times cannot be changed; `updated_at` is set.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info, Error>;

    /// The disk usage of `key` alone. Committed snapshots report what was measured at commit;
    /// active ones are measured now (this walks their files); views take nothing.
    fn usage(&self, key: &str) -> Result<Usage, Error>;

    /// The mounts of an active or view snapshot, as [`prepare`](Self::prepare) or
    /// [`view`](Self::view) returned them. Committed snapshots have none: FailedPrecondition.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, Error>;

    /// Creates the active snapshot `key` on top of the committed `parent` (`""`: none) and
    /// returns its mounts (read-write).
    fn prepare(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error>;

    /// Creates the view snapshot `key` of the committed `parent` and returns its mounts
    /// (read-only).
    fn view(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error>;

    /// Commits the active snapshot `key` as `name` with `labels`; `key` ceases to exist.
    fn commit(&self, name: &str, key: &str, labels: HashMap<String, String>) -> Result<(), Error>;

    /// Removes the snapshot `key` and its files. FailedPrecondition while it has children.
    fn remove(&self, key: &str) -> Result<(), Error>;

    /// Calls `f` with the record of every snapshot, in no particular order. `f` may call
    /// back into the snapshotter. The first error stops the walk and is returned.
    fn walk(&self, f: &mut dyn FnMut(&Info) -> Result<(), Error>) -> Result<(), Error>;

    /// Deletes directories under the root that no snapshot record points to.
    fn cleanup(&self) -> Result<(), Error>;
}
