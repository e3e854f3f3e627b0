//! Bad task requests get containerd's codes, clear messages, and leave nothing behind.

use containerd_client::{
    services::v1::{
        Container, CreateContainerRequest, CreateTaskRequest, DeleteProcessRequest,
        ExecProcessRequest, GetRequest, KillRequest, container::Runtime,
        containers_client::ContainersClient, tasks_client::TasksClient,
    },
    tonic::Code,
};
use prost_types::Any;

use crate::{
    daemon::{Daemon, ns, text},
    tasks::{busybox, can_run, ctr, ctr_out, sweep},
};

const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn bundles(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(
        d.dir
            .path()
            .join("state/io.containerd.runtime.v2.task/default"),
    )
    .map(|e| {
        e.filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    })
    .unwrap_or_default()
}

async fn container(d: &Daemon, id: &str, spec: &[u8], snapshot_key: &str) {
    let mut containers = ContainersClient::new(d.channel().await);
    containers
        .create(ns(
            "default",
            CreateContainerRequest {
                container: Some(Container {
                    id: id.into(),
                    runtime: Some(Runtime {
                        name: "io.containerd.runc.v2".into(),
                        options: None,
                    }),
                    spec: Some(Any {
                        type_url: SPEC_URL.into(),
                        value: spec.to_vec(),
                    }),
                    snapshotter: if snapshot_key.is_empty() {
                        String::new()
                    } else {
                        "overlayfs".into()
                    },
                    snapshot_key: snapshot_key.into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();
}

fn create(id: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        container_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_task_requests_get_containerd_codes() {
    if !can_run() {
        return;
    }
    let d = Daemon::start_with_config(
        "[runtime.shims]\n\"io.containerd.gone.v2\" = \"/nonexistent/containerd-shim-gone-v2\"\n",
    );
    let image = busybox(&d);
    let mut tasks = TasksClient::new(d.channel().await);

    // Unknown image: ctr's own error.
    let out = ctr_out(&d, &["run", "--rm", "busybox:nope", "x", "true"]);
    assert!(
        !out.status.success() && text(&out).contains("not found"),
        "{}",
        text(&out)
    );

    // Unknown runtime and missing shim binary: NotFound naming the binary.
    for (runtime, binary) in [
        ("io.containerd.nosuch.v2", "containerd-shim-nosuch-v2"),
        (
            "io.containerd.gone.v2",
            "/nonexistent/containerd-shim-gone-v2",
        ),
    ] {
        let id = format!("rt-{}", runtime.split('.').nth(2).unwrap());
        let out = ctr_out(
            &d,
            &["run", "-d", "--runtime", runtime, &image, &id, "true"],
        );
        assert!(!out.status.success());
        assert!(text(&out).contains(binary), "{}", text(&out));
        assert!(text(&out).contains("not found"), "{}", text(&out));
        ctr(&d, &["c", "rm", &id]);
    }

    // No such container.
    let e = tasks
        .create(ns("default", create("ghost")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // Invalid spec JSON.
    container(&d, "badspec", b"{not json", "").await;
    let e = tasks
        .create(ns("default", create("badspec")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("spec"), "{e:?}");

    // Unknown snapshot key.
    container(&d, "nosnap", b"{}", "no-such-key").await;
    let e = tasks
        .create(ns("default", create("nosnap")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(bundles(&d).is_empty(), "{:?}", bundles(&d));

    // Duplicate container and task.
    ctr(&d, &["run", "-d", &image, "dup", "sleep", "1000"]);
    let out = ctr_out(&d, &["run", "-d", &image, "dup", "sleep", "1000"]);
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let e = tasks
        .create(ns("default", create("dup")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(e.message().contains("task dup"), "{e:?}");

    // Duplicate exec id.
    let exec = ExecProcessRequest {
        container_id: "dup".into(),
        exec_id: "e1".into(),
        spec: Some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: br#"{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#
                .to_vec(),
        }),
        ..Default::default()
    };
    tasks.exec(ns("default", exec.clone())).await.unwrap();
    let e = tasks.exec(ns("default", exec)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    tasks
        .delete_process(ns(
            "default",
            DeleteProcessRequest {
                container_id: "dup".into(),
                exec_id: "e1".into(),
            },
        ))
        .await
        .unwrap();

    // Unknown processes.
    let e = tasks
        .kill(ns(
            "default",
            KillRequest {
                container_id: "dup".into(),
                exec_id: "nope".into(),
                signal: 9,
                all: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = tasks
        .get(ns(
            "default",
            GetRequest {
                container_id: "ghost".into(),
                exec_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    sweep(&d, &["dup".to_string()]);
    assert!(bundles(&d).is_empty(), "{:?}", bundles(&d));
}
