//! Namespaces through `ctr` and gRPC.

use std::collections::HashMap;

use containerd_client::{
    services::v1::{DeleteNamespaceRequest, namespaces_client::NamespacesClient},
    tonic::{Code, Request},
};

use crate::{
    content::put,
    ctr_or_skip,
    daemon::{Daemon, lease},
};

fn run(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().expect("run ctr");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn ctr_namespaces_create_label_ls_rm() {
    let d = Daemon::start();
    let (ok, _, err) = run(&mut ctr_or_skip!(
        d,
        &["namespaces", "create", "team-a", "tier=gold"]
    ));
    assert!(ok, "{err}");
    let (ok, _, err) = run(&mut ctr_or_skip!(
        d,
        &["namespaces", "label", "team-a", "owner=ops"]
    ));
    assert!(ok, "{err}");
    let (ok, out, err) = run(&mut ctr_or_skip!(d, &["namespaces", "ls"]));
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.starts_with("team-a")).expect(&out);
    assert!(
        line.contains("tier=gold") && line.contains("owner=ops"),
        "{line}"
    );
    // Creating it twice is refused.
    let (ok, _, err) = run(&mut ctr_or_skip!(d, &["namespaces", "create", "team-a"]));
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, err) = run(&mut ctr_or_skip!(d, &["namespaces", "rm", "team-a"]));
    assert!(ok, "{err}");
    assert!(out.contains("team-a"));
    let (_, out, _) = run(&mut ctr_or_skip!(d, &["namespaces", "ls", "-q"]));
    assert!(!out.lines().any(|l| l == "team-a"), "{out}");
}

#[tokio::test]
async fn a_namespace_holding_content_cannot_be_removed() {
    let d = Daemon::start();
    let ch = d.channel().await;
    lease(&ch, "busy", "keep").await;
    put(&ch, "busy", Some("keep"), "r", b"payload", HashMap::new())
        .await
        .unwrap();
    let err = NamespacesClient::new(ch.clone())
        .delete(Request::new(DeleteNamespaceRequest {
            name: "busy".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("namespace \"busy\" must be empty, but it still has blobs"),
        "{err}"
    );
    let (ok, _, stderr) = run(&mut ctr_or_skip!(d, &["namespaces", "rm", "busy"]));
    assert!(!ok);
    assert!(stderr.contains("must be empty"), "{stderr}");
}
