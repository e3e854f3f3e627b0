//! SIGKILL at arbitrary points leaves a consistent store.

use std::{collections::HashMap, time::Duration};

use containerd_client::services::v1::{
    CreateNamespaceRequest, CreateRequest, Namespace, leases_client::LeasesClient,
    namespaces_client::NamespacesClient,
};
use containerd_client::tonic::Request;
use sha2::{Digest as _, Sha256};

use crate::{
    content::{blob, list, put, read_all},
    daemon::{Daemon, ns},
};

#[tokio::test]
async fn killing_the_daemon_mid_writes_leaves_a_consistent_store() {
    let mut d = Daemon::start();
    for round in 0..3u8 {
        let ch = d.channel().await;
        LeasesClient::new(ch.clone())
            .create(ns(
                "default",
                CreateRequest {
                    id: format!("l{round}"),
                    labels: HashMap::new(),
                },
            ))
            .await
            .unwrap();
        // Writers that will be cut off mid-flight.
        let mut tasks = Vec::new();
        for i in 0..6u8 {
            let ch = ch.clone();
            tasks.push(tokio::spawn(async move {
                let data = blob(3 << 20, round * 16 + i);
                let _ = put(
                    &ch,
                    "default",
                    Some(&format!("l{round}")),
                    &format!("r{round}-{i}"),
                    &data,
                    HashMap::new(),
                )
                .await;
                let _ = NamespacesClient::new(ch)
                    .create(Request::new(CreateNamespaceRequest {
                        namespace: Some(Namespace {
                            name: format!("ns{round}x{i}"),
                            labels: HashMap::new(),
                        }),
                    }))
                    .await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(40 + 30 * round as u64)).await;
        d.kill();
        for t in tasks {
            let _ = t.await;
        }
        d.restart();
        // Every blob the store lists reads back whole and matches its digest.
        let ch = d.channel().await;
        for digest in list(&ch, "default", &[]).await {
            let bytes = read_all(&ch, "default", &digest, 0, 0).await.unwrap();
            assert_eq!(
                format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
                digest
            );
        }
        // And no blob file lies on disk without a record (after the start-up collection).
        let blobs = d
            .root()
            .join("io.containerd.content.v1.content/blobs/sha256");
        let listed = list(&ch, "default", &[]).await;
        for entry in std::fs::read_dir(&blobs).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                listed.contains(&format!("sha256:{name}")),
                "orphan blob {name}"
            );
        }
    }
}
