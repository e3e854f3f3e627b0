//! Daemon-side pulls through `berthctl pull` (berth.transfer.v1): the same result as ctr's
//! client-side pull, platform selection, and registry authentication.

use crate::{
    ctr_or_skip,
    daemon::{Daemon, berthctl, ctr_ok, text},
    registry::{Entry, Registry, layout_dir, write_layout, write_multi_platform_layout},
};

fn ctr_ns(d: &Daemon, ns: &str, args: &[&str]) -> String {
    let mut full = vec!["--namespace", ns];
    full.extend_from_slice(args);
    ctr_ok(d, &full)
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn berthctl_pull_matches_ctr_pull() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_layout(
        &layout,
        "1",
        &[
            vec![
                Entry::Dir("etc/"),
                Entry::File("etc/hello", b"hi\n"),
                Entry::File("etc/gone", b"x"),
            ],
            vec![Entry::Whiteout("etc/gone"), Entry::File("etc/new", b"n")],
            vec![Entry::Symlink("etc/link", "hello")],
        ],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/same");
    let image = format!("{}/lab/same:1", reg.addr);
    ctr_ns(&d, "viactr", &["images", "pull", "--plain-http", &image]);
    let out = berthctl(&d, "viaberth", &["pull", "--plain-http", &image]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("unpacked"), "{}", text(&out));

    let a = ctr_ns(&d, "viactr", &["images", "ls"]);
    let b = ctr_ns(&d, "viaberth", &["images", "ls"]);
    assert_eq!(a, b, "image records differ");
    let a = sorted_lines(&ctr_ns(&d, "viactr", &["content", "ls"]));
    let b = sorted_lines(&ctr_ns(&d, "viaberth", &["content", "ls"]));
    assert_eq!(a, b, "content differs");
    let a = ctr_ns(&d, "viactr", &["snapshots", "ls"]);
    let b = ctr_ns(&d, "viaberth", &["snapshots", "ls"]);
    assert_eq!(sorted_lines(&a), sorted_lines(&b), "snapshot chains differ");
    assert_eq!(sorted_lines(&a).len(), 3);
    // The chain is rooted for collection by the image (via config labels).
    let out = berthctl(&d, "viaberth", &["version"]);
    assert!(out.status.success());
}

#[test]
fn berthctl_pull_picks_platforms() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    write_multi_platform_layout(&layout, "1", &["linux/amd64", "linux/arm64"]);
    reg.push_layout(&layout, "1", "lab/multi");
    let image = format!("{}/lab/multi:1", reg.addr);
    let out = berthctl(&d, "amd", &["pull", "--plain-http", &image]);
    assert!(out.status.success(), "{}", text(&out));
    let out = berthctl(
        &d,
        "arm",
        &["pull", "--plain-http", "--platform", "linux/arm64", &image],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Each namespace holds the index, one manifest, one config, one layer.
    for ns in ["amd", "arm"] {
        assert_eq!(
            sorted_lines(&ctr_ns(&d, ns, &["content", "ls"])).len(),
            4,
            "{ns}"
        );
    }
    let amd = sorted_lines(&ctr_ns(&d, "amd", &["snapshots", "ls"]));
    let arm = sorted_lines(&ctr_ns(&d, "arm", &["snapshots", "ls"]));
    assert_ne!(amd, arm, "both platforms unpacked the same layer");
}

#[test]
fn berthctl_pull_with_basic_auth() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start_with_auth(Some(("alice", "s3cret"))) else {
        return;
    };
    let (_tmp, layout) = layout_dir();
    write_layout(
        &layout,
        "1",
        &[vec![Entry::File("secret", b"x")]],
        "linux/amd64",
    );
    reg.push_layout_as(&layout, "1", "lab/private", Some("alice:s3cret"));
    let image = format!("{}/lab/private:1", reg.addr);
    let out = berthctl(&d, "default", &["pull", "--plain-http", &image]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("authentication required") || t.contains("unauthorized"),
        "{t}"
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berthctl");
    let out = std::process::Command::new(bin)
        .arg("--address")
        .arg(d.socket())
        .args(["pull", "--plain-http", "--user", "alice", &image])
        .env("BERTH_REGISTRY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // containerd's own client, authenticating itself, pulls into berthd as well.
    let out = d
        .ctr(&["-n", "viactr", "images", "pull", "--plain-http", &image])
        .unwrap()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = d
        .ctr(&[
            "-n",
            "viactr",
            "images",
            "pull",
            "--plain-http",
            "--user",
            "alice:s3cret",
            &image,
        ])
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn berthctl_push_to_another_repository_and_pull_back() {
    let d = Daemon::start();
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    let manifest = write_layout(
        &layout,
        "1",
        &[
            vec![Entry::File("a", b"a")],
            vec![Entry::File("b", &[7u8; 100_000])],
        ],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/origin");
    let src = format!("{}/lab/origin:1", reg.addr);
    let dst = format!("{}/lab/copy:2", reg.addr);
    let out = berthctl(&d, "default", &["pull", "--plain-http", &src]);
    assert!(out.status.success(), "{}", text(&out));
    let out = berthctl(&d, "default", &["push", "--plain-http", &src, &dst]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pushed {manifest}")),
        "{}",
        text(&out)
    );
    // Pull it back elsewhere: the same manifest digest.
    let out = berthctl(&d, "back", &["pull", "--plain-http", &dst]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = ctr_ns(&d, "back", &["images", "ls"]);
    assert!(
        listed.contains(&dst) && listed.contains(&manifest),
        "{listed}"
    );
    // Pushing an index keeps it an index.
    let (_tmp2, multi) = layout_dir();
    let index = write_multi_platform_layout(&multi, "1", &["linux/amd64", "linux/arm64"]);
    reg.push_layout(&multi, "1", "lab/multi-src");
    let msrc = format!("{}/lab/multi-src:1", reg.addr);
    let out = berthctl(
        &d,
        "default",
        &[
            "pull",
            "--plain-http",
            "--platform",
            "all",
            "--skip-unpack",
            &msrc,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mdst = format!("{}/lab/multi-dst:1", reg.addr);
    let out = berthctl(&d, "default", &["push", "--plain-http", &msrc, &mdst]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pushed {index}")),
        "{}",
        text(&out)
    );
}

#[test]
fn credentials_come_from_the_configured_docker_config() {
    use base64::Engine as _;
    let d = Daemon::start_with_config("[registry]\ndocker_config = \"{dir}/docker.json\"\n");
    let _ = ctr_or_skip!(d, &["version"]);
    let Some(reg) = Registry::start_with_auth(Some(("bob", "hunter2"))) else {
        return;
    };
    let (_tmp, layout) = layout_dir();
    write_layout(&layout, "1", &[vec![Entry::File("f", b"f")]], "linux/amd64");
    reg.push_layout_as(&layout, "1", "lab/conf", Some("bob:hunter2"));
    let image = format!("{}/lab/conf:1", reg.addr);
    let out = berthctl(&d, "default", &["pull", "--plain-http", &image]);
    assert!(!out.status.success(), "pulled without credentials");
    // `berthctl login` writes the docker config the daemon reads.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berthctl");
    let config = d.dir.path().join("docker.json");
    let mut login = std::process::Command::new(&bin)
        .args(["login", "--username", "bob", "--password-stdin", "--config"])
        .arg(&config)
        .arg(&reg.addr)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(login.stdin.as_mut().unwrap(), b"hunter2\n").unwrap();
    assert!(login.wait().unwrap().success());
    let stored = std::fs::read_to_string(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:hunter2");
    assert!(stored.contains(&auth), "{stored}");
    let out = berthctl(&d, "default", &["pull", "--plain-http", &image]);
    assert!(out.status.success(), "{}", text(&out));
    let out = std::process::Command::new(&bin)
        .args(["logout", "--config"])
        .arg(&config)
        .arg(&reg.addr)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!std::fs::read_to_string(&config).unwrap().contains(&auth));
}

/// A loopback TCP proxy to `upstream` that sends the upstream's bytes at `bytes_per_sec`.
async fn slow_proxy(upstream: String, bytes_per_sec: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let pause = std::time::Duration::from_secs_f64(n as f64 / bytes_per_sec as f64);
                    tokio::time::sleep(pause).await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_interrupted_by_a_daemon_crash_resumes_where_it_stopped() {
    let mut d = Daemon::start();
    if d.ctr(&["version"]).is_none() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let (_tmp, layout) = layout_dir();
    // 24 MiB that gzip cannot shrink.
    let mut noise = vec![0u8; 24 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    write_layout(
        &layout,
        "1",
        &[vec![Entry::File("noise", &noise)]],
        "linux/amd64",
    );
    reg.push_layout(&layout, "1", "lab/big");
    let proxy = slow_proxy(reg.addr.clone(), 6 << 20).await;
    let image = format!("{proxy}/lab/big:1");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berthctl");
    let mut pull = std::process::Command::new(&bin)
        .arg("--address")
        .arg(d.socket())
        .args(["pull", "--plain-http", &image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until part of the layer is stored, then crash the daemon.
    let mut offset = 0;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let out = d.ctr(&["content", "active"]).unwrap().output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(line) = t.lines().find(|l| l.starts_with("layer-")) {
            let mb: f64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.trim_end_matches("MB").trim_end_matches("kB").parse().ok())
                .unwrap_or(0.0);
            if mb > 1.0 {
                offset = 1;
                break;
            }
        }
    }
    assert!(offset > 0, "the layer never started downloading");
    d.kill();
    let _ = pull.wait();
    d.restart();
    let out = d.ctr(&["content", "active"]).unwrap().output().unwrap();
    let active = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        active.contains("layer-sha256:"),
        "partial ingest lost: {active}"
    );
    // Pulling again finishes the same ingest (HTTP Range from its offset) and verifies it.
    let out = std::process::Command::new(&bin)
        .arg("--address")
        .arg(d.socket())
        .args(["pull", "--plain-http", &image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = d.ctr(&["content", "active"]).unwrap().output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("layer-"));
    // One committed layer. (The crashed pull's half-applied snapshot stays until its lease
    // expires, as in containerd.)
    let out = d.ctr(&["snapshots", "ls"]).unwrap().output().unwrap();
    let snaps = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        snaps.lines().filter(|l| l.contains("Committed")).count(),
        1,
        "{snaps}"
    );
}
