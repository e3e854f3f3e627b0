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
            vec![Entry::Dir("etc/"), Entry::File("etc/hello", b"hi\n")],
            vec![Entry::File("etc/more", b"more\n")],
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
    // manifest + config + 2 layers
    assert_eq!(listing.lines().count(), 5, "{listing}");
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
