//! Images fetched from a local registry by Debian's `ctr` (client-side pull into berthd).

use crate::{
    ctr_or_skip,
    daemon::Daemon,
    registry::{Entry, Registry, layout_dir, write_layout},
};

/// The acceptance image: a deleted file, an opaque directory and a symlink across 3 layers.
fn three_layers() -> Vec<Vec<Entry<'static>>> {
    vec![
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
    ]
}

#[test]
fn ctr_content_fetch_stores_the_whole_graph_with_gc_labels() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    let manifest = write_layout(&layout, "1", &three_layers(), "linux/amd64");
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

/// Mounts `mount_cmd` (what `ctr snapshots mounts` prints, with `target`), returns a guard
/// that unmounts.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn mount_snapshot(d: &Daemon, key: &str, target: &std::path::Path) -> Mounted {
    std::fs::create_dir_all(target).unwrap();
    let out = d
        .ctr(&["snapshots", "mounts", target.to_str().unwrap(), key])
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmd = String::from_utf8_lossy(&out.stdout).to_string();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd.trim())
        .status()
        .unwrap();
    assert!(st.success(), "mount failed: {cmd}");
    Mounted(target.to_path_buf())
}

#[test]
fn ctr_images_pull_unpacks_whiteouts_opaque_dirs_and_symlinks() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to mount");
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_layout(&layout, "1", &three_layers(), "linux/amd64");
    reg.push_layout(&layout, "1", "lab/three");
    let image = format!("{}/lab/three:1", reg.addr);
    let out = d
        .ctr(&["images", "pull", "--plain-http", "--print-chainid", &image])
        .unwrap()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = text
        .lines()
        .find_map(|l| l.strip_prefix("image chain ID: "))
        .expect(&text)
        .trim()
        .to_string();
    let out = d.ctr(&["snapshots", "ls"]).unwrap().output().unwrap();
    let snaps = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(snaps.lines().count(), 4, "{snaps}");

    let view = d
        .ctr(&["snapshots", "view", "check", &chain])
        .unwrap()
        .output()
        .unwrap();
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    let target = d.dir.path().join("mnt");
    {
        let _m = mount_snapshot(&d, "check", &target);
        assert_eq!(std::fs::read(target.join("etc/hello")).unwrap(), b"hi\n");
        assert!(!target.join("etc/gone").exists(), "whiteout not applied");
        let mut opt: Vec<String> = std::fs::read_dir(target.join("opt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        opt.sort();
        assert_eq!(opt, ["new"], "opaque dir not applied");
        assert_eq!(
            std::fs::read_link(target.join("etc/link")).unwrap(),
            std::path::Path::new("hello")
        );
        let mut etc: Vec<String> = std::fs::read_dir(target.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        etc.sort();
        assert_eq!(etc, ["hello", "link"]);
    }
    let rm = d
        .ctr(&["snapshots", "rm", "check"])
        .unwrap()
        .output()
        .unwrap();
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );

    // Removing the image collects its content and its snapshots.
    let out = d
        .ctr(&["images", "rm", "--sync", &image])
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.ctr(&["snapshots", "ls"]).unwrap().output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "snapshots left"
    );
    let out = d.ctr(&["content", "ls", "-q"]).unwrap().output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "content left"
    );
}

#[test]
fn snapshot_diffs_become_layers_for_both_snapshotters() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_layout(
        &layout,
        "1",
        &[vec![
            Entry::Dir("etc/"),
            Entry::File("etc/keep", b"k"),
            Entry::File("etc/drop", b"d"),
        ]],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/diff");
    let image = format!("{}/lab/diff:1", reg.addr);
    for sn in ["overlayfs", "native"] {
        let run = |args: &[&str]| {
            let mut full = vec!["snapshots", "--snapshotter", sn];
            full.extend_from_slice(args);
            let out = d.ctr(&full).unwrap().output().unwrap();
            assert!(
                out.status.success(),
                "{sn} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let out = d
            .ctr(&[
                "images",
                "pull",
                "--plain-http",
                "--snapshotter",
                sn,
                "--print-chainid",
                &image,
            ])
            .unwrap()
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}");
        let chain = text
            .lines()
            .find_map(|l| l.strip_prefix("image chain ID: "))
            .unwrap()
            .trim()
            .to_string();
        run(&["prepare", "work", &chain]);
        let target = d.dir.path().join(format!("mnt-{sn}"));
        std::fs::create_dir_all(&target).unwrap();
        let cmd = String::from_utf8_lossy(&run(&["mounts", target.to_str().unwrap(), "work"]))
            .to_string();
        assert!(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd.trim())
                .status()
                .unwrap()
                .success()
        );
        {
            let _m = Mounted(target.clone());
            std::fs::write(target.join("etc/new"), b"new").unwrap();
            std::fs::remove_file(target.join("etc/drop")).unwrap();
        }
        let tar = run(&[
            "diff",
            "--media-type",
            "application/vnd.oci.image.layer.v1.tar",
            "work",
        ]);
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names.iter().any(|n| n.ends_with("etc/new")),
            "{sn}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with("etc/.wh.drop")),
            "{sn}: {names:?}"
        );
        assert!(
            !names.iter().any(|n| n.ends_with("etc/keep")),
            "{sn}: {names:?}"
        );
        run(&["rm", "work"]);
    }
}
