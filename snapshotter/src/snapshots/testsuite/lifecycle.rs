//! Suite checks on the lifecycle and the records: kinds, parents, labels, walk, usage,
//! removal rules and error classes.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    time::SystemTime,
};

use berth_proto::errdefs::{Error, Kind as ErrorKind};

use super::{Ctx, Op, fstest, gc_root, kind_of};
use crate::snapshots::{Info, Kind, Usage};

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// c1 ← c2 committed, a1 active on c2, a2 active alone, v1 view of c2, v2 view of nothing.
fn base_snapshots(ctx: &Ctx) {
    let sn = ctx.sn();
    sn.prepare("c1-a", "", gc_root()).unwrap();
    sn.commit("c1", "c1-a", gc_root()).unwrap();
    sn.prepare("c2-a", "c1", gc_root()).unwrap();
    sn.commit("c2", "c2-a", gc_root()).unwrap();
    sn.prepare("a1", "c2", gc_root()).unwrap();
    sn.prepare("a2", "", gc_root()).unwrap();
    sn.view("v1", "c2", gc_root()).unwrap();
    sn.view("v2", "", gc_root()).unwrap();
}

const BASE: [(&str, Kind, &str); 6] = [
    ("c1", Kind::Committed, ""),
    ("c2", Kind::Committed, "c1"),
    ("a1", Kind::Active, "c2"),
    ("a2", Kind::Active, ""),
    ("v1", Kind::View, "c2"),
    ("v2", Kind::View, ""),
];

/// Write in an active mount, commit, build on it, and see both layers through a view.
pub fn basic(ctx: &Ctx) {
    let sn = ctx.sn();
    let first = [
        Op::file("foo", "foo\n", 0o777),
        Op::dir("a", 0o755),
        Op::dir("a/b", 0o755),
        Op::dir("a/b/c", 0o755),
    ];
    let second = [
        Op::file("bar", "bar\n", 0o777),
        Op::file("foo", "bar\n", 0o777),
        Op::remove("a/b"),
    ];
    let flat = ctx.dir("flat");
    let mounts = sn.prepare("preparing", "", gc_root()).unwrap();
    assert!(!mounts.is_empty());
    fstest::apply(&ctx.mount(&mounts, "preparing").target, &first);
    fstest::apply(&flat, &first);
    sn.commit("committed", "preparing", gc_root()).unwrap();
    let info = sn.stat("committed").unwrap();
    assert_eq!((info.kind, info.parent.as_str()), (Kind::Committed, ""));
    assert_eq!(kind_of(sn.stat("preparing")), ErrorKind::NotFound);

    let mounts = sn.prepare("next", "committed", gc_root()).unwrap();
    {
        let next = ctx.mount(&mounts, "next");
        fstest::assert_same_tree(&next.target, &flat);
        fstest::apply(&next.target, &second);
    }
    fstest::apply(&flat, &second);
    let info = sn.stat("next").unwrap();
    assert_eq!(
        (info.kind, info.parent.as_str()),
        (Kind::Active, "committed")
    );
    sn.commit("committed-next", "next", gc_root()).unwrap();
    assert_eq!(sn.stat("committed-next").unwrap().parent, "committed");
    assert_eq!(kind_of(sn.stat("next")), ErrorKind::NotFound);

    let mounts = sn.view("view", "committed-next", gc_root()).unwrap();
    fstest::assert_same_tree(&ctx.mount(&mounts, "view").target, &flat);
    sn.remove("view").unwrap();
    assert_eq!(
        kind_of(sn.remove("committed")),
        ErrorKind::FailedPrecondition
    );
    sn.remove("committed-next").unwrap();
    sn.remove("committed").unwrap();
}

/// A prepared snapshot stats as active with no parent while mounted and written.
pub fn stat_active(ctx: &Ctx) {
    let mounts = ctx.sn().prepare("preparing", "", gc_root()).unwrap();
    let mounted = ctx.mount(&mounts, "preparing");
    fs::write(mounted.target.join("foo"), "foo\n").unwrap();
    let info = ctx.sn().stat("preparing").unwrap();
    assert_eq!(info.name, "preparing");
    assert_eq!((info.kind, info.parent.as_str()), (Kind::Active, ""));
}

/// A committed snapshot stats as committed under its new name.
pub fn stat_committed(ctx: &Ctx) {
    let mounts = ctx.sn().prepare("preparing", "", gc_root()).unwrap();
    fs::write(ctx.mount(&mounts, "preparing").target.join("foo"), "x").unwrap();
    ctx.sn()
        .commit("committed", "preparing", gc_root())
        .unwrap();
    let info = ctx.sn().stat("committed").unwrap();
    assert_eq!(info.name, "committed");
    assert_eq!((info.kind, info.parent.as_str()), (Kind::Committed, ""));
}

/// A ← B: B's parent is A, A's is empty, and a file changed in B shows B's contents.
pub fn parent_chain(ctx: &Ctx) {
    ctx.layer("A", "", &[Op::file("foo", "foo\n", 0o644)]);
    ctx.layer("B", "A", &[Op::file("foo", "foo bar\n", 0o644)]);
    let b = ctx.sn().stat("B").unwrap();
    assert_eq!(b.parent, "A");
    assert_eq!(ctx.sn().stat(&b.parent).unwrap().parent, "");
    let mounts = ctx.sn().view("look", "B", gc_root()).unwrap();
    let view = ctx.mount(&mounts, "look");
    assert_eq!(
        fs::read_to_string(view.target.join("foo")).unwrap(),
        "foo bar\n"
    );
}

/// Keys are one namespace: prepare, view and commit refuse any key already in use.
pub fn same_key_refused(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("base", "", &[]);
    sn.prepare("taken", "base", gc_root()).unwrap();
    assert_eq!(
        kind_of(sn.view("taken", "base", gc_root())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind_of(sn.prepare("taken", "base", gc_root())),
        ErrorKind::AlreadyExists
    );
    sn.view("seen", "base", gc_root()).unwrap();
    assert_eq!(
        kind_of(sn.view("seen", "base", gc_root())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind_of(sn.prepare("base", "", gc_root())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind_of(sn.commit("base", "taken", gc_root())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind_of(sn.commit("seen", "taken", gc_root())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(sn.stat("taken").unwrap().kind, Kind::Active);
}

/// Labels follow containerd's update rules for every kind; nothing else can change.
pub fn update_labels(ctx: &Ctx) {
    let before = SystemTime::now();
    base_snapshots(ctx);
    let after = SystemTime::now();
    let sn = ctx.sn();
    for (name, kind, parent) in BASE {
        let mut info = sn.stat(name).unwrap();
        assert!(
            info.created_at >= before && info.created_at <= after,
            "{name}"
        );
        assert_eq!(info.created_at, info.updated_at, "{name}");
        assert_eq!((info.kind, info.parent.as_str()), (kind, parent));
        let created = info.created_at;

        let all = labels(&[
            ("l1", "v1"),
            ("l2", "v2"),
            ("l3", "v3"),
            ("containerd.io/gc.root", "r"),
        ]);
        info.labels = all.clone();
        info.parent = "doesnotexist".into();
        let u1 = SystemTime::now();
        let info = sn.update(info, &[]).unwrap();
        assert!(info.updated_at >= u1 && info.updated_at <= SystemTime::now());
        assert_eq!(info.created_at, created);
        assert_eq!((info.kind, info.parent.as_str()), (kind, parent));
        assert_eq!(info.labels, all);

        let mut info = info;
        info.labels = labels(&[("l1", "updated"), ("l4", "v4")]);
        let paths = ["labels.l1".to_string(), "labels.l2".to_string()];
        let info = sn.update(info, &paths).unwrap();
        let expected = labels(&[
            ("l1", "updated"),
            ("l3", "v3"),
            ("containerd.io/gc.root", "r"),
        ]);
        assert_eq!(info.labels, expected);
        assert_eq!(sn.stat(name).unwrap().labels, expected);

        let mut info = info;
        info.labels = labels(&[("l4", "v4"), ("empty", "")]);
        let info = sn.update(info, &["labels".to_string()]).unwrap();
        assert_eq!(info.labels, labels(&[("l4", "v4")]));

        let mut info = info;
        info.parent = "doesnotexist".into();
        let err = kind_of(sn.update(info.clone(), &["parent".to_string()]));
        assert_eq!(err, ErrorKind::InvalidArgument);
        info.labels = labels(&[("k", &"v".repeat(5000))]);
        assert_eq!(kind_of(sn.update(info, &[])), ErrorKind::InvalidArgument);
        assert_eq!(sn.stat(name).unwrap().labels, labels(&[("l4", "v4")]));
    }
}

/// Commit gives the committed snapshot the labels passed to it, not the active one's.
pub fn commit_replaces_labels(ctx: &Ctx) {
    let sn = ctx.sn();
    sn.prepare("a", "", labels(&[("old", "1")])).unwrap();
    sn.commit("c", "a", labels(&[("new", "2")])).unwrap();
    assert_eq!(sn.stat("c").unwrap().labels, labels(&[("new", "2")]));
}

/// Removed keys can be reused at once, by any kind (containerd's checkRemove).
pub fn remove_and_reuse(ctx: &Ctx) {
    let sn = ctx.sn();
    sn.prepare("committed-a", "", gc_root()).unwrap();
    sn.commit("committed-1", "committed-a", gc_root()).unwrap();
    sn.prepare("reuse-1", "committed-1", gc_root()).unwrap();
    sn.remove("reuse-1").unwrap();
    sn.view("reuse-1", "committed-1", gc_root()).unwrap();
    sn.remove("reuse-1").unwrap();
    sn.prepare("reuse-1", "", gc_root()).unwrap();
    sn.remove("committed-1").unwrap();
    sn.commit("committed-1", "reuse-1", gc_root()).unwrap();
    assert_eq!(sn.stat("committed-1").unwrap().kind, Kind::Committed);
}

/// A parent cannot go while it has children; top-down removal works.
pub fn remove_order(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("base", "", &[Op::file("f", "x", 0o644)]);
    ctx.layer("middle", "base", &[]);
    sn.prepare("top", "middle", gc_root()).unwrap();
    sn.view("look", "base", gc_root()).unwrap();
    let err = sn.remove("middle").unwrap_err();
    assert_eq!(err.kind, ErrorKind::FailedPrecondition);
    assert!(err.message.contains("remove"), "{}", err.message);
    sn.remove("top").unwrap();
    sn.remove("middle").unwrap();
    assert_eq!(kind_of(sn.remove("base")), ErrorKind::FailedPrecondition);
    sn.remove("look").unwrap();
    sn.remove("base").unwrap();
    assert_eq!(kind_of(sn.remove("base")), ErrorKind::NotFound);
}

fn walked(ctx: &Ctx) -> BTreeMap<String, Info> {
    let mut out = BTreeMap::new();
    ctx.sn()
        .walk(&mut |info| {
            out.insert(info.name.clone(), info.clone());
            Ok(())
        })
        .unwrap();
    out
}

/// Walk reports every snapshot exactly as stat does.
pub fn walk_reports_all(ctx: &Ctx) {
    base_snapshots(ctx);
    let all = walked(ctx);
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(names, ["a1", "a2", "c1", "c2", "v1", "v2"]);
    for (name, kind, parent) in BASE {
        let info = &all[name];
        assert_eq!((info.kind, info.parent.as_str()), (kind, parent));
        assert_eq!(info, &ctx.sn().stat(name).unwrap());
    }
}

/// The walk callback may stat and remove snapshots; its error ends the walk.
pub fn stat_and_remove_in_walk(ctx: &Ctx) {
    base_snapshots(ctx);
    let sn = ctx.sn();
    sn.walk(&mut |info| {
        assert_eq!(&sn.stat(&info.name)?, info);
        if info.kind != Kind::Committed {
            sn.remove(&info.name)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(walked(ctx).len(), 2);
    let mut calls = 0;
    let err = sn.walk(&mut |_| {
        calls += 1;
        Err(Error::internal("stop"))
    });
    assert_eq!((calls, err.unwrap_err().message.as_str()), (1, "stop"));
}

/// Active snapshots are measured on demand, committed ones keep what commit measured.
pub fn usage(ctx: &Ctx) {
    let sn = ctx.sn();
    let mounts = sn.prepare("a", "", gc_root()).unwrap();
    {
        let mounted = ctx.mount(&mounts, "a");
        fs::write(mounted.target.join("big"), vec![7u8; 256 * 1024]).unwrap();
        fs::create_dir(mounted.target.join("d")).unwrap();
        fs::write(mounted.target.join("d/small"), "s").unwrap();
    }
    let active = sn.usage("a").unwrap();
    assert!(active.size >= 256 * 1024, "{active:?}");
    assert!(active.inodes >= 3, "{active:?}");
    sn.commit("c", "a", gc_root()).unwrap();
    assert_eq!(sn.usage("c").unwrap(), active);
    sn.view("v", "c", gc_root()).unwrap();
    assert_eq!(sn.usage("v").unwrap(), Usage::default());
    assert_eq!(kind_of(sn.usage("nope")), ErrorKind::NotFound);
}

/// Mounts can be asked for again; committed snapshots have none.
pub fn mounts_recoverable(ctx: &Ctx) {
    let sn = ctx.sn();
    ctx.layer("base", "", &[Op::file("f", "x", 0o644)]);
    let prepared = sn.prepare("a", "base", gc_root()).unwrap();
    assert_eq!(sn.mounts("a").unwrap(), prepared);
    let viewed = sn.view("v", "base", gc_root()).unwrap();
    assert_eq!(sn.mounts("v").unwrap(), viewed);
    assert_eq!(kind_of(sn.mounts("base")), ErrorKind::FailedPrecondition);
    assert_eq!(kind_of(sn.mounts("nope")), ErrorKind::NotFound);
}
