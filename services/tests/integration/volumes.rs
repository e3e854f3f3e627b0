//! Named volumes through `berth.volumes.v1`: create, get, list, removal refused while a
//! container of any namespace uses the volume, remove, prune.

use std::os::unix::fs::PermissionsExt as _;

use berth_proto::berth::volumes::v1::{
    CreateVolumeRequest, GetVolumeRequest, ListVolumesRequest, PruneVolumesRequest,
    RemoveVolumeRequest, volumes_client::VolumesClient,
};
use containerd_client::{
    services::v1::{
        Container, CreateContainerRequest, DeleteContainerRequest, container::Runtime,
        containers_client::ContainersClient,
    },
    tonic::{Code, transport::Channel},
};

use crate::{
    daemon::{Daemon, ns},
    tasks::{busybox, can_run, ctr},
};

const VOLUMES_LABEL: &str = "berth.io/volumes";

fn create(name: &str, labels: &[(&str, &str)], anonymous: bool) -> CreateVolumeRequest {
    CreateVolumeRequest {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        anonymous,
    }
}

async fn names(client: &mut VolumesClient<Channel>, filters: &[&str]) -> Vec<String> {
    let req = ListVolumesRequest {
        filters: filters.iter().map(|f| f.to_string()).collect(),
        with_size: false,
    };
    let mut names: Vec<String> = client
        .list(ns("default", req))
        .await
        .unwrap()
        .into_inner()
        .volumes
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    names
}

/// Creates container `id` in `namespace` through the API, using `volumes`.
async fn api_container(ch: &Channel, namespace: &str, id: &str, volumes: &str) {
    let container = Container {
        id: id.to_string(),
        labels: [(VOLUMES_LABEL.to_string(), volumes.to_string())].into(),
        runtime: Some(Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: b"{}".to_vec(),
        }),
        ..Default::default()
    };
    ContainersClient::new(ch.clone())
        .create(ns(
            namespace,
            CreateContainerRequest {
                container: Some(container),
            },
        ))
        .await
        .expect("create container");
}

#[tokio::test(flavor = "multi_thread")]
async fn volumes_lifecycle_and_in_use_refusal() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut client = VolumesClient::new(ch.clone());

    // Create: named, idempotent, anonymous; bad names refused.
    let v1 = client
        .create(ns("default", create("v1", &[("env", "prod")], false)))
        .await
        .unwrap()
        .into_inner();
    let data = d.root().join("volumes/v1/_data");
    assert_eq!(v1.mountpoint, data.display().to_string());
    assert_eq!(v1.size, -1);
    assert!(v1.used_by.is_empty() && !v1.anonymous);
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(d.root().join("volumes"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let again = client
        .create(ns("default", create("v1", &[("env", "dev")], true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again, v1,
        "creating an existing volume returns it unchanged"
    );
    let anon = client
        .create(ns("default", create("", &[], true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(anon.name.len(), 64);
    assert!(anon.anonymous);
    for bad in ["../escape", "a/b", ".hidden", "x"] {
        let err = client
            .create(ns("default", create(bad, &[], false)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
    assert!(!d.root().join("escape").exists());
    client
        .create(ns("default", create("v2", &[], false)))
        .await
        .unwrap();

    // Get and list.
    std::fs::write(data.join("file"), vec![7u8; 1234]).unwrap();
    let got = client
        .get(ns(
            "default",
            GetVolumeRequest {
                name: "v1".into(),
                with_size: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.size, 1234);
    assert_eq!(got.labels.get("env").map(String::as_str), Some("prod"));
    let missing = client
        .get(ns(
            "default",
            GetVolumeRequest {
                name: "nope".into(),
                with_size: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(names(&mut client, &["labels.env==prod"]).await, ["v1"]);
    assert_eq!(names(&mut client, &[]).await.len(), 3);

    // In use: by a ctr container in "default" and an API container in another namespace.
    let image = busybox(&d);
    ctr(
        &d,
        &[
            "c",
            "create",
            "--label",
            &format!("{VOLUMES_LABEL}=v1,v2"),
            &image,
            "c1",
        ],
    );
    api_container(&ch, "other", "c2", "v1").await;
    let v1 = client
        .get(ns(
            "default",
            GetVolumeRequest {
                name: "v1".into(),
                with_size: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.used_by, ["c1", "other/c2"]);
    assert_eq!(names(&mut client, &["dangling==false"]).await, ["v1", "v2"]);
    assert_eq!(
        names(&mut client, &["dangling==true"]).await,
        std::slice::from_ref(&anon.name)
    );
    let refused = client
        .remove(ns(
            "default",
            RemoveVolumeRequest {
                name: "v1".into(),
                force: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("volume v1 is in use by container(s) c1, c2"),
        "{}",
        refused.message()
    );
    assert!(data.join("file").exists());

    // Prune: anonymous unused ones only, then every unused one.
    let pruned = client
        .prune(ns("default", PruneVolumesRequest { all: false }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pruned.removed, std::slice::from_ref(&anon.name));
    let pruned = client
        .prune(ns("default", PruneVolumesRequest { all: true }))
        .await
        .unwrap()
        .into_inner();
    assert!(pruned.removed.is_empty(), "{:?}", pruned.removed);

    // Once the containers are gone, the volumes go.
    ctr(&d, &["c", "rm", "c1"]);
    ContainersClient::new(ch.clone())
        .delete(ns("other", DeleteContainerRequest { id: "c2".into() }))
        .await
        .unwrap();
    client
        .remove(ns(
            "default",
            RemoveVolumeRequest {
                name: "v2".into(),
                force: false,
            },
        ))
        .await
        .unwrap();
    let pruned = client
        .prune(ns("default", PruneVolumesRequest { all: true }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pruned.removed, ["v1"]);
    assert_eq!(pruned.space_reclaimed, 1234);
    assert!(!data.exists());
    let gone = client
        .remove(ns(
            "default",
            RemoveVolumeRequest {
                name: "v1".into(),
                force: true,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(names(&mut client, &[]).await.is_empty());
}
