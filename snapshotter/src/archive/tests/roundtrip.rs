//! write_diff → apply_layer round trips, compression, diffs against a lower tree, and
//! overlay upper diffs.

use std::{
    ffi::OsStr,
    fs,
    os::unix::{
        ffi::OsStrExt,
        fs::{PermissionsExt, chown, lchown, symlink},
    },
    path::Path,
};

use berth_proto::{digest::Digest, errdefs::Kind};
use filetime::FileTime;
use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};

use super::{
    apply, assert_same_tree, gzip, overlay_mode, remove_mode, require_root, snapshot, zstd,
};
use crate::archive::{write_diff, write_overlay_diff};

fn write(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mknod(path: &Path, file_type: FileType, mode: u32, major: u32, minor: u32) {
    mknodat(
        CWD,
        path,
        file_type,
        Mode::from_raw_mode(mode),
        makedev(major, minor),
    )
    .unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Sets whole-second mtimes on everything under `root`, children before parents, derived
/// from each path so equal trees get equal times; a few names get odd ones (0, 1, one
/// needing a PAX record).
fn set_mtimes(root: &Path) {
    let entries = walkdir::WalkDir::new(root)
        .min_depth(1)
        .contents_first(true);
    for entry in entries {
        let path = entry.unwrap().into_path();
        let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes();
        let secs = match path.file_name().unwrap_or_default().as_bytes() {
            b"epoch" => 0,
            b"one" => 1,
            b"future" => 8_589_934_597, // past the 11 octal digits of a ustar header
            _ => {
                let hash = rel.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                1_500_000_000 + (hash % 100_000_000) as i64
            }
        };
        let t = FileTime::from_unix_time(secs, 0);
        filetime::set_symlink_file_times(&path, t, t).unwrap();
    }
}

/// A tree with every kind of entry and metadata a layer carries.
fn build_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    for dir in [
        "etc",
        "bin",
        "home/user",
        "dev",
        "run",
        "tmp",
        "deep/a/b/c",
        "long",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd-hard")).unwrap();
    xattr::set(root.join("etc/passwd"), "user.foo", b"bar").unwrap();
    xattr::set(root.join("home"), "user.dir", b"\x00binary\xff").unwrap();
    write(&root.join("bin/tool"), b"#!/bin/sh\necho setuid\n", 0o4755);
    write(&root.join("bin/sgid"), b"sgid", 0o2711);
    write(&root.join("home/user/data"), b"private", 0o600);
    chown(root.join("home/user/data"), Some(1234), Some(1234)).unwrap();
    chown(root.join("home/user"), Some(1234), Some(100)).unwrap();
    fs::set_permissions(root.join("home/user"), fs::Permissions::from_mode(0o2750)).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    write(&root.join("home/bigid"), b"big ids", 0o640);
    chown(root.join("home/bigid"), Some(3_000_000), Some(3_000_001)).unwrap();
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    write(&root.join("bin/big"), &big, 0o755);
    write(&root.join("empty"), b"", 0o444);
    write(&root.join("epoch"), b"0", 0o644);
    write(&root.join("one"), b"1", 0o644);
    write(&root.join("future"), b"far", 0o644);
    write(&root.join("deep/a/b/c/leaf"), b"leaf", 0o644);
    symlink("etc/passwd", root.join("link")).unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    lchown(root.join("link"), Some(1234), Some(1234)).unwrap();
    xattr::set(root.join("link"), "trusted.berth", b"on-a-symlink").unwrap();
    mknod(&root.join("run/fifo"), FileType::Fifo, 0o620, 0, 0);
    mknod(
        &root.join("dev/null2"),
        FileType::CharacterDevice,
        0o666,
        1,
        3,
    );
    mknod(&root.join("dev/loop9"), FileType::BlockDevice, 0o660, 7, 9);
    let long_dir = root.join("long").join("d".repeat(120));
    fs::create_dir(&long_dir).unwrap();
    write(
        &long_dir.join(format!("file-{}", "f".repeat(150))),
        b"long",
        0o644,
    );
    symlink("t".repeat(150), root.join("long/target")).unwrap();
    write(
        &root.join(OsStr::from_bytes(b"caf\xe9")),
        b"latin-1 name",
        0o644,
    );
    set_mtimes(root);
}

/// Paths of a tar's entries, in order.
fn entry_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().unwrap();
    entries
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn round_trip_preserves_every_kind_of_entry() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, dst2) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("dst2"),
    );
    build_tree(&src);
    let mut tar = Vec::new();
    let written = write_diff(None, &src, &mut tar).unwrap();
    assert_eq!(written.size, tar.len() as u64);
    assert_eq!(written.diff_id, Digest::sha256_of(&tar));

    fs::create_dir(&dst).unwrap();
    let applied = apply(&tar, &dst, &remove_mode()).unwrap();
    assert_eq!(applied, written);
    assert_same_tree(&src, &dst);
    fs::create_dir(&dst2).unwrap();
    apply(&tar, &dst2, &overlay_mode()).unwrap();
    assert_same_tree(&src, &dst2);

    // Deterministic, relative, directories with a trailing slash, parents first, sorted.
    let mut again = Vec::new();
    write_diff(None, &src, &mut again).unwrap();
    assert_eq!(tar, again);
    let names = entry_names(&tar);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('/') && !n.starts_with("./"))
    );
    assert!(names.contains(&"etc/".to_string()) && names.contains(&"etc/passwd".to_string()));
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("deep/"))
            .collect::<Vec<_>>(),
        [
            "deep/",
            "deep/a/",
            "deep/a/b/",
            "deep/a/b/c/",
            "deep/a/b/c/leaf"
        ]
    );
    let top: Vec<_> = names
        .iter()
        .filter(|n| !n.trim_end_matches('/').contains('/'))
        .collect();
    let mut sorted = top.clone();
    sorted.sort_by_key(|n| n.trim_end_matches('/').as_bytes().to_vec());
    assert_eq!(top, sorted);
    // The second name of a hard-linked file is a tar hard link.
    let mut archive = tar::Archive::new(tar.as_slice());
    let hard = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().as_ref() == b"etc/passwd-hard")
        .unwrap();
    assert_eq!(hard.header().entry_type(), tar::EntryType::Link);
    assert_eq!(hard.link_name_bytes().unwrap().as_ref(), b"etc/passwd");
}

#[test]
fn compressed_layers_have_the_plain_diff_id() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_tree(&src);
    let mut tar = Vec::new();
    let written = write_diff(None, &src, &mut tar).unwrap();
    for (name, layer) in [
        ("plain", tar.clone()),
        ("gzip", gzip(&tar)),
        ("zstd", zstd(&tar)),
    ] {
        let dst = tmp.path().join(name);
        fs::create_dir(&dst).unwrap();
        let applied = apply(&layer, &dst, &remove_mode()).unwrap();
        assert_eq!(applied, written, "{name}");
        assert_same_tree(&src, &dst);
    }
    // Concatenated gzip members are one stream, as with `cat a.gz b.gz`.
    let (head, tail) = tar.split_at(4096);
    let mut multi = gzip(head);
    multi.extend(gzip(tail));
    let dst = tmp.path().join("multi");
    fs::create_dir(&dst).unwrap();
    assert_eq!(apply(&multi, &dst, &remove_mode()).unwrap(), written);
}

#[test]
fn diff_against_a_lower_tree_applies_back_to_the_upper() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, dst) = (
        tmp.path().join("lower"),
        tmp.path().join("upper"),
        tmp.path().join("dst"),
    );
    build_tree(&lower);
    build_tree(&upper);
    // Same size, same mtime, other bytes: only a content comparison notices.
    write(
        &upper.join("etc/passwd"),
        b"ROOT:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    fs::set_permissions(upper.join("bin/sgid"), fs::Permissions::from_mode(0o755)).unwrap();
    chown(upper.join("one"), Some(7), Some(7)).unwrap();
    fs::remove_file(upper.join("epoch")).unwrap();
    fs::remove_dir_all(upper.join("long")).unwrap();
    fs::remove_file(upper.join("empty")).unwrap();
    fs::create_dir(upper.join("empty")).unwrap();
    fs::remove_dir_all(upper.join("run")).unwrap();
    write(&upper.join("run"), b"was a dir", 0o644);
    fs::remove_file(upper.join("dev/null2")).unwrap();
    fs::remove_file(upper.join("dev/loop9")).unwrap();
    write(&upper.join("dev/fresh"), b"new", 0o644);
    write(&upper.join("deep/a/b/c/new"), b"new leaf", 0o644);
    fs::hard_link(upper.join("deep/a/b/c/new"), upper.join("deep/new-link")).unwrap();
    fs::remove_file(upper.join("link")).unwrap();
    symlink("etc/passwd-hard", upper.join("link")).unwrap();
    set_mtimes(&upper);
    set_mtimes(&lower);

    let mut tar = Vec::new();
    write_diff(Some(&lower), &upper, &mut tar).unwrap();
    // Only what changed, each after its parents; a directory that lost all its old entries
    // is opaque; etc/passwd-hard shares the rewritten inode, so it comes as a hard link.
    assert_eq!(
        entry_names(&tar),
        [
            "bin/",
            "bin/sgid",
            "deep/",
            "deep/a/",
            "deep/a/b/",
            "deep/a/b/c/",
            "deep/a/b/c/new",
            "deep/new-link",
            "dev/",
            "dev/.wh..wh..opq",
            "dev/fresh",
            "empty/",
            ".wh.epoch",
            "etc/",
            "etc/passwd",
            "etc/passwd-hard",
            "link",
            ".wh.long",
            "one",
            "run",
        ]
    );

    build_tree(&dst);
    set_mtimes(&dst);
    apply(&tar, &dst, &remove_mode()).unwrap();
    assert_same_tree(&upper, &dst);

    // No changes, no entries: just the end-of-archive blocks.
    let mut empty = Vec::new();
    write_diff(Some(&upper), &dst, &mut empty).unwrap();
    assert_eq!(empty, vec![0u8; 1024]);
}

#[test]
fn overlay_upper_becomes_whiteouts_and_opaque_markers() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    for dir in ["etc", "opq/sub", "plain"] {
        fs::create_dir_all(upper.join(dir)).unwrap();
    }
    write(&upper.join("etc/passwd"), b"changed", 0o644);
    mknod(
        &upper.join("etc/shadow"),
        FileType::CharacterDevice,
        0,
        0,
        0,
    );
    mknod(&upper.join("gone"), FileType::CharacterDevice, 0, 0, 0);
    mknod(
        &upper.join("realdev"),
        FileType::CharacterDevice,
        0o600,
        1,
        5,
    );
    write(&upper.join("opq/new"), b"new", 0o644);
    xattr::set(upper.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(upper.join("plain"), "trusted.overlay.origin", b"\x00\xfb").unwrap();
    xattr::set(upper.join("plain"), "user.kept", b"yes").unwrap();
    symlink("etc/passwd", upper.join("link")).unwrap();
    set_mtimes(&upper);

    let mut tar = Vec::new();
    write_overlay_diff(&upper, &mut tar).unwrap();
    assert_eq!(
        entry_names(&tar),
        [
            "etc/",
            "etc/passwd",
            "etc/.wh.shadow",
            ".wh.gone",
            "link",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new",
            "opq/sub/",
            "plain/",
            "realdev",
        ]
    );
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path_bytes().as_ref() == b"plain/" {
            let keys: Vec<String> = entry
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().key().unwrap().to_string())
                .collect();
            assert_eq!(keys, ["SCHILY.xattr.user.kept"]);
        }
    }

    // Applied in overlay mode to an empty dir, the layer rebuilds the upper dir, minus the
    // overlay-private xattr.
    xattr::remove(upper.join("plain"), "trusted.overlay.origin").unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply(&tar, &dst, &overlay_mode()).unwrap();
    // Whiteouts carry no times.
    let without_whiteout_times = |mut tree: std::collections::BTreeMap<_, super::Node>| {
        for node in tree.values_mut() {
            if node.kind == "char" && node.rdev == 0 {
                node.mtime = None;
            }
        }
        tree
    };
    let want = without_whiteout_times(snapshot(&upper, false));
    assert_eq!(want, without_whiteout_times(snapshot(&dst, false)));

    // Renamed directories (redirect_dir) cannot be expressed as a layer.
    xattr::set(upper.join("opq/sub"), "trusted.overlay.redirect", b"/old").unwrap();
    let err = write_overlay_diff(&upper, &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition, "{err}");
}
