//! Image archives through berthd (berth.transfer.v1 Import/Export via berthctl): save/load
//! round trips, interoperation with ctr and `docker save` tarballs, rootfs imports, bad input.

use crate::{
    ctr_or_skip,
    daemon::{Daemon, berthctl, ctr_ok as ctr, ok, text},
    registry::{Entry, Registry, layout_dir, write_layout},
};

#[test]
fn save_load_round_trips_and_interoperates_with_ctr() {
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
    reg.push_layout(&layout, "1", "lab/arch");
    let image = format!("{}/lab/arch:1", reg.addr);
    ok(berthctl(&d, "default", &["pull", "--plain-http", &image]));
    let saved = tmp.path().join("saved.tar");
    ok(berthctl(
        &d,
        "default",
        &["save", "-o", saved.to_str().unwrap(), &image],
    ));
    // berthctl save → ctr import (in another namespace): same digest, unpacked.
    let out = ctr(
        &d,
        &["-n", "viactr", "images", "import", saved.to_str().unwrap()],
    );
    assert!(out.contains(&image), "{out}");
    assert!(ctr(&d, &["-n", "viactr", "images", "ls"]).contains(&manifest));
    // ctr export → berthctl load.
    let exported = tmp.path().join("ctr.tar");
    ctr(
        &d,
        &[
            "-n",
            "viactr",
            "images",
            "export",
            exported.to_str().unwrap(),
            &image,
        ],
    );
    ok(berthctl(
        &d,
        "fromctr",
        &["load", "-i", exported.to_str().unwrap()],
    ));
    let listed = ctr(&d, &["-n", "fromctr", "images", "ls"]);
    assert!(
        listed.contains(&image) && listed.contains(&manifest),
        "{listed}"
    );
    assert_eq!(
        ctr(&d, &["-n", "fromctr", "snapshots", "ls"])
            .lines()
            .count(),
        3
    );
    // Own round trip after removing everything.
    ctr(&d, &["images", "rm", "--sync", &image]);
    assert!(ctr(&d, &["content", "ls", "-q"]).trim().is_empty());
    ok(berthctl(
        &d,
        "default",
        &["load", "-i", saved.to_str().unwrap()],
    ));
    assert!(ctr(&d, &["images", "ls"]).contains(&manifest));
}

#[test]
fn docker_save_tarballs_load() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    if crate::daemon::which("skopeo").is_none() {
        assert!(std::env::var_os("CI").is_none(), "skopeo is required in CI");
        return;
    }
    let (tmp, layout) = layout_dir();
    write_layout(
        &layout,
        "1",
        &[vec![Entry::File("hello", b"docker")]],
        "linux/amd64",
    );
    let saved = tmp.path().join("docker.tar");
    Registry::docker_archive(&layout, "1", &saved, "example.com/saved:2");
    let out = ok(berthctl(
        &d,
        "default",
        &["load", "-i", saved.to_str().unwrap()],
    ));
    assert!(out.contains("example.com/saved:2"), "{out}");
    let listed = ctr(&d, &["images", "ls"]);
    assert!(
        listed.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{listed}"
    );
    assert_eq!(ctr(&d, &["snapshots", "ls"]).lines().count(), 2);
}

#[test]
fn a_rootfs_tarball_becomes_a_one_layer_image() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "imported\n").unwrap();
    let tarball = dir.path().join("rootfs.tar.gz");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-czf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = ok(berthctl(
        &d,
        "default",
        &["import", tarball.to_str().unwrap(), "example.com/rootfs:1"],
    ));
    assert!(out.contains("example.com/rootfs:1"), "{out}");
    assert_eq!(ctr(&d, &["snapshots", "ls"]).lines().count(), 2);
    // A name is required, and the file must be a tar.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, vec![0x42u8; 10_000]).unwrap();
    let out = berthctl(
        &d,
        "default",
        &["import", junk.to_str().unwrap(), "example.com/junk:1"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!ctr(&d, &["images", "ls", "-q"]).contains("junk"));
}

#[test]
fn bad_archives_are_refused_and_name_nothing() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let dir = tempfile::tempdir().unwrap();
    // Random bytes.
    let junk = dir.path().join("junk.tar");
    std::fs::write(
        &junk,
        (0..50_000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = berthctl(&d, "default", &["load", "-i", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    // A blob whose bytes do not match the digest its path names.
    let mut b = tar::Builder::new(Vec::new());
    let fake = format!("blobs/sha256/{}", "a".repeat(64));
    let mut h = tar::Header::new_ustar();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, &fake, &b"hello"[..]).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":5,"annotations":{{"io.containerd.image.name":"example.com/evil:1"}}}}]}}"#,
        "a".repeat(64)
    );
    let mut h = tar::Header::new_ustar();
    h.set_size(index.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "index.json", index.as_bytes())
        .unwrap();
    let lying = dir.path().join("lying.tar");
    std::fs::write(&lying, b.into_inner().unwrap()).unwrap();
    let out = berthctl(&d, "default", &["load", "-i", lying.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unexpected commit digest"),
        "{}",
        text(&out)
    );
    assert!(ctr(&d, &["images", "ls", "-q"]).trim().is_empty());
    assert!(ctr(&d, &["content", "ls", "-q"]).trim().is_empty());
}
