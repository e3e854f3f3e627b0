//! Unit tests: mount shapes and option lengths without mounting, crash leftovers, and the
//! shared suite run against both snapshotters (those need root).

use std::{collections::HashMap, fs, path::Path, sync::Arc};

use berth_proto::errdefs::Kind as ErrorKind;

use super::{
    CompactingMounter, Kind, MemoryMetaStore, MetaStore, Native, Overlay, Snapshotter,
    core::Chain,
    deep::{COMPACT_THRESHOLD, MOUNT_DATA_MAX, compact_lowerdirs, mount_data},
    overlay::overlay_mounts,
    testsuite::Fixture,
};
use crate::mount::{Call, Mount, Mounter, RecordingMounter, SystemMounter};

const REALISTIC_ROOT: &str = "/var/lib/berth/io.containerd.snapshotter.v1.overlayfs";

fn chain(kind: Kind, id: u64, parents: &[u64]) -> Chain {
    Chain {
        id,
        kind,
        parents: parents.to_vec(),
    }
}

#[test]
fn overlay_mount_shapes() {
    let s = Path::new("/r/snapshots");
    let opts = |m: &[Mount]| (m[0].kind.clone(), m[0].source.clone(), m[0].options.clone());
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        opts(&overlay_mounts(s, &chain(Kind::Active, 3, &[]), true)),
        (
            "bind".into(),
            "/r/snapshots/3/fs".into(),
            strs(&["rw", "rbind"])
        )
    );
    assert_eq!(
        opts(&overlay_mounts(s, &chain(Kind::View, 3, &[]), true)),
        (
            "bind".into(),
            "/r/snapshots/3/fs".into(),
            strs(&["ro", "rbind"])
        )
    );
    assert_eq!(
        opts(&overlay_mounts(s, &chain(Kind::View, 3, &[2]), false)),
        (
            "bind".into(),
            "/r/snapshots/2/fs".into(),
            strs(&["ro", "rbind"])
        )
    );
    assert_eq!(
        opts(&overlay_mounts(s, &chain(Kind::Active, 3, &[2, 1]), true)).2,
        strs(&[
            "index=off",
            "workdir=/r/snapshots/3/work",
            "upperdir=/r/snapshots/3/fs",
            "lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs",
        ])
    );
    assert_eq!(
        opts(&overlay_mounts(s, &chain(Kind::View, 3, &[2, 1]), false)).2,
        strs(&["lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs"])
    );
}

/// The budget for 128 layers under a realistic root, with small ids and with large ones.
#[test]
fn deep_chain_options_fit_after_compaction() {
    let snapshots = Path::new(REALISTIC_ROOT).join("snapshots");
    for first_id in [1u64, 1_000_000] {
        let parents: Vec<u64> = (first_id..first_id + 128).rev().collect();
        let top = chain(Kind::Active, first_id + 128, &parents);
        let mounts = overlay_mounts(&snapshots, &top, true);
        let raw = mount_data(&mounts[0]).len();
        let (dir, compact) = compact_lowerdirs(&mounts[0]).unwrap();
        let short = mount_data(&compact).len();
        eprintln!("128 layers, ids from {first_id}: {raw} bytes absolute, {short} compacted");
        assert!(raw > MOUNT_DATA_MAX, "absolute paths should not fit: {raw}");
        assert!(short < COMPACT_THRESHOLD, "{short}");
        assert_eq!(dir, snapshots);
        let lower = compact
            .options
            .iter()
            .find(|o| o.starts_with("lowerdir="))
            .unwrap();
        assert!(
            lower.starts_with(&format!("lowerdir={}/fs:", first_id + 127)),
            "{lower}"
        );
        // Compacted, a layer costs its id's digits plus 4 bytes: 300 layers still fit.
        let parents: Vec<u64> = (first_id..first_id + 300).collect();
        let mounts = overlay_mounts(&snapshots, &chain(Kind::View, 0, &parents), true);
        let (_, compact) = compact_lowerdirs(&mounts[0]).unwrap();
        assert!(mount_data(&compact).len() <= MOUNT_DATA_MAX);
    }
}

#[test]
fn compaction_needs_a_shared_directory() {
    let overlay = |lower: &str| Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![format!("lowerdir={lower}")],
    };
    assert!(compact_lowerdirs(&overlay("/a/1:/b/2")).is_none());
    assert!(compact_lowerdirs(&overlay("/a/1")).is_none());
    assert!(compact_lowerdirs(&overlay("a/1:a/2")).is_none());
    let (dir, m) = compact_lowerdirs(&overlay("/x/s/1/fs:/x/s/12/fs")).unwrap();
    assert_eq!(
        (dir.to_str(), m.options[0].as_str()),
        (Some("/x/s"), "lowerdir=1/fs:12/fs")
    );
    // A layer that is the shared directory's sibling, not a child, stays correct.
    let (dir, m) = compact_lowerdirs(&overlay("/x/s/1:/x/s/1/2")).unwrap();
    assert_eq!(
        (dir.to_str(), m.options[0].as_str()),
        (Some("/x/s"), "lowerdir=1:1/2")
    );
}

/// With the real directories of a 128-layer chain (root padded to a realistic length), the
/// compacting mounter hands the inner mounter relative layers, from the right directory.
#[test]
fn compacting_mounter_shortens_deep_chains() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(&REALISTIC_ROOT[1..]);
    let sn = Overlay::new(&root, Arc::new(MemoryMetaStore::new())).unwrap();
    let mut parent = String::new();
    for i in 0..128 {
        sn.prepare(&format!("a{i}"), &parent, HashMap::new())
            .unwrap();
        parent = format!("c{i}");
        sn.commit(&parent, &format!("a{i}"), HashMap::new())
            .unwrap();
    }
    let mounts = sn.prepare("top", &parent, HashMap::new()).unwrap();
    assert!(mount_data(&mounts[0]).len() > MOUNT_DATA_MAX);
    let mounter = CompactingMounter::new(RecordingMounter::default());
    mounter
        .mount(&mounts[0], Path::new("relative-target"))
        .unwrap();
    let calls = mounter.inner().calls();
    let [Call::Mount(done, target)] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert!(target.is_absolute());
    let data = mount_data(done);
    eprintln!(
        "compacted data for 128 layers under {}: {} bytes",
        root.display(),
        data.len()
    );
    assert!(data.len() < COMPACT_THRESHOLD);
    assert!(data.contains("lowerdir=128/fs:127/fs:"), "{data}");
    assert!(data.contains(&format!("upperdir={}/snapshots/129/fs", root.display())));
}

#[test]
fn too_long_options_are_refused_not_cut() {
    let mounter = CompactingMounter::new(RecordingMounter::default());
    let long = Mount {
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        options: vec![format!("x={}", "y".repeat(5000))],
    };
    let err = mounter.mount(&long, Path::new("/t")).unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
    assert!(mounter.inner().calls().is_empty());
}

#[test]
fn cleanup_removes_crash_leftovers_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetaStore> = Arc::new(MemoryMetaStore::new());
    let sn = Native::new(tmp.path(), store.clone()).unwrap();
    sn.prepare("a", "", HashMap::new()).unwrap();
    sn.prepare("b", "", HashMap::new()).unwrap();
    sn.commit("c", "b", HashMap::new()).unwrap();
    let snapshots = tmp.path().join("snapshots");
    for leftover in ["new-123-0", "removed-7", "7", "0001"] {
        fs::create_dir_all(snapshots.join(leftover).join("fs")).unwrap();
    }
    fs::write(snapshots.join("stray"), "x").unwrap();
    sn.cleanup().unwrap();
    let mut left: Vec<String> = fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["1", "2"]);
    // A reopened snapshotter on the same store sees the same snapshots.
    let again = Native::new(tmp.path(), store).unwrap();
    assert_eq!(again.stat("c").unwrap().kind, Kind::Committed);
    assert_eq!(again.stat("b").unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn bad_roots_are_refused() {
    let store = || -> Arc<dyn MetaStore> { Arc::new(MemoryMetaStore::new()) };
    for root in ["relative", "/tmp/a,b", "/tmp/a:b"] {
        let err = Overlay::new(Path::new(root), store()).err().unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{root}");
    }
}

#[test]
fn kinds_use_containerd_numbers() {
    for kind in [Kind::View, Kind::Active, Kind::Committed] {
        assert_eq!(Kind::from_i32(kind.as_i32()), Some(kind));
        assert_eq!(Kind::parse(&kind.to_string().to_uppercase()), Some(kind));
    }
    assert_eq!((Kind::View.as_i32(), Kind::Committed.as_i32()), (1, 3));
    assert_eq!(Kind::from_i32(0), None);
}

fn fixture(make: fn(&Path) -> Box<dyn Snapshotter>) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    Fixture {
        snapshotter: make(&root),
        mounter: Box::new(CompactingMounter::new(SystemMounter)),
        root,
        keep: Box::new(tmp),
    }
}

fn overlay(root: &Path) -> Box<dyn Snapshotter> {
    Box::new(Overlay::new(root, Arc::new(MemoryMetaStore::new())).unwrap())
}

fn native(root: &Path) -> Box<dyn Snapshotter> {
    Box::new(Native::new(root, Arc::new(MemoryMetaStore::new())).unwrap())
}

mod overlay_suite {
    crate::snapshotter_suite!(|| super::fixture(super::overlay));
}

mod native_suite {
    crate::snapshotter_suite!(|| super::fixture(super::native));
}
