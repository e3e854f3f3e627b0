//! Leases and garbage collection.

use std::{collections::HashMap, time::Duration};

use containerd_client::{
    services::v1::{
        AddResourceRequest, CreateRequest, DeleteContentRequest, DeleteRequest, ListRequest,
        ListResourcesRequest, Resource, content_client::ContentClient, leases_client::LeasesClient,
    },
    tonic::Code,
};

use crate::{
    content::{blob, digest_of, info_code, put},
    ctr_or_skip,
    daemon::{Daemon, ns},
};

#[tokio::test]
async fn leased_content_survives_gc_until_the_lease_goes() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut leases = LeasesClient::new(ch.clone());
    leases
        .create(ns(
            "default",
            CreateRequest {
                id: "hold".into(),
                labels: HashMap::new(),
            },
        ))
        .await
        .unwrap();
    let held = blob(10_000, 1);
    let loose = blob(10_000, 2);
    let rooted = blob(10_000, 3);
    let child = blob(10_000, 4);
    put(&ch, "default", Some("hold"), "held", &held, HashMap::new())
        .await
        .unwrap();
    put(&ch, "default", None, "loose", &loose, HashMap::new())
        .await
        .unwrap();
    put(&ch, "default", None, "child", &child, HashMap::new())
        .await
        .unwrap();
    let root_labels = HashMap::from([
        ("containerd.io/gc.root".to_string(), "yes".to_string()),
        (
            "containerd.io/gc.ref.content.0".to_string(),
            digest_of(&child),
        ),
    ]);
    put(&ch, "default", None, "rooted", &rooted, root_labels)
        .await
        .unwrap();

    let resources = leases
        .list_resources(ns("default", ListResourcesRequest { id: "hold".into() }))
        .await
        .unwrap()
        .into_inner()
        .resources;
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].r#type, "content");
    assert_eq!(resources[0].id, digest_of(&held));

    // A synchronous delete of another lease runs a full collection before returning.
    leases
        .create(ns(
            "default",
            CreateRequest {
                id: "tmp".into(),
                labels: HashMap::new(),
            },
        ))
        .await
        .unwrap();
    leases
        .delete(ns(
            "default",
            DeleteRequest {
                id: "tmp".into(),
                sync: true,
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        info_code(&ch, "default", &digest_of(&loose)).await,
        Code::NotFound
    );
    assert_eq!(info_code(&ch, "default", &digest_of(&held)).await, Code::Ok);
    assert_eq!(
        info_code(&ch, "default", &digest_of(&rooted)).await,
        Code::Ok
    );
    assert_eq!(
        info_code(&ch, "default", &digest_of(&child)).await,
        Code::Ok
    );
    let blobs = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256");
    assert!(!blobs.join(&digest_of(&loose)[7..]).exists());

    leases
        .delete(ns(
            "default",
            DeleteRequest {
                id: "hold".into(),
                sync: true,
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        info_code(&ch, "default", &digest_of(&held)).await,
        Code::NotFound
    );
    assert!(!blobs.join(&digest_of(&held)[7..]).exists());
}

#[tokio::test]
async fn deleted_content_is_collected_after_a_delete() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut leases = LeasesClient::new(ch.clone());
    leases
        .create(ns(
            "default",
            CreateRequest {
                id: "l".into(),
                labels: HashMap::new(),
            },
        ))
        .await
        .unwrap();
    let data = blob(5000, 5);
    put(&ch, "default", Some("l"), "r", &data, HashMap::new())
        .await
        .unwrap();
    ContentClient::new(ch.clone())
        .delete(ns(
            "default",
            DeleteContentRequest {
                digest: digest_of(&data),
            },
        ))
        .await
        .unwrap();
    let path = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256")
        .join(&digest_of(&data)[7..]);
    for _ in 0..100 {
        if !path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("blob of deleted content still on disk");
}

#[tokio::test]
async fn an_expiring_lease_stops_protecting_content() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut leases = LeasesClient::new(ch.clone());
    let expire = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
    leases
        .create(ns(
            "default",
            CreateRequest {
                id: "short".into(),
                labels: HashMap::from([(
                    "containerd.io/gc.expire".to_string(),
                    expire.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )]),
            },
        ))
        .await
        .unwrap();
    let data = blob(1000, 6);
    put(&ch, "default", Some("short"), "r", &data, HashMap::new())
        .await
        .unwrap();
    for _ in 0..150 {
        if info_code(&ch, "default", &digest_of(&data)).await == Code::NotFound {
            let left = leases
                .list(ns("default", ListRequest { filters: vec![] }))
                .await
                .unwrap()
                .into_inner()
                .leases;
            assert!(left.is_empty(), "expired lease still listed");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("content of an expired lease was not collected");
}

#[tokio::test]
async fn lease_resources_and_filters() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut leases = LeasesClient::new(ch.clone());
    for (id, team) in [("a", "x"), ("b", "y")] {
        leases
            .create(ns(
                "default",
                CreateRequest {
                    id: id.into(),
                    labels: HashMap::from([("team".to_string(), team.to_string())]),
                },
            ))
            .await
            .unwrap();
    }
    let err = leases
        .create(ns(
            "default",
            CreateRequest {
                id: "a".into(),
                labels: HashMap::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let listed = leases
        .list(ns(
            "default",
            ListRequest {
                filters: vec!["labels.team==y".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .leases;
    assert_eq!(
        listed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    let add = |kind: &str, id: &str| AddResourceRequest {
        id: "a".into(),
        resource: Some(Resource {
            id: id.into(),
            r#type: kind.into(),
        }),
    };
    leases
        .add_resource(ns("default", add("snapshots/overlayfs", "k1")))
        .await
        .unwrap();
    let bad = leases
        .add_resource(ns("default", add("content", "not-a-digest")))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let missing = leases
        .add_resource(ns(
            "default",
            AddResourceRequest {
                id: "nope".into(),
                resource: Some(Resource {
                    id: "k".into(),
                    r#type: "ingests".into(),
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn ctr_leases_create_ls_rm() {
    let d = Daemon::start();
    let out = ctr_or_skip!(d, &["leases", "create", "--id", "mine", "--expires", "1h"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctr_or_skip!(d, &["leases", "ls"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("mine") && l.contains("containerd.io/gc.expire")),
        "{text}"
    );
    let out = ctr_or_skip!(d, &["leases", "rm", "--sync", "mine"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctr_or_skip!(d, &["leases", "ls", "-q"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
