//! Image round trips with Debian's `ctr` against berthd: export/import, `docker save`
//! tarballs, multi-platform indexes, push and pull back, and a 128-layer image.

use crate::{
    ctr_or_skip,
    daemon::{Daemon, ctr_ok as ctr},
    registry::{Entry, Registry, layout_dir, write_layout, write_multi_platform_layout},
};

#[test]
fn export_import_round_trip_and_docker_save_import() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (tmp, layout) = layout_dir();
    let manifest = write_layout(
        &layout,
        "1",
        &[
            vec![Entry::Dir("etc/"), Entry::File("etc/a", b"a")],
            vec![Entry::File("b", b"b")],
        ],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/rt");
    let image = format!("{}/lab/rt:1", reg.addr);
    ctr(&d, &["images", "pull", "--plain-http", &image]);
    let tar = tmp.path().join("export.tar");
    ctr(&d, &["images", "export", tar.to_str().unwrap(), &image]);
    ctr(&d, &["images", "rm", "--sync", &image]);
    assert!(ctr(&d, &["content", "ls", "-q"]).trim().is_empty());
    ctr(&d, &["images", "import", tar.to_str().unwrap()]);
    let listed = ctr(&d, &["images", "ls"]);
    assert!(
        listed.contains(&image) && listed.contains(&manifest),
        "{listed}"
    );

    // A `docker save` tarball imports too.
    let saved = tmp.path().join("saved.tar");
    Registry::docker_archive(&layout, "1", &saved, "example.com/saved:2");
    let out = ctr(&d, &["images", "import", saved.to_str().unwrap()]);
    assert!(out.contains("example.com/saved:2"), "{out}");
    assert!(ctr(&d, &["images", "ls", "-q"]).contains("example.com/saved:2"));
}

#[test]
fn index_pulls_host_platform_by_default_and_others_on_request() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_multi_platform_layout(&layout, "1", &["linux/amd64", "linux/arm64"]);
    reg.push_layout(&layout, "1", "lab/multi");
    let image = format!("{}/lab/multi:1", reg.addr);
    let out = ctr(&d, &["images", "pull", "--plain-http", &image]);
    assert!(out.contains("unpacking linux/amd64"), "{out}");
    let out = ctr(
        &d,
        &[
            "images",
            "pull",
            "--plain-http",
            "--platform",
            "linux/arm64",
            &image,
        ],
    );
    assert!(out.contains("unpacking linux/arm64"), "{out}");
    // Two single-layer images: two committed snapshots.
    let snaps = ctr(&d, &["snapshots", "ls"]);
    assert_eq!(snaps.lines().count(), 3, "{snaps}");
}

#[test]
fn push_a_pulled_image_elsewhere_and_pull_it_back() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    let manifest = write_layout(&layout, "1", &[vec![Entry::File("x", b"x")]], "linux/amd64");
    reg.push_layout(&layout, "1", "lab/src");
    let src = format!("{}/lab/src:1", reg.addr);
    let dst = format!("{}/lab/dst:1", reg.addr);
    ctr(&d, &["images", "pull", "--plain-http", &src]);
    ctr(&d, &["images", "tag", &src, &dst]);
    ctr(&d, &["images", "push", "--plain-http", &dst]);
    ctr(&d, &["images", "rm", "--sync", &src, &dst]);
    ctr(&d, &["images", "pull", "--plain-http", &dst]);
    let listed = ctr(&d, &["images", "ls"]);
    assert!(
        listed.contains(&dst) && listed.contains(&manifest),
        "{listed}"
    );
}

#[test]
fn a_128_layer_image_unpacks() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    let names: Vec<String> = (0..128).map(|i| format!("layer-{i:03}")).collect();
    let layers: Vec<Vec<Entry<'_>>> = names
        .iter()
        .map(|n| vec![Entry::File(n.as_str(), n.as_bytes())])
        .collect();
    write_layout(&layout, "1", &layers, "linux/amd64");
    reg.push_layout(&layout, "1", "lab/deep");
    let image = format!("{}/lab/deep:1", reg.addr);
    let out = ctr(
        &d,
        &["images", "pull", "--plain-http", "--print-chainid", &image],
    );
    let chain = out
        .lines()
        .find_map(|l| l.strip_prefix("image chain ID: "))
        .unwrap()
        .trim()
        .to_string();
    let snaps = ctr(&d, &["snapshots", "ls"]);
    assert_eq!(snaps.lines().count(), 129, "{snaps}");
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    // The view's overlay mount lists 128 lowerdirs, far beyond one page of mount data;
    // Berth's mounter compacts it, and the merged tree shows every layer.
    ctr(&d, &["snapshots", "view", "deep-view", &chain]);
    let mounts = tokio::runtime::Runtime::new().unwrap().block_on(async {
        containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient::new(
            d.channel().await,
        )
        .mounts(crate::daemon::ns(
            "default",
            containerd_client::services::v1::snapshots::MountsRequest {
                snapshotter: "overlayfs".into(),
                key: "deep-view".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .mounts
    });
    assert_eq!(mounts.len(), 1);
    let m = &mounts[0];
    let data: usize = m.options.iter().map(|o| o.len() + 1).sum();
    assert!(
        data > 4096,
        "expected a deep option string, got {data} bytes"
    );
    let mount = berth_snapshotter::mount::Mount {
        kind: m.r#type.clone(),
        source: m.source.clone(),
        options: m.options.clone(),
    };
    let target = d.dir.path().join("deep-mnt");
    std::fs::create_dir_all(&target).unwrap();
    use berth_snapshotter::mount::Mounter as _;
    let mounter = berth_snapshotter::snapshots::CompactingMounter::new(
        berth_snapshotter::mount::SystemMounter,
    );
    mounter.mount(&mount, &target).unwrap();
    let bottom = std::fs::read(target.join("layer-000"));
    let top = std::fs::read(target.join("layer-127"));
    let count = std::fs::read_dir(&target).map(|r| r.count()).unwrap_or(0);
    mounter.inner().unmount(&target, false).unwrap();
    assert_eq!(bottom.unwrap(), b"layer-000");
    assert_eq!(top.unwrap(), b"layer-127");
    assert_eq!(count, 128);
}
