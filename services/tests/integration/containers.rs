//! Containers service through Debian's `ctr`: records, labels, filters, and containers as
//! garbage-collection roots for their snapshots.

use crate::{
    ctr_or_skip,
    daemon::Daemon,
    registry::{Entry, Registry, layout_dir, write_layout},
};

fn ctr(d: &Daemon, args: &[&str]) -> (bool, String) {
    let out = d.ctr(args).unwrap().output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn containers_are_records_that_root_their_snapshots() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_layout(&layout, "1", &[vec![Entry::File("f", b"f")]], "linux/amd64");
    reg.push_layout(&layout, "1", "lab/ctr");
    let image = format!("{}/lab/ctr:1", reg.addr);
    assert!(ctr(&d, &["images", "pull", "--plain-http", &image]).0);
    let (ok, out) = ctr(
        &d,
        &[
            "containers",
            "create",
            "--label",
            "team=blue",
            &image,
            "web",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = ctr(&d, &["containers", "create", &image, "web"]);
    assert!(!ok && out.contains("already exists"), "{out}");
    let (_, out) = ctr(&d, &["containers", "ls"]);
    assert!(out.lines().any(|l| l.starts_with("web")), "{out}");
    let (_, out) = ctr(&d, &["containers", "ls", "-q", "labels.team==blue"]);
    assert_eq!(out.trim(), "web");
    let (_, out) = ctr(&d, &["containers", "ls", "-q", "labels.team==red"]);
    assert!(out.trim().is_empty(), "{out}");
    let (ok, out) = ctr(&d, &["containers", "info", "web"]);
    assert!(
        ok && out.contains("\"SnapshotKey\": \"web\"") && out.contains("ociVersion"),
        "{out}"
    );
    assert!(ctr(&d, &["containers", "label", "web", "tier=gold"]).0);
    let (_, out) = ctr(&d, &["containers", "info", "web"]);
    assert!(out.contains("tier"), "{out}");
    // Removing the image keeps the container's snapshot and its parent chain.
    assert!(ctr(&d, &["images", "rm", "--sync", &image]).0);
    let (_, out) = ctr(&d, &["snapshots", "ls"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    // A namespace with containers cannot be removed.
    let (ok, out) = ctr(&d, &["namespaces", "rm", "default"]);
    assert!(!ok && out.contains("containers"), "{out}");
    let (ok, out) = ctr(&d, &["containers", "rm", "web"]);
    assert!(ok, "{out}");
    let (ok, out) = ctr(&d, &["containers", "info", "web"]);
    assert!(!ok && out.contains("not found"), "{out}");
}
