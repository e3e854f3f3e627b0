//! Security properties checked end to end: who may reach berthd's and the shims' sockets, and
//! what a container is allowed to do (capabilities, seccomp, no-new-privileges, masked paths),
//! whether its spec comes from `ctr` or from Berth's own spec builder.

use std::{
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use berth_spec::{SPEC_TYPE_URL, SpecBuilder, to_json};
use containerd_client::services::v1::{
    Container, GetContainerRequest, UpdateContainerRequest, containers_client::ContainersClient,
};
use prost_types::{Any, FieldMask};

use crate::{
    daemon::{Daemon, ns, text},
    tasks::{busybox, can_run, ctr, ctr_out, kill_and_remove, run_detached, sweep},
};

const BERTH: &str = "io.containerd.berth.v2";

/// Docker's default capability set (the same 14 capabilities ctr's default spec has), as
/// `/proc/<pid>/status` prints it.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// The shim's socket path of task `id` in namespace `default`, from its bundle's `address`.
fn shim_socket(d: &Daemon, id: &str) -> PathBuf {
    let address = d
        .dir
        .path()
        .join("state/io.containerd.runtime.v2.task/default")
        .join(id)
        .join("address");
    let address = std::fs::read_to_string(&address)
        .unwrap_or_else(|e| panic!("read {}: {e}", address.display()));
    let address = address.trim();
    PathBuf::from(
        address
            .strip_prefix("unix://")
            .unwrap_or_else(|| panic!("shim address {address:?} is not unix://")),
    )
}

/// Paths of the sockets listed in `/proc/net/unix` of this network namespace (abstract ones
/// start with `@`).
fn unix_socket_paths() -> Vec<String> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7).map(str::to_string))
        .collect()
}

#[test]
fn api_socket_is_root_only() {
    let d = Daemon::start();
    let meta = std::fs::metadata(d.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    let mode = meta.permissions().mode() & 0o777;
    assert_eq!(
        mode & !0o660,
        0,
        "API socket mode {mode:o} is wider than 0660"
    );
    assert_eq!(meta.uid(), 0, "API socket owned by uid {}", meta.uid());
    // The shims' events socket next to it is root's alone.
    let events = PathBuf::from(format!("{}.ttrpc", d.socket().display()));
    let meta = std::fs::metadata(&events).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    assert_eq!(mode & !0o600, 0, "events socket mode {mode:o}");
}

#[test]
fn shim_socket_is_a_private_filesystem_socket() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let id = "sock-mode";
    run_detached(&d, BERTH, &image, id, &[], &["sleep", "1000"]);
    let socket = shim_socket(&d, id);
    assert!(
        socket.starts_with("/run/containerd/s/"),
        "shim socket at {}",
        socket.display()
    );
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(
        meta.file_type().is_socket(),
        "{} is no socket",
        socket.display()
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "shim socket mode");
    assert_eq!(meta.uid(), 0);
    let dir = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        dir.permissions().mode() & 0o077,
        0,
        "socket directory open to others"
    );
    // Listed as a filesystem socket, and nowhere as an abstract one (`@…`).
    let listed = unix_socket_paths();
    let path = socket.display().to_string();
    let name = socket.file_name().unwrap().to_string_lossy().into_owned();
    assert!(listed.contains(&path), "{path} not in /proc/net/unix");
    let abstract_: Vec<_> = listed
        .iter()
        .filter(|p| p.starts_with('@') && (p.contains(&name) || p.contains("containerd-shim")))
        .collect();
    assert!(abstract_.is_empty(), "abstract shim sockets: {abstract_:?}");
    kill_and_remove(&d, id);
}

/// A static program that tries to connect to each address given (a path, or `@name` for an
/// abstract one) and prints `<address> connected` or `<address> refused: <errno>`.
const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        size_t n = strlen(argv[i]);
        if (n >= sizeof sa.sun_path) n = sizeof sa.sun_path - 1;
        memcpy(sa.sun_path, argv[i], n);
        socklen_t len = offsetof(struct sockaddr_un, sun_path) + n;
        if (argv[i][0] == '@') sa.sun_path[0] = 0; /* abstract: leading NUL, no terminator */
        else len += 1;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) == 0)
            printf("%s connected\n", argv[i]);
        else
            printf("%s refused: %s\n", argv[i], strerror(errno));
        if (fd >= 0) close(fd);
    }
    return 0;
}
"#;

/// Builds [`PROBE_C`] as a static binary in `dir` (None when no C compiler can).
fn build_probe(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    std::fs::write(&src, PROBE_C).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-O1", "-include", "stddef.h", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("cannot build the socket probe: {}", text(&out));
        return None;
    }
    Some(bin)
}

#[test]
fn shim_socket_is_unreachable_from_a_host_network_container() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let Some(probe) = build_probe(d.dir.path()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs cc and a static libc"
        );
        return;
    };
    let target = "shim-target";
    run_detached(&d, BERTH, &image, target, &[], &["sleep", "1000"]);
    let socket = shim_socket(&d, target).display().to_string();
    // The probe itself must work: berthd's API socket, bind-mounted in, is reachable.
    let api = d.socket().display().to_string();
    let mount_probe = format!(
        "type=bind,src={},dst=/probe,options=rbind:ro",
        probe.display()
    );
    let mount_api = format!("type=bind,src={api},dst=/api.sock,options=rbind");
    let abstract_addr = format!("@{socket}");
    let out = ctr(
        &d,
        &[
            "run",
            "--rm",
            "--net-host",
            "--runtime",
            BERTH,
            "--mount",
            &mount_probe,
            "--mount",
            &mount_api,
            &image,
            "probe",
            "/probe",
            "/api.sock",
            &socket,
            &abstract_addr,
        ],
    );
    let line = |addr: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{addr} ")))
            .unwrap_or_else(|| panic!("no probe result for {addr}: {out}"))
            .to_string()
    };
    assert!(line("/api.sock").ends_with("connected"), "{out}");
    assert!(line(&socket).contains("refused"), "{out}");
    assert!(line(&abstract_addr).contains("refused"), "{out}");
    kill_and_remove(&d, target);
}

/// `/proc/self/status` fields and whether `/proc/kcore` is masked, as seen by a container's
/// process.
const REPORT: &str = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                      echo kcore=$(cat /proc/kcore | wc -c); \
                      grep -c ' /proc/sys proc ro' /proc/mounts; true";

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

/// The effective capabilities a spec asks for, as the hex mask `/proc/…/status` prints.
fn spec_caps(spec: &serde_json::Value) -> String {
    let names = spec["process"]["capabilities"]["effective"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mask = names.iter().fold(0u64, |m, n| {
        let n = n.as_str().unwrap();
        m | 1 << cap_number(n).unwrap_or_else(|| panic!("unknown capability {n}"))
    });
    format!("{mask:016x}")
}

fn cap_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// Checks what the container reports against what its spec asked for.
fn assert_honoured(what: &str, spec: &serde_json::Value, out: &str) {
    assert_eq!(field(out, "CapEff"), spec_caps(spec), "{what}: {out}");
    let nnp = spec["process"]["noNewPrivileges"]
        .as_bool()
        .unwrap_or(false);
    assert_eq!(
        field(out, "NoNewPrivs"),
        if nnp { "1" } else { "0" },
        "{what}: {out}"
    );
    let seccomp = !spec["linux"]["seccomp"].is_null();
    assert_eq!(
        field(out, "Seccomp"),
        if seccomp { "2" } else { "0" },
        "{what}: {out}"
    );
    let masked = spec["linux"]["maskedPaths"]
        .as_array()
        .is_some_and(|m| m.iter().any(|p| p == "/proc/kcore"));
    if masked {
        assert_eq!(
            field(out, "kcore="),
            "0",
            "{what}: /proc/kcore readable: {out}"
        );
    }
    let readonly = spec["linux"]["readonlyPaths"]
        .as_array()
        .is_some_and(|m| m.iter().any(|p| p == "/proc/sys"));
    if readonly {
        assert_eq!(
            out.lines().last(),
            Some("1"),
            "{what}: /proc/sys writable: {out}"
        );
    }
}

fn container_spec(d: &Daemon, id: &str) -> serde_json::Value {
    let info: serde_json::Value =
        serde_json::from_str(&ctr(d, &["containers", "info", id])).unwrap();
    info["Spec"].clone()
}

#[test]
fn ctr_specs_are_honoured() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    // The report runs as a script file: ctr would take a command's `-c` for its own flag.
    let script = d.dir.path().join("report.sh");
    std::fs::write(&script, REPORT).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/report.sh,options=rbind:ro",
        script.display()
    );
    for (id, flags) in [
        ("ctr-default", &[][..]),
        ("ctr-seccomp", &["--seccomp"][..]),
        (
            "ctr-caps",
            &["--cap-drop", "CAP_NET_RAW", "--cap-add", "CAP_SYS_ADMIN"][..],
        ),
    ] {
        let mut args = vec![
            "containers",
            "create",
            "--runtime",
            BERTH,
            "--mount",
            &mount,
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&image, id, "sh", "/report.sh"]);
        ctr(&d, &args);
        let spec = container_spec(&d, id);
        let out = ctr_out(&d, &["task", "start", id]);
        assert!(out.status.success(), "{id}: {}", text(&out));
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_honoured(id, &spec, &out);
        if id == "ctr-default" {
            // ctr's default set is Docker's.
            assert_eq!(field(&out, "CapEff"), DOCKER_CAPS, "{out}");
        }
        if id == "ctr-seccomp" {
            assert_eq!(field(&out, "Seccomp"), "2", "{out}");
        }
        // `ctr task start` deleted the task once it exited.
        ctr(&d, &["containers", "rm", id]);
    }
}

/// Replaces container `id`'s spec with one from Berth's spec builder.
async fn set_spec(d: &Daemon, id: &str, spec: Vec<u8>) {
    let mut containers = ContainersClient::new(d.channel().await);
    let mut c: Container = containers
        .get(ns("default", GetContainerRequest { id: id.to_string() }))
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    c.spec = Some(Any {
        type_url: SPEC_TYPE_URL.to_string(),
        value: spec,
    });
    containers
        .update(ns(
            "default",
            UpdateContainerRequest {
                container: Some(c),
                update_mask: Some(FieldMask {
                    paths: vec!["spec".into()],
                }),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_spec_defaults_hold_in_the_container() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let mut ids = Vec::new();
    for (id, nnp) in [("berth-default", false), ("berth-nnp", true)] {
        ctr(
            &d,
            &["containers", "create", "--runtime", BERTH, &image, id],
        );
        let mut builder = SpecBuilder::new("default", id).args(["sh", "-c", REPORT]);
        if nnp {
            builder = builder.no_new_privileges();
        }
        let spec = builder.build().unwrap();
        set_spec(&d, id, to_json(&spec).unwrap()).await;
        ids.push(id.to_string());
        let spec = container_spec(&d, id);
        let out = ctr_out(&d, &["task", "start", id]);
        assert!(out.status.success(), "{id}: {}", text(&out));
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_honoured(id, &spec, &out);
        // Berth's defaults: Docker's capabilities, its seccomp profile, masked /proc/kcore.
        assert_eq!(field(&out, "CapEff"), DOCKER_CAPS, "{out}");
        assert_eq!(field(&out, "Seccomp"), "2", "{out}");
        assert_eq!(field(&out, "kcore="), "0", "{out}");
        assert_eq!(
            field(&out, "NoNewPrivs"),
            if nnp { "1" } else { "0" },
            "{out}"
        );
        ctr(&d, &["containers", "rm", id]);
    }
    sweep(&d, &ids);
}
