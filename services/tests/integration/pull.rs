//! Images fetched from a local registry by Debian's `ctr` (client-side pull into berthd).

use crate::{
    ctr_or_skip,
    daemon::Daemon,
    registry::{Entry, Registry, layout_dir, write_layout},
};

#[test]
fn ctr_content_fetch_stores_the_whole_graph_with_gc_labels() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    let manifest = write_layout(
        &layout,
        "1",
        &[
            vec![
                Entry::Dir("etc/"),
                Entry::File("etc/hello", b"hi\n"),
                Entry::File("etc/gone", b"x"),
                Entry::Dir("opt/"),
                Entry::File("opt/old", b"old"),
            ],
            vec![
                Entry::Whiteout("etc/gone"),
                Entry::Opaque("opt"),
                Entry::File("opt/new", b"new"),
            ],
            vec![Entry::Symlink("etc/link", "hello")],
        ],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/fetch");
    let image = format!("{}/lab/fetch:1", reg.addr);
    let out = d
        .ctr(&["content", "fetch", "--plain-http", &image])
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.ctr(&["content", "ls"]).unwrap().output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    // header + manifest + config + 3 layers
    assert_eq!(listing.lines().count(), 6, "{listing}");
    let line = listing
        .lines()
        .find(|l| l.starts_with(&manifest))
        .expect(&listing);
    assert!(
        line.contains("containerd.io/gc.ref.content.config="),
        "{line}"
    );
    assert!(line.contains("containerd.io/gc.ref.content.l.0="), "{line}");
}
