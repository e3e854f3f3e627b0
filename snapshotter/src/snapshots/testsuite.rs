//! The shared snapshotter test suite: every [`Snapshotter`] — overlay, native, the daemon's
//! metadata wrapper, the gRPC client — must pass the same checks.
//!
//! [`snapshotter_suite!`](crate::snapshotter_suite) takes a function returning a fresh
//! [`Fixture`] and emits one `#[test]` per check:
//!
//! ```ignore
//! mod overlay_suite {
//!     berth_snapshotter::snapshotter_suite!(super::make_overlay);
//! }
//! ```
//!
//! The checks mount for real (they need root) and follow containerd's test suite in what
//! they cover: the prepare/commit/view lifecycle seen through mounts, parent chains, labels,
//! stat and walk, usage, removal rules, deletions and ownership changes across layers,
//! read-only views, keys that look like paths, and a 128-layer chain. Every mount is undone
//! when a check ends, even when it fails: mount guards unmount on drop, and the scratch
//! directory detaches anything still mounted below it before deleting itself.

mod fstest;
mod layers;
mod lifecycle;
mod rules;

use std::{
    any::Any,
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use berth_proto::errdefs::{Error, Kind as ErrorKind};

use super::Snapshotter;
use crate::mount::{Mount, Mounter};

pub use self::{fstest::Op, layers::*, lifecycle::*, rules::*};

/// What a suite check runs against.
pub struct Fixture {
    /// A snapshotter with no snapshots yet.
    pub snapshotter: Box<dyn Snapshotter>,
    /// Performs the mounts the snapshotter returns (for overlay: one that handles deep chains,
    /// such as [`CompactingMounter`](super::CompactingMounter)).
    pub mounter: Box<dyn Mounter>,
    /// The directory the snapshotter keeps its files in; checks prove keys never escape it.
    pub root: PathBuf,
    /// Dropped last: whatever must outlive the snapshotter (temporary directories, daemons).
    pub keep: Box<dyn Any>,
}

/// Emits one `#[test]` per suite check, each on a fresh fixture from `$make` (an expression
/// of type `fn() -> Fixture` or a closure).
#[macro_export]
macro_rules! snapshotter_suite {
    ($make:expr) => {
        $crate::snapshotter_suite!(@checks $make;
            basic, stat_active, stat_committed, parent_chain, same_key_refused,
            update_labels, commit_replaces_labels, remove_and_reuse, remove_order,
            walk_reports_all, stat_and_remove_in_walk, usage, mounts_recoverable,
            error_kinds, keys_never_escape, cleanup_keeps_live, remove_active,
            layer_file_update, deleted_files_hidden, remove_dir_in_lower_layer, chown,
            dir_permission_on_commit, move_file_from_lower_layer, view_readonly,
            root_permission, layers_128);
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::snapshots::testsuite::run($make, $crate::snapshots::testsuite::$check);
            }
        )*
    };
}

/// Runs `check` on a fresh fixture and scratch directory.
pub fn run(make: impl FnOnce() -> Fixture, check: fn(&Ctx)) {
    assert!(
        rustix::process::geteuid().is_root(),
        "the snapshotter suite mounts filesystems: run it as root"
    );
    let fixture = make();
    let scratch = Scratch::new();
    let ctx = Ctx { scratch, fixture };
    check(&ctx);
}

/// A check's world: the fixture and a scratch directory for mount points.
pub struct Ctx {
    /// Mount points and reference trees; dropped first.
    pub scratch: Scratch,
    /// The snapshotter under test and its mounter.
    pub fixture: Fixture,
}

/// The error class of a call that must fail; panics if it succeeded.
pub fn kind_of<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorKind {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind,
    }
}

/// Labels as containerd's suite sets them on everything, so a GC would keep it.
pub fn gc_root() -> HashMap<String, String> {
    HashMap::from([("containerd.io/gc.root".to_string(), "suite".to_string())])
}

impl Ctx {
    /// The snapshotter under test.
    pub fn sn(&self) -> &dyn Snapshotter {
        self.fixture.snapshotter.as_ref()
    }

    /// A new, empty directory in the scratch area.
    pub fn dir(&self, name: &str) -> PathBuf {
        let path = self.scratch.path.join(name);
        fs::create_dir_all(&path).unwrap();
        path
    }

    /// Mounts `mounts` on the scratch directory `name`, undone when the guard drops.
    pub fn mount(&self, mounts: &[Mount], name: &str) -> MountGuard<'_> {
        let target = self.dir(name);
        let mut guard = MountGuard {
            mounter: self.fixture.mounter.as_ref(),
            target,
            depth: 0,
        };
        for mount in mounts {
            if let Err(err) = guard.mounter.mount(mount, &guard.target) {
                panic!("mount {mount:?} on {}: {err}", guard.target.display());
            }
            guard.depth += 1;
        }
        guard
    }

    /// Prepares `key` on `parent`, applies `ops` through a mount, and commits it as `name`.
    pub fn layer(&self, name: &str, parent: &str, ops: &[Op]) {
        let key = format!("{name}-active");
        let mounts = self.sn().prepare(&key, parent, gc_root()).unwrap();
        {
            let mounted = self.mount(&mounts, &key);
            fstest::apply(&mounted.target, ops);
        }
        self.sn().commit(name, &key, gc_root()).unwrap();
    }

    /// Checks, through a view, that the committed snapshot `name` holds exactly what the
    /// reference directory `flat` holds.
    pub fn assert_view_equals(&self, name: &str, flat: &Path) {
        let key = format!("{name}-view");
        let mounts = self.sn().view(&key, name, gc_root()).unwrap();
        {
            let mounted = self.mount(&mounts, &key);
            fstest::assert_same_tree(&mounted.target, flat);
        }
        self.sn().remove(&key).unwrap();
    }

    /// Builds a chain of layers from `ops`, checking each committed layer against a flat
    /// directory that received the same changes. Returns the top layer's name.
    pub fn chain(&self, prefix: &str, layers: &[Vec<Op>]) -> String {
        let flat = self.dir(&format!("{prefix}-flat"));
        let mut parent = String::new();
        for (i, ops) in layers.iter().enumerate() {
            let name = format!("{prefix}-{i}");
            self.layer(&name, &parent, ops);
            fstest::apply(&flat, ops);
            self.assert_view_equals(&name, &flat);
            parent = name;
        }
        parent
    }
}

/// Mounts on one target, unmounted (innermost first) when dropped.
pub struct MountGuard<'a> {
    mounter: &'a dyn Mounter,
    /// Where the mounts are.
    pub target: PathBuf,
    depth: usize,
}

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        for _ in 0..self.depth {
            if self.mounter.unmount(&self.target, false).is_err() {
                let _ = self.mounter.unmount(&self.target, true);
            }
        }
    }
}

/// A temporary directory that detaches every mount below it, then deletes itself.
pub struct Scratch {
    /// Its path.
    pub path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "berth-suite-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = format!("{}/", self.path.display());
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(1))
            .filter(|target| target.starts_with(&prefix))
            .collect();
        targets.reverse();
        for target in targets {
            let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}
