//! `berthctl` looking at containers and images, and moving files in and out: ps, inspect,
//! top, stats, cp (with hostile symlinks in the container), commit, export, images, tag, rmi.
//! Containers are made with Debian's `ctr` (a name is the `berth.io/name` label).

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Output, Stdio},
};

use crate::{
    daemon::{Daemon, berth_shim_dir, berthctl, berthctl_bin, ok, text},
    tasks::{
        busybox, can_run, ctr, eventually, kill_and_remove, run_detached, runtimes, sweep,
        task_status,
    },
};

/// Berth's shim when built, else the first runtime available.
fn runtime() -> &'static str {
    if berth_shim_dir().is_some() {
        "io.containerd.berth.v2"
    } else {
        runtimes()[0]
    }
}

/// `berthctl` with `input` on its standard input.
fn berthctl_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(berthctl_bin())
        .arg("--address")
        .arg(d.socket())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berthctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("berthctl output")
}

/// Runs berthctl in namespace `default`; it must succeed. Returns stdout.
fn bctl(d: &Daemon, args: &[&str]) -> String {
    ok(berthctl(d, "default", args))
}

/// Runs berthctl; it must fail. Returns stdout and stderr.
fn bctl_fails(d: &Daemon, args: &[&str]) -> String {
    let out = berthctl(d, "default", args);
    assert!(
        !out.status.success(),
        "berthctl {args:?} succeeded: {}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    text(&out)
}

/// A tar of symlinks pointing at `host_dir` (absolute, and climbing out with `..`).
fn hostile_tar(host_dir: &Path) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let links = [
        ("evil", host_dir.join("sentinel").display().to_string()),
        ("absdir", host_dir.display().to_string()),
        (
            "evildir",
            format!("../../../../../../../..{}", host_dir.display()),
        ),
    ];
    for (name, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, name, target).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A tar with one file, `name` (written raw: it may contain `..`).
fn file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    tar.append(&h, data).unwrap();
    tar.into_inner().unwrap()
}

/// The entry names of a tar archive.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn cli_inspect_ps_inspect_top_stats() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let rt = runtime();
    let ids: Vec<String> = ["ps-web", "ps-idle", "ps-quit"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    run_detached(
        &d,
        rt,
        &image,
        "ps-web",
        &["--label", "berth.io/name=web", "--label", "tier=front"],
        &["sleep", "1000"],
    );
    ctr(
        &d,
        &[
            "c",
            "create",
            "--label",
            "berth.io/name=idle",
            &image,
            "ps-idle",
            "true",
        ],
    );
    run_detached(
        &d,
        rt,
        &image,
        "ps-quit",
        &["--label", "berth.io/name=quitter"],
        &["sh", "-c", "exit 3"],
    );
    eventually(10, "quitter stopped", || {
        task_status(&d, "ps-quit").as_deref() == Some("STOPPED")
    });

    // ps: running only by default, -a for all, -q, filters, formats.
    let table = bctl(&d, &["ps"]);
    assert!(table.starts_with("CONTAINER ID"), "{table}");
    assert!(
        table.contains("web") && table.contains("\"sleep 1000\""),
        "{table}"
    );
    assert!(table.contains("Up "), "{table}");
    assert!(
        !table.contains("idle") && !table.contains("quitter"),
        "{table}"
    );
    let all = bctl(&d, &["ps", "-a"]);
    for name in ["web", "idle", "quitter"] {
        assert!(all.contains(name), "{all}");
    }
    assert!(all.contains("Exited (3) "), "{all}");
    assert!(all.contains("Created"), "{all}");
    let mut quiet: Vec<String> = bctl(&d, &["ps", "-a", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    quiet.sort();
    assert_eq!(quiet, vec!["ps-idle", "ps-quit", "ps-web"]);
    assert_eq!(
        bctl(&d, &["ps", "-a", "--filter", "status=exited", "-q"]).trim(),
        "ps-quit"
    );
    assert_eq!(
        bctl(
            &d,
            &[
                "ps",
                "-a",
                "--filter",
                "label=tier=front",
                "--format",
                "{{.Names}}"
            ]
        )
        .trim(),
        "web"
    );
    assert_eq!(
        bctl(
            &d,
            &["ps", "-a", "-f", "name=idl", "-f", "status=created", "-q"]
        )
        .trim(),
        "ps-idle"
    );
    let json: Vec<serde_json::Value> = bctl(&d, &["ps", "-a", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), 3);
    let web = json.iter().find(|v| v["Names"] == "web").unwrap();
    assert_eq!(web["State"], "running");
    assert_eq!(web["Image"], "busybox:1");
    assert_eq!(web["Labels"]["tier"], "front");
    assert!(
        web["RunningFor"].as_str().unwrap().ends_with(" ago"),
        "{web}"
    );
    let template = bctl(
        &d,
        &[
            "ps",
            "--format",
            "{{.Names}}:{{.State}}:{{index .Labels \"tier\"}}",
        ],
    );
    assert_eq!(template.trim(), "web:running:front");
    assert_eq!(
        bctl(&d, &["ps", "-a", "--last", "1", "-q"]).lines().count(),
        1
    );
    let usage = bctl_fails(&d, &["ps", "--filter", "colour=red"]);
    assert!(usage.contains("unsupported filter"), "{usage}");
    // before/since name a container (ps-web, ps-idle, ps-quit were made in that order);
    // exited= matches the exit code.
    let listed = |args: &[&str]| {
        let mut v: Vec<String> = bctl(&d, args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(&["ps", "-a", "-q", "--filter", "before=idle"]),
        ["ps-web"]
    );
    assert_eq!(
        listed(&["ps", "-a", "-q", "--filter", "since=web"]),
        ["ps-idle", "ps-quit"]
    );
    assert_eq!(
        listed(&[
            "ps",
            "-a",
            "-q",
            "-f",
            "since=ps-web",
            "-f",
            "before=ps-quit"
        ]),
        ["ps-idle"]
    );
    assert_eq!(listed(&["ps", "-q", "--filter", "exited=3"]), ["ps-quit"]);
    assert!(listed(&["ps", "-q", "--filter", "exited=4"]).is_empty());
    let missing = bctl_fails(&d, &["ps", "--filter", "before=nobody"]);
    assert!(missing.contains("no such container: nobody"), "{missing}");

    // inspect: docker-shaped JSON.
    let line = bctl(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}}|{{.Name}}|{{.Config.Image}}",
            "web",
        ],
    );
    assert_eq!(line.trim(), "running|/web|busybox:1");
    let full: serde_json::Value = serde_json::from_str(&bctl(&d, &["inspect", "web", "quitter"]))
        .expect("inspect prints a JSON array");
    let web = &full[0];
    assert_eq!(web["Id"], "ps-web");
    assert!(web["State"]["Pid"].as_u64().unwrap() > 0, "{web}");
    assert_eq!(web["State"]["Running"], true);
    assert_eq!(web["Path"], "sleep");
    assert_eq!(web["Args"][0], "1000");
    assert_eq!(web["Driver"], "overlayfs");
    assert!(
        web["Image"].as_str().unwrap().starts_with("sha256:"),
        "{web}"
    );
    assert_eq!(web["HostConfig"]["RestartPolicy"]["Name"], "no");
    let quit = &full[1];
    assert_eq!(quit["State"]["Status"], "exited");
    assert_eq!(quit["State"]["ExitCode"], 3);
    assert_ne!(quit["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    let missing = bctl_fails(&d, &["inspect", "--type", "container", "nope"]);
    assert!(missing.contains("no such container: nope"), "{missing}");

    // top: the host's view of the container's processes.
    let top = bctl(&d, &["top", "web"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    let stopped = bctl_fails(&d, &["top", "idle"]);
    assert!(stopped.contains("not running"), "{stopped}");

    // stats: one reading with a memory figure.
    let stats = bctl(&d, &["stats", "--no-stream", "web"]);
    assert!(stats.contains("MEM USAGE / LIMIT"), "{stats}");
    let row = stats.lines().nth(1).unwrap_or_default();
    assert!(row.contains("web") && row.contains("iB / "), "{stats}");
    let json: serde_json::Value =
        serde_json::from_str(bctl(&d, &["stats", "--no-stream", "--format", "json"]).trim())
            .unwrap();
    assert_eq!(json["Name"], "web");
    assert_ne!(json["PIDs"], "0");
    sweep(&d, &ids);
}

#[test]
fn cli_inspect_cp_confined_to_the_container() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    run_detached(
        &d,
        runtime(),
        &image,
        "cp-run",
        &["--label", "berth.io/name=live"],
        &["sleep", "1000"],
    );
    ctr(
        &d,
        &[
            "c",
            "create",
            "--label",
            "berth.io/name=cold",
            &image,
            "cp-cold",
            "true",
        ],
    );
    let host = d.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let sentinel = host.join("sentinel");
    std::fs::write(&sentinel, "original").unwrap();
    let payload = d.dir.path().join("payload.txt");
    std::fs::write(&payload, "from the host").unwrap();
    let payload = payload.to_str().unwrap().to_string();
    let out = d.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    for name in ["live", "cold"] {
        // Plant hostile symlinks through a tar stream.
        let planted = berthctl_stdin(&d, &["cp", "-", &format!("{name}:/")], &hostile_tar(&host));
        assert!(planted.status.success(), "{}", text(&planted));

        // Normal copies both ways.
        bctl(&d, &["cp", &payload, &format!("{name}:/tmp/")]);
        bctl(&d, &["cp", &payload, &format!("{name}:/renamed.txt")]);
        let back = out.join(format!("{name}-back.txt"));
        bctl(
            &d,
            &[
                "cp",
                &format!("{name}:/renamed.txt"),
                back.to_str().unwrap(),
            ],
        );
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host");
        let etc = out.join(format!("{name}-etc"));
        bctl(&d, &["cp", &format!("{name}:/etc"), etc.to_str().unwrap()]);
        assert!(etc.join("passwd").is_file(), "{name}: /etc copied");
        let stream = berthctl(
            &d,
            "default",
            &["cp", &format!("{name}:/tmp/payload.txt"), "-"],
        );
        assert!(stream.status.success(), "{}", text(&stream));
        assert_eq!(tar_names(&stream.stdout), vec!["payload.txt"]);

        // Without -L a symlink is copied as a symlink (never followed on the host side).
        let link_copy = out.join(format!("{name}-evil"));
        bctl(
            &d,
            &["cp", &format!("{name}:/evil"), link_copy.to_str().unwrap()],
        );
        assert_eq!(std::fs::read_link(&link_copy).unwrap(), sentinel);

        // Hostile reads and writes fail inside the container's root.
        let target = out.join(format!("{name}-stolen"));
        let target = target.to_str().unwrap();
        bctl_fails(&d, &["cp", "-L", &format!("{name}:/evil"), target]);
        bctl_fails(&d, &["cp", &format!("{name}:/evildir/sentinel"), target]);
        bctl_fails(&d, &["cp", &format!("{name}:/absdir/sentinel"), target]);
        assert!(!Path::new(target).exists());
        bctl_fails(&d, &["cp", &payload, &format!("{name}:/evildir/sentinel")]);
        bctl_fails(&d, &["cp", &payload, &format!("{name}:/absdir/")]);
        bctl_fails(&d, &["cp", &payload, &format!("{name}:/evildir/new-file")]);
        let through = berthctl_stdin(
            &d,
            &["cp", "-", &format!("{name}:/evildir")],
            &file_tar("pwned", b"x"),
        );
        assert!(!through.status.success(), "{}", text(&through));
        let climbing = berthctl_stdin(
            &d,
            &["cp", "-", &format!("{name}:/tmp")],
            &file_tar("../../../../../../escaped", b"x"),
        );
        assert!(!climbing.status.success(), "{}", text(&climbing));

        // Nothing outside was touched.
        assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "original");
        let listing: Vec<_> = std::fs::read_dir(&host).unwrap().collect();
        assert_eq!(listing.len(), 1, "new files next to the sentinel");
        assert!(!Path::new("/escaped").exists());
    }
    // The running container sees what was copied in.
    let seen = ctr(
        &d,
        &[
            "t",
            "exec",
            "--exec-id",
            "cat1",
            "cp-run",
            "cat",
            "/tmp/payload.txt",
        ],
    );
    assert_eq!(seen, "from the host");
    kill_and_remove(&d, "cp-run");
    ctr(&d, &["c", "rm", "cp-cold"]);
}

#[test]
fn cli_inspect_commit_export_images() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let rt = runtime();
    run_detached(
        &d,
        rt,
        &image,
        "ci-web",
        &["--label", "berth.io/name=web"],
        &["sleep", "1000"],
    );
    ctr(
        &d,
        &[
            "t",
            "exec",
            "--exec-id",
            "w1",
            "ci-web",
            "sh",
            "-c",
            "echo committed > /marker",
        ],
    );

    // commit: a new image whose containers see the change.
    let id = bctl(
        &d,
        &[
            "commit",
            "-m",
            "add marker",
            "-a",
            "tester",
            "web",
            "lab/web:2",
        ],
    );
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let inspected = bctl(&d, &["image", "inspect", "-f", "{{.Id}}", "lab/web:2"]);
    assert_eq!(inspected.trim(), id);
    let img: serde_json::Value =
        serde_json::from_str(&bctl(&d, &["inspect", "--type", "image", "lab/web:2"])).unwrap();
    assert_eq!(img[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(img[0]["RepoTags"][0], "lab/web:2");
    assert_eq!(img[0]["Author"], "tester");
    assert_eq!(img[0]["Comment"], "add marker");
    assert_eq!(img[0]["Os"], "linux");
    let marker = ctr(
        &d,
        &[
            "run",
            "--rm",
            "--runtime",
            rt,
            "docker.io/lab/web:2",
            "ci-check",
            "cat",
            "/marker",
        ],
    );
    assert_eq!(marker.trim(), "committed");
    assert_eq!(
        bctl(&d, &["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "running",
        "commit resumes the paused container"
    );

    // export: the container's filesystem as a tar.
    let exported = d.dir.path().join("web.tar");
    bctl(&d, &["export", "-o", exported.to_str().unwrap(), "web"]);
    let names = tar_names(&std::fs::read(&exported).unwrap());
    assert!(names.iter().any(|n| n == "marker"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("proc/")),
        "mounts left out"
    );
    let stdout = berthctl(&d, "default", &["export", "web"]);
    assert!(stdout.status.success(), "{}", text(&stdout));
    assert!(tar_names(&stdout.stdout).iter().any(|n| n == "marker"));

    // images: table, -q, --digests, filters.
    let table = bctl(&d, &["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table.contains("lab/web") && table.contains("busybox"),
        "{table}"
    );
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert!(bctl(&d, &["images", "-q"]).lines().any(|l| l == short));
    let digests = bctl(&d, &["images", "--digests"]);
    assert!(
        digests.contains("DIGEST") && digests.contains("sha256:"),
        "{digests}"
    );
    assert_eq!(
        bctl(
            &d,
            &[
                "images",
                "--filter",
                "reference=lab/*",
                "--format",
                "{{.Repository}}:{{.Tag}}"
            ]
        )
        .trim(),
        "lab/web:2"
    );
    assert_eq!(
        bctl(&d, &["image", "ls", "--filter", "dangling=true", "-q"]).trim(),
        ""
    );
    let json: serde_json::Value =
        serde_json::from_str(bctl(&d, &["images", "--format", "json", "busybox"]).trim()).unwrap();
    assert_eq!(json["Tag"], "1");

    // tag and rmi.
    bctl(&d, &["tag", "lab/web:2", "lab/web:3"]);
    assert_eq!(
        bctl(&d, &["image", "inspect", "-f", "{{.Id}}", "lab/web:3"]).trim(),
        id
    );
    let busy = bctl_fails(&d, &["rmi", &image]);
    assert!(busy.contains("is using it"), "{busy}");
    let removed = bctl(&d, &["rmi", "lab/web:3"]);
    assert!(removed.contains("Untagged: lab/web:3"), "{removed}");
    assert!(
        !removed.contains("Deleted"),
        "lab/web:2 still names it: {removed}"
    );
    let removed = bctl(&d, &["image", "rm", "lab/web:2"]);
    assert!(removed.contains(&format!("Deleted: {id}")), "{removed}");
    bctl_fails(&d, &["image", "inspect", "lab/web:2"]);
    sweep(&d, &["ci-web".to_string()]);
}
