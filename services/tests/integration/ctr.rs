//! Debian's `ctr` (containerd 1.6) against berthd, unmodified.

use std::{
    io::{BufRead, BufReader, Write},
    process::Stdio,
    time::Duration,
};

use containerd_client::services::v1::{ListStatusesRequest, content_client::ContentClient};
use sha2::{Digest as _, Sha256};

use crate::{
    content::{blob, digest_of},
    ctr_or_skip,
    daemon::{Daemon, ns, text},
};

#[test]
fn ctr_version_and_plugins() {
    let d = Daemon::start();
    let out = ctr_or_skip!(d, &["version"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("Server:") && t.contains("+berth."), "{t}");
    let out = ctr_or_skip!(d, &["plugins", "ls"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for (kind, id) in [
        ("io.containerd.grpc.v1", "content"),
        ("io.containerd.grpc.v1", "namespaces"),
        ("io.containerd.grpc.v1", "leases"),
        ("io.containerd.grpc.v1", "events"),
        ("io.containerd.grpc.v1", "introspection"),
        ("io.containerd.content.v1", "content"),
        ("io.containerd.gc.v1", "scheduler"),
    ] {
        assert!(
            t.lines()
                .any(|l| l.starts_with(kind) && l.split_whitespace().nth(1) == Some(id)),
            "{kind} {id} missing:\n{t}"
        );
    }
}

/// `ctr content ingest` with `data` on stdin as a regular file (so ctr can seek to resume).
fn ingest(d: &Daemon, reference: &str, data: &[u8], digest: &str) -> std::process::Output {
    let size = data.len().to_string();
    let path = d.dir.path().join(format!("ingest-{reference}.bin"));
    std::fs::write(&path, data).unwrap();
    let out = ctr_or_skip_cmd(
        d,
        &[
            "content",
            "ingest",
            "--expected-digest",
            digest,
            "--expected-size",
            &size,
            reference,
        ],
    )
    .stdin(std::fs::File::open(&path).unwrap())
    .output()
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    out
}

fn ctr_or_skip_cmd(d: &Daemon, args: &[&str]) -> std::process::Command {
    d.ctr(args).expect("ctr installed (checked by the caller)")
}

#[test]
fn ctr_content_ingest_ls_get_and_bad_digest() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let data = blob(24 << 20, 11);
    let digest = digest_of(&data);
    let out = ingest(&d, "ingest-1", &data, &digest);
    assert!(out.status.success(), "{}", text(&out));
    let out = d.ctr(&["content", "ls"]).unwrap().output().unwrap();
    assert!(text(&out).contains(&digest), "{}", text(&out));
    let out = d
        .ctr(&["content", "get", &digest])
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(hex::encode(Sha256::digest(&out.stdout)), digest[7..]);

    // A wrong expected digest fails and leaves no blob.
    let other = blob(1 << 20, 12);
    let wrong = digest_of(b"not this");
    let out = ingest(&d, "ingest-2", &other, &wrong);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unexpected commit digest"),
        "{}",
        text(&out)
    );
    let out = d.ctr(&["content", "ls", "-q"]).unwrap().output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !listed.contains(&digest_of(&other)) && !listed.contains(&wrong),
        "{listed}"
    );
    let blobs = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256");
    assert!(!blobs.join(&digest_of(&other)[7..]).exists());
}

#[tokio::test]
async fn ctr_ingest_resumes_after_berthd_is_killed() {
    let mut d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let data = blob(64 << 20, 13);
    let digest = digest_of(&data);
    let size = data.len().to_string();
    let mut child = d
        .ctr(&[
            "content",
            "ingest",
            "--expected-digest",
            &digest,
            "--expected-size",
            &size,
            "crash-ref",
        ])
        .unwrap()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..20 << 20]).unwrap();
    stdin.flush().unwrap();
    // Wait until the daemon holds some of it, then crash the daemon mid-ingest.
    let ch = d.channel().await;
    let mut offset = 0;
    for _ in 0..200 {
        let st = ContentClient::new(ch.clone())
            .list_statuses(ns("default", ListStatusesRequest { filters: vec![] }))
            .await
            .unwrap()
            .into_inner()
            .statuses;
        offset = st.first().map(|s| s.offset).unwrap_or(0);
        if offset > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(offset > 0, "ingest never started");
    d.kill();
    drop(stdin);
    let _ = child.wait();
    d.restart();

    let out = d.ctr(&["content", "active"]).unwrap().output().unwrap();
    assert!(text(&out).contains("crash-ref"), "{}", text(&out));
    let out = ingest(&d, "crash-ref", &data, &digest);
    assert!(out.status.success(), "{}", text(&out));
    let out = d
        .ctr(&["content", "get", &digest])
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&out.stdout)), digest[7..]);
    let out = d.ctr(&["content", "active"]).unwrap().output().unwrap();
    assert!(!text(&out).contains("crash-ref"), "{}", text(&out));
}

#[test]
fn ctr_events_shows_changes_made_by_another_client() {
    let d = Daemon::start();
    let mut events = ctr_or_skip!(d, &["events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Give the subscription a moment to be in place, then change things from another client.
    let mut seen = Vec::new();
    for attempt in 0..20 {
        let name = format!("evt{attempt}");
        let out = d
            .ctr(&["namespaces", "create", &name])
            .unwrap()
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen.push(line);
            break;
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    let line = seen.first().expect("no event seen");
    assert!(line.contains("/namespaces/create"), "{line}");
}
