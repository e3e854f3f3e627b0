//! berthctl's image transfers as people see them: per-layer progress bars on a terminal and
//! plain lines otherwise; a container's filesystem exported and imported back as an image.

use std::process::Command;

use crate::{
    daemon::{Daemon, berthctl, berthctl_bin, ok, text, which},
    registry::{Entry, Registry, layout_dir, write_layout},
    tasks::{busybox, can_run},
};

#[test]
fn cli_pull_shows_progress_bars_on_a_terminal_and_lines_otherwise() {
    let d = Daemon::start();
    let Some(reg) = Registry::start() else { return };
    if which("script").is_none() {
        eprintln!("skipping: script (bsdutils) not installed");
        return;
    }
    let (_tmp, layout) = layout_dir();
    let big = vec![7u8; 300_000];
    write_layout(
        &layout,
        "1",
        &[
            vec![Entry::Dir("etc/"), Entry::File("etc/a", b"a")],
            vec![Entry::File("big", &big)],
        ],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/progress");
    let image = format!("{}/lab/progress:1", reg.addr);

    // On a terminal (script gives berthctl a pty): one bar per layer, with sizes.
    let command = format!(
        "{} --address {} pull --plain-http {image}",
        berthctl_bin().display(),
        d.socket().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("[=============================="),
        "no bar drawn: {shown}"
    );
    assert!(shown.contains("unpacked"), "{shown}");
    assert!(shown.contains("KiB"), "no sizes: {shown}");

    // Without a terminal: plain lines a script can read, no escape sequences.
    ok(berthctl(&d, "default", &["rmi", &image]));
    let plain = ok(berthctl(&d, "default", &["pull", "--plain-http", &image]));
    assert!(plain.contains("fetched sha256:"), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "escape sequences in plain output: {plain}"
    );
}

#[test]
fn cli_export_then_import_round_trips_a_container_filesystem() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    ok(berthctl(
        &d,
        "default",
        &[
            "run",
            "--name",
            "src",
            &image,
            "sh",
            "-c",
            "echo made > /made",
        ],
    ));
    let tar = d.dir.path().join("exported.tar");
    ok(berthctl(
        &d,
        "default",
        &["export", "-o", tar.to_str().unwrap(), "src"],
    ));
    ok(berthctl(
        &d,
        "default",
        &["import", tar.to_str().unwrap(), "example.com/exported:1"],
    ));
    let out = ok(berthctl(
        &d,
        "default",
        &["run", "--rm", "example.com/exported:1", "cat", "/made"],
    ));
    assert_eq!(out.trim(), "made");
    ok(berthctl(&d, "default", &["rm", "src"]));
}
