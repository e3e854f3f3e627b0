//! Suite checks on what mounted layers show: changes, deletions (overlay whiteouts), owners
//! and modes across layers, read-only views, and a 128-layer chain.
//!
//! Several follow bugs that older layering schemes had (moby issues 21555, 25244, 24913,
//! 27298), which containerd's suite keeps as regression checks.

use std::fs;

use super::{Ctx, Op, fstest, gc_root};

/// A file rewritten in an upper layer shows the new contents and mode (moby#21555).
pub fn layer_file_update(ctx: &Ctx) {
    for round in 0..2 {
        ctx.chain(
            &format!("update{round}"),
            &[
                vec![
                    Op::dir("etc", 0o700),
                    Op::file("etc/hosts", "mydomain 10.0.0.1", 0o644),
                    Op::file("etc/profile", "PATH=/usr/bin", 0o644),
                ],
                vec![
                    Op::file("etc/hosts", "mydomain 10.0.0.2", 0o644),
                    Op::file("etc/profile", "PATH=/usr/bin", 0o666),
                    Op::dir("root", 0o700),
                    Op::file("root/.bashrc", "PATH=/usr/sbin:/usr/bin", 0o644),
                ],
            ],
        );
    }
}

/// Files deleted in a child stay deleted in the child's mount, after commit, and in every
/// descendant (overlay records them as whiteouts).
pub fn deleted_files_hidden(ctx: &Ctx) {
    let top = ctx.chain(
        "del",
        &[
            vec![
                Op::file("foo", "foo\n", 0o777),
                Op::file("foobar", "foobar\n", 0o777),
            ],
            vec![Op::remove("foobar")],
            vec![],
        ],
    );
    let mounts = ctx.sn().prepare("child", &top, gc_root()).unwrap();
    let mounted = ctx.mount(&mounts, "child");
    assert!(!mounted.target.join("foobar").exists());
    fs::remove_file(mounted.target.join("foo")).unwrap();
    assert!(!mounted.target.join("foo").exists());
    let names: Vec<_> = fs::read_dir(&mounted.target).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
}

/// A directory removed and recreated in an upper layer hides the lower one's entries
/// (moby#25244: overlay opaque directories).
pub fn remove_dir_in_lower_layer(ctx: &Ctx) {
    ctx.chain(
        "opaque",
        &[
            vec![Op::dir("lib", 0o700), Op::file("lib/hidden", "", 0o644)],
            vec![
                Op::remove("lib"),
                Op::dir("lib", 0o700),
                Op::file("lib/not-hidden", "", 0o644),
            ],
            vec![Op::file("lib/newfile", "", 0o644)],
        ],
    );
}

/// Ownership changes on lower-layer entries stick (moby#24913, #28391).
pub fn chown(ctx: &Ctx) {
    ctx.chain(
        "chown",
        &[
            vec![
                Op::dir("opt", 0o700),
                Op::dir("opt/a", 0o700),
                Op::dir("opt/a/b", 0o700),
                Op::file("opt/a/b/file.txt", "hello", 0o644),
            ],
            vec![
                Op::chown("opt", 1, 1),
                Op::chown("opt/a", 1, 1),
                Op::chown("opt/a/b", 1, 1),
                Op::chown("opt/a/b/file.txt", 1, 1),
            ],
        ],
    );
}

/// Directory owners and modes survive commits, removals and re-creations (moby#27298).
pub fn dir_permission_on_commit(ctx: &Ctx) {
    let first = vec![
        Op::dir("dir1", 0o700),
        Op::dir("dir2", 0o700),
        Op::dir("dir3", 0o700),
        Op::dir("dir4", 0o700),
        Op::file("dir4/f1", "...", 0o644),
        Op::dir("dir5", 0o700),
        Op::file("dir5/f1", "...", 0o644),
        Op::chown("dir1", 1, 1),
        Op::chown("dir2", 1, 1),
        Op::chown("dir3", 1, 1),
        Op::chown("dir5", 1, 1),
        Op::chown("dir5/f1", 1, 1),
    ];
    let second = vec![
        Op::chown("dir2", 0, 0),
        Op::remove("dir3"),
        Op::chown("dir4", 1, 1),
        Op::chown("dir4/f1", 1, 1),
    ];
    let third = vec![
        Op::dir("dir3", 0o700),
        Op::chown("dir3", 1, 1),
        Op::remove("dir5"),
        Op::dir("dir5", 0o700),
        Op::chown("dir5", 1, 1),
    ];
    ctx.chain("perm", &[first, second, third]);
}

/// Files hard-linked or moved out of a lower layer show up at their new place only.
pub fn move_file_from_lower_layer(ctx: &Ctx) {
    ctx.chain(
        "move",
        &[
            vec![
                Op::dir("dir1", 0o700),
                Op::file("dir1/f1", "Hello", 0o644),
                Op::dir("dir2", 0o700),
                Op::file("dir2/f2", "...", 0o644),
            ],
            vec![
                Op::dir("dir3", 0o700),
                Op::file("dir3/f1", "Hello", 0o644),
                Op::remove("dir1"),
                Op::link("dir2/f2", "dir3/f2"),
                Op::remove("dir2/f2"),
            ],
        ],
    );
}

/// Views are read-only when really mounted, with a parent or without.
pub fn view_readonly(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("base", "", &[Op::file("f", "x", 0o644)]);
    ctx.layer("upper", "base", &[Op::file("g", "y", 0o644)]);
    for (key, parent) in [("v0", ""), ("v1", "base"), ("v2", "upper")] {
        let mounts = sn.view(key, parent, gc_root()).unwrap();
        {
            let mounted = ctx.mount(&mounts, key);
            let written = fs::write(mounted.target.join("testfile"), "testcontent");
            assert!(written.is_err(), "view {key} is writable");
        }
        sn.remove(key).unwrap();
    }
    sn.remove("upper").unwrap();
    sn.remove("base").unwrap();
}

/// The root of a fresh active snapshot is mode 0755, whatever the umask.
pub fn root_permission(ctx: &Ctx) {
    use std::os::unix::fs::PermissionsExt;
    let mounts = ctx.sn().prepare("preparing", "", gc_root()).unwrap();
    let mounted = ctx.mount(&mounts, "preparing");
    let mode = fs::metadata(&mounted.target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "got {mode:o}");
}

/// A chain of 128 layers: every active layer and the final view match a flat directory
/// that received the same changes; the view shows files from the bottom and the top layer.
pub fn layers_128(ctx: &Ctx) {
    let sn = ctx.sn();
    let mut layers = vec![vec![
        Op::file("bottom", "way at the bottom\n", 0o777),
        Op::file("overwriteme", "FIRST!\n", 0o777),
        Op::dir("ADDHERE", 0o755),
        Op::dir("ONLYME", 0o755),
        Op::file("ONLYME/bottom", "bye!\n", 0o777),
    ]];
    for i in 1..128 {
        layers.push(vec![
            Op::file("overwriteme", &format!("{i} WAS HERE!\n"), 0o777),
            Op::file(&format!("ADDHERE/file-{i}"), "same\n", 0o755),
            Op::remove("ONLYME"),
            Op::dir("ONLYME", 0o755),
            Op::file(&format!("ONLYME/file-{i}"), "only me!\n", 0o777),
        ]);
    }
    let flat = ctx.dir("flat");
    let mut parent = String::new();
    for (i, ops) in layers.iter().enumerate() {
        let key = format!("prepare-layer-{i}");
        let mounts = sn.prepare(&key, &parent, gc_root()).unwrap();
        {
            let mounted = ctx.mount(&mounts, "layer");
            fstest::assert_same_tree(&mounted.target, &flat);
            fstest::apply(&flat, ops);
            fstest::apply(&mounted.target, ops);
            fstest::assert_same_tree(&mounted.target, &flat);
        }
        parent = format!("committed-{i}");
        sn.commit(&parent, &key, gc_root()).unwrap();
    }
    let mounts = sn.view("fullview", &parent, gc_root()).unwrap();
    let view = ctx.mount(&mounts, "fullview");
    fstest::assert_same_tree(&view.target, &flat);
    let read = |p: &str| fs::read_to_string(view.target.join(p)).unwrap();
    assert_eq!(read("bottom"), "way at the bottom\n");
    assert_eq!(read("overwriteme"), "127 WAS HERE!\n");
    assert_eq!(read("ADDHERE/file-1"), "same\n");
    let only: Vec<_> = fs::read_dir(view.target.join("ONLYME"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(only, ["file-127"]);
}
