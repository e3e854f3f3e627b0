//! Suite checks on the rules that protect users: error classes clients branch on, keys that
//! never touch the filesystem, cleanup that spares live snapshots, removal of live ones.

use std::{fs, path::Path};

use berth_proto::errdefs::Kind as ErrorKind;

use super::{Ctx, Op, gc_root, kind_of};
use crate::snapshots::{Info, Kind};

/// Every misuse gets containerd's error class.
pub fn error_kinds(ctx: &Ctx) {
    use ErrorKind::*;
    let sn = ctx.sn();
    ctx.layer("c", "", &[]);
    sn.prepare("a", "c", gc_root()).unwrap();
    sn.view("v", "c", gc_root()).unwrap();

    assert_eq!(kind_of(sn.prepare("", "", gc_root())), InvalidArgument);
    assert_eq!(kind_of(sn.view("", "c", gc_root())), InvalidArgument);
    assert_eq!(kind_of(sn.commit("", "a", gc_root())), InvalidArgument);
    assert_eq!(kind_of(sn.commit("x", "", gc_root())), InvalidArgument);
    assert_eq!(kind_of(sn.remove("")), InvalidArgument);

    assert_eq!(kind_of(sn.prepare("p", "missing", gc_root())), NotFound);
    assert_eq!(kind_of(sn.view("p", "missing", gc_root())), NotFound);
    assert_eq!(kind_of(sn.prepare("p", "a", gc_root())), InvalidArgument);
    assert_eq!(kind_of(sn.view("p", "v", gc_root())), InvalidArgument);
    assert_eq!(
        kind_of(sn.stat("p")),
        NotFound,
        "failed creates leave nothing"
    );

    assert_eq!(kind_of(sn.commit("x", "missing", gc_root())), NotFound);
    assert_eq!(kind_of(sn.commit("x", "v", gc_root())), FailedPrecondition);
    assert_eq!(kind_of(sn.commit("x", "c", gc_root())), FailedPrecondition);
    assert_eq!(kind_of(sn.stat("x")), NotFound);

    assert_eq!(kind_of(sn.stat("missing")), NotFound);
    assert_eq!(kind_of(sn.usage("missing")), NotFound);
    assert_eq!(kind_of(sn.mounts("missing")), NotFound);
    assert_eq!(kind_of(sn.remove("missing")), NotFound);
    let ghost = Info {
        name: "missing".into(),
        ..sn.stat("c").unwrap()
    };
    assert_eq!(kind_of(sn.update(ghost, &[])), NotFound);

    let big = [("k".to_string(), "v".repeat(5000))].into_iter().collect();
    assert_eq!(kind_of(sn.prepare("p", "", big)), InvalidArgument);
}

/// Keys that look like paths stay plain names: nothing appears where a naive path join of
/// the key would land, and every mount source stays under the snapshotter's root.
pub fn keys_never_escape(ctx: &Ctx) {
    let sn = ctx.sn();
    let root = &ctx.fixture.root;
    let tag = ctx
        .scratch
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let keys = [
        format!("../../escape-{tag}"),
        format!("/tmp/escape-{tag}"),
        format!("a/../../../escape-{tag}/x"),
        "..".to_string(),
        ".".to_string(),
        "with/slash/".to_string(),
        "new-1".to_string(),
        "removed-1".to_string(),
        "1".to_string(),
    ];
    let mut parent = String::new();
    for (i, key) in keys.iter().enumerate() {
        let active = format!("{key}#active");
        let mounts = if i % 2 == 0 {
            sn.prepare(&active, &parent, gc_root()).unwrap()
        } else {
            sn.prepare(&active, "", gc_root()).unwrap()
        };
        for mount in &mounts {
            let sources = std::iter::once(mount.source.as_str()).chain(
                mount
                    .options
                    .iter()
                    .filter_map(|o| o.split_once('=').map(|(_, v)| v))
                    .flat_map(|v| v.split(':')),
            );
            for source in sources.filter(|s| s.starts_with('/')) {
                assert!(
                    Path::new(source).starts_with(root),
                    "{source} outside {root:?}"
                );
            }
        }
        {
            let mounted = ctx.mount(&mounts, &format!("m{i}"));
            fs::write(mounted.target.join("marker"), key).unwrap();
        }
        sn.commit(key, &active, gc_root()).unwrap();
        parent = key.clone();
    }
    sn.cleanup().unwrap();
    for key in &keys {
        assert_eq!(&sn.stat(key).unwrap().name, key);
        for base in [root.clone(), root.join("snapshots")] {
            let naive = base.join(key.trim_start_matches('/'));
            let escaped = naive.join("marker");
            assert!(!escaped.exists(), "{escaped:?} exists");
        }
    }
    assert!(!Path::new(&format!("/tmp/escape-{tag}")).exists());
    let outside = root.parent().map(|p| p.join(format!("escape-{tag}")));
    assert!(outside.is_some_and(|p| !p.exists()));
    // The last key's view shows its own marker.
    let last = keys.last().map(String::as_str).unwrap_or_default();
    let mounts = sn.view("look", last, gc_root()).unwrap();
    let view = ctx.mount(&mounts, "look");
    assert_eq!(
        fs::read_to_string(view.target.join("marker")).unwrap(),
        last
    );
}

/// Cleanup leaves every live snapshot and its files alone.
pub fn cleanup_keeps_live(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("c", "", &[Op::file("f", "kept", 0o644)]);
    let prepared = sn.prepare("a", "c", gc_root()).unwrap();
    fs::write(ctx.mount(&prepared, "a").target.join("g"), "mine").unwrap();
    sn.view("v", "c", gc_root()).unwrap();
    ctx.layer("gone", "", &[Op::file("h", "x", 0o644)]);
    sn.remove("gone").unwrap();
    sn.cleanup().unwrap();
    sn.cleanup().unwrap();
    let mounted = ctx.mount(&sn.mounts("a").unwrap(), "again");
    assert_eq!(
        fs::read_to_string(mounted.target.join("f")).unwrap(),
        "kept"
    );
    assert_eq!(
        fs::read_to_string(mounted.target.join("g")).unwrap(),
        "mine"
    );
    let view = ctx.mount(&sn.mounts("v").unwrap(), "view");
    assert!(view.target.join("f").exists());
    assert_eq!(kind_of(sn.stat("gone")), ErrorKind::NotFound);
}

/// Active snapshots and views can be abandoned: after unmounting, remove frees the key and
/// a new snapshot under it starts from its parent again.
pub fn remove_active(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("base", "", &[Op::file("f", "base", 0o644)]);
    let mounts = sn.prepare("container", "base", gc_root()).unwrap();
    {
        let mounted = ctx.mount(&mounts, "container");
        fs::write(mounted.target.join("f"), "changed").unwrap();
        fs::write(mounted.target.join("new"), "new").unwrap();
    }
    sn.remove("container").unwrap();
    assert_eq!(kind_of(sn.stat("container")), ErrorKind::NotFound);
    assert_eq!(kind_of(sn.mounts("container")), ErrorKind::NotFound);
    let mounts = sn.prepare("container", "base", gc_root()).unwrap();
    {
        let mounted = ctx.mount(&mounts, "again");
        assert_eq!(
            fs::read_to_string(mounted.target.join("f")).unwrap(),
            "base"
        );
        assert!(!mounted.target.join("new").exists());
    }
    assert_eq!(sn.stat("container").unwrap().kind, Kind::Active);
    sn.view("v", "base", gc_root()).unwrap();
    sn.remove("v").unwrap();
    sn.remove("container").unwrap();
    sn.remove("base").unwrap();
    let mut left = 0;
    sn.walk(&mut |_| {
        left += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(left, 0);
}
