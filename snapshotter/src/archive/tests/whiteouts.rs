//! Whiteouts across three layers: Remove mode into one directory, Overlay mode into one
//! directory per layer, checked file by file and through a real overlay mount.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::{Layer, Node, apply, overlay_mode, remove_mode, require_root, snapshot};

/// Layer 1: the base.
fn layer1() -> Vec<u8> {
    Layer::new()
        .dir("etc/")
        .file("etc/passwd", "root")
        .file("etc/hosts", "hosts")
        .dir("app/")
        .dir("app/config/")
        .file("app/config/a", "a")
        .file("app/config/b", "b")
        .dir("app/config/sub/")
        .file("app/config/sub/c", "c")
        .dir("lib/")
        .file("lib/libfoo.so.1", "foo1")
        .symlink("lib/libfoo.so", "libfoo.so.1")
        .dir("tmp/")
        .file("tmp/old", "old")
        .finish()
}

/// Layer 2: deletes a file and a directory, makes a directory opaque *after* adding to it,
/// re-points a symlink.
fn layer2() -> Vec<u8> {
    Layer::new()
        .dir("etc/")
        .file("etc/.wh.hosts", "")
        .dir("app/")
        .dir("app/config/")
        .file("app/config/new", "new")
        .dir("app/config/sub/")
        .file("app/config/sub/d", "d")
        .file("app/config/.wh..wh..opq", "")
        .dir("lib/")
        .file("lib/libfoo.so.2", "foo2")
        .symlink("lib/libfoo.so", "libfoo.so.2")
        .file(".wh.tmp", "")
        .finish()
}

/// Layer 3: re-adds what layer 2 deleted, deletes a file layer 2 added, and whites out a
/// file it adds itself (which must stay).
fn layer3() -> Vec<u8> {
    Layer::new()
        .dir("etc/")
        .file("etc/hosts", "new hosts")
        .file("etc/.wh.hosts", "")
        .dir("lib/")
        .file("lib/.wh.libfoo.so.1", "")
        .dir("tmp/")
        .file("tmp/new", "n")
        .file("app/config/sub/.wh.d", "")
        .finish()
}

/// The merged tree after all three layers: path → (kind, content or link target).
fn expected() -> BTreeMap<PathBuf, (&'static str, Option<&'static str>)> {
    [
        ("app", "dir", None),
        ("app/config", "dir", None),
        ("app/config/new", "file", Some("new")),
        ("app/config/sub", "dir", None),
        ("etc", "dir", None),
        ("etc/hosts", "file", Some("new hosts")),
        ("etc/passwd", "file", Some("root")),
        ("lib", "dir", None),
        ("lib/libfoo.so", "symlink", Some("libfoo.so.2")),
        ("lib/libfoo.so.2", "file", Some("foo2")),
        ("tmp", "dir", None),
        ("tmp/new", "file", Some("n")),
    ]
    .into_iter()
    .map(|(path, kind, data)| (PathBuf::from(path), (kind, data)))
    .collect()
}

/// A tree reduced to kind and content / link target.
fn contents(root: &Path) -> BTreeMap<PathBuf, (&'static str, Option<String>)> {
    snapshot(root, false)
        .into_iter()
        .map(|(path, node): (PathBuf, Node)| {
            let data = match node.kind {
                "file" => Some(String::from_utf8(fs::read(root.join(&path)).unwrap()).unwrap()),
                "symlink" => node.link.map(|l| l.to_string_lossy().into_owned()),
                _ => None,
            };
            (path, (node.kind, data))
        })
        .collect()
}

fn assert_tree(root: &Path) {
    let want: BTreeMap<_, _> = expected()
        .into_iter()
        .map(|(p, (k, d))| (p, (k, d.map(String::from))))
        .collect();
    assert_eq!(contents(root), want);
}

fn is_whiteout(path: &Path) -> bool {
    let meta = fs::symlink_metadata(path).unwrap();
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr::get(path, "trusted.overlay.opaque")
        .unwrap()
        .as_deref()
        == Some(b"y")
}

#[test]
fn remove_mode_applies_three_layers_into_one_tree() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    for layer in [layer1(), layer2(), layer3()] {
        apply(&layer, tmp.path(), &remove_mode()).unwrap();
    }
    assert_tree(tmp.path());
}

#[test]
fn overlay_mode_writes_whiteout_devices_and_opaque_xattrs() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (1..=3).map(|i| tmp.path().join(format!("l{i}"))).collect();
    for (dir, layer) in dirs.iter().zip([layer1(), layer2(), layer3()]) {
        fs::create_dir(dir).unwrap();
        apply(&layer, dir, &overlay_mode()).unwrap();
    }
    let (l1, l2, l3) = (&dirs[0], &dirs[1], &dirs[2]);
    assert!(!is_opaque(&l1.join("app/config")));
    assert!(is_whiteout(&l2.join("etc/hosts")));
    assert!(is_whiteout(&l2.join("tmp")));
    assert!(is_opaque(&l2.join("app/config")));
    assert!(!is_opaque(&l2.join("app/config/sub")));
    assert_eq!(fs::read(l2.join("app/config/new")).unwrap(), b"new");
    assert_eq!(fs::read(l2.join("app/config/sub/d")).unwrap(), b"d");
    // A whiteout of something the same layer adds does not hide it.
    assert_eq!(fs::read(l3.join("etc/hosts")).unwrap(), b"new hosts");
    assert!(is_whiteout(&l3.join("lib/libfoo.so.1")));
    assert!(is_whiteout(&l3.join("app/config/sub/d")));
    // No `.wh.` files are left in any layer.
    for dir in &dirs {
        let names = snapshot(dir, false);
        assert!(
            !names.keys().any(|p| p.to_string_lossy().contains(".wh.")),
            "{names:?}"
        );
    }

    // The kernel's merged view equals the Remove-mode result.
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let options = format!(
        "lowerdir={}:{}:{}",
        l3.display(),
        l2.display(),
        l1.display()
    );
    if let Err(e) = mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    ) {
        eprintln!("overlay mount unavailable ({e}); merged view not checked");
        return;
    }
    let result = std::panic::catch_unwind(|| assert_tree(&merged));
    umount2(&merged, MntFlags::MNT_DETACH).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
