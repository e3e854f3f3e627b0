//! The daemon itself: socket permissions, identity across restarts, clean shutdown.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use containerd_client::{services::v1::introspection_client::IntrospectionClient, tonic::Request};

use crate::daemon::Daemon;

async fn uuid(d: &Daemon) -> String {
    IntrospectionClient::new(d.channel().await)
        .server(Request::new(()))
        .await
        .unwrap()
        .into_inner()
        .uuid
}

#[tokio::test]
async fn socket_is_0660_uuid_persists_and_sigterm_stops_cleanly() {
    let mut d = Daemon::start();
    let meta = std::fs::metadata(d.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let first = uuid(&d).await;
    assert_eq!(first.len(), 36);
    d.restart();
    assert_eq!(uuid(&d).await, first);
    let status = d.terminate();
    assert!(status.success(), "{status}");
    assert!(!d.socket().exists(), "socket left behind");
}

#[test]
fn config_default_prints_the_shipped_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/config.toml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), shipped);
}

#[test]
fn a_bad_config_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "rooot = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("rooot"),
        "{err}"
    );
}

#[tokio::test]
async fn grpc_health_reports_serving() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let d = Daemon::start();
    let status = HealthClient::new(d.channel().await)
        .check(Request::new(HealthCheckRequest {
            service: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn namespace_list_applies_its_filter() {
    use containerd_client::services::v1::{
        CreateNamespaceRequest, ListNamespacesRequest, Namespace,
        namespaces_client::NamespacesClient,
    };
    let d = Daemon::start();
    let mut c = NamespacesClient::new(d.channel().await);
    for (name, tier) in [("one", "gold"), ("two", "tin")] {
        c.create(Request::new(CreateNamespaceRequest {
            namespace: Some(Namespace {
                name: name.into(),
                labels: [("tier".to_string(), tier.to_string())].into(),
            }),
        }))
        .await
        .unwrap();
    }
    let got = c
        .list(Request::new(ListNamespacesRequest {
            filter: "labels.tier==gold".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .namespaces;
    assert_eq!(
        got.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["one"]
    );
}
