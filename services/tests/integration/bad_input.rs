//! Malformed requests get containerd's error codes, never a panic or partial state.

use std::collections::HashMap;

use containerd_client::{
    services::v1::{
        AbortRequest, CreateNamespaceRequest, CreateRequest, InfoRequest, ListContentRequest,
        Namespace, ReadContentRequest, StatusRequest, WriteAction, WriteContentRequest,
        content_client::ContentClient, leases_client::LeasesClient,
        namespaces_client::NamespacesClient, version_client::VersionClient,
    },
    tonic::{Code, Request},
};
use tokio_stream::StreamExt;

use crate::{
    content::{Writer, blob, list},
    daemon::{Daemon, ns},
};

#[tokio::test]
async fn malformed_digests_are_invalid_arguments() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut c = ContentClient::new(ch.clone());
    for bad in [
        "",
        "sha256:xyz",
        "md5:abc",
        "sha256:../../etc/passwd",
        "nonsense",
    ] {
        let err = c
            .info(ns("default", InfoRequest { digest: bad.into() }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err}");
        let err = match c
            .read(ns(
                "default",
                ReadContentRequest {
                    digest: bad.into(),
                    offset: 0,
                    size: 0,
                },
            ))
            .await
        {
            Err(e) => e,
            Ok(mut s) => s.get_mut().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err}");
    }
}

#[tokio::test]
async fn namespaces_are_required_and_validated() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut c = ContentClient::new(ch.clone());
    let err = c
        .status(Request::new(StatusRequest { r#ref: "x".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    let err = c
        .status(ns("bad/name", StatusRequest { r#ref: "x".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = NamespacesClient::new(ch.clone())
        .create(Request::new(CreateNamespaceRequest {
            namespace: Some(Namespace {
                name: "..".into(),
                labels: HashMap::new(),
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // An unknown namespace is simply empty.
    assert!(list(&ch, "never-made", &[]).await.is_empty());
}

#[tokio::test]
async fn empty_refs_bad_actions_and_unknown_ingests() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut w = Writer::open(&ch, "default", None).await;
    let err = w.stat("").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("first message must have a reference")
    );
    let mut w = Writer::open(&ch, "default", None).await;
    let err = w
        .send(WriteContentRequest {
            action: 99,
            r#ref: "r".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut w = Writer::open(&ch, "default", None).await;
    w.write("gap", 0, b"abc").await.unwrap();
    let err = w.write("gap", 10, b"def").await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    let mut c = ContentClient::new(ch.clone());
    let err = c
        .status(ns(
            "default",
            StatusRequest {
                r#ref: "missing".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .abort(ns(
            "default",
            AbortRequest {
                r#ref: "missing".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut w = Writer::open(&ch, "default", None).await;
    let err = w
        .send(WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: "r2".into(),
            expected: "sha256:zz".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn invalid_filters_and_oversized_labels() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut c = ContentClient::new(ch.clone());
    for bad in ["labels.", "name==", "==x", "name~=/(/"] {
        let err = match c
            .list(ns(
                "default",
                ListContentRequest {
                    filters: vec![bad.into()],
                },
            ))
            .await
        {
            Err(e) => e,
            Ok(mut s) => s.get_mut().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err}");
    }
    let big = HashMap::from([("k".to_string(), "v".repeat(5000))]);
    let err = LeasesClient::new(ch.clone())
        .create(ns(
            "default",
            CreateRequest {
                id: "big".into(),
                labels: big.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let data = blob(100, 1);
    let mut w = Writer::open(&ch, "default", None).await;
    w.write("labels", 0, &data).await.unwrap();
    let err = w.commit("labels", 100, "", big).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(list(&ch, "default", &[]).await.is_empty());
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_daemon_stays_up() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut w = Writer::open(&ch, "default", None).await;
    let huge = vec![0u8; 17 << 20];
    let err = w.write("huge", 0, &huge).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            Code::ResourceExhausted
                | Code::OutOfRange
                | Code::Internal
                | Code::Unknown
                | Code::Cancelled
        ),
        "{err}"
    );
    let ch = d.channel().await;
    VersionClient::new(ch)
        .version(Request::new(()))
        .await
        .unwrap();
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_hurt_the_daemon() {
    use std::io::Write;
    let d = Daemon::start();
    // Not HTTP/2 at all, an HTTP/2 preface followed by junk frames, and a frame that claims a
    // huge length then hangs up.
    let payloads: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02garbage",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\x00\x00\x00\x00\x01\xff\xff\xff\xff",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x00\x00\x00\x00\x00\x01",
    ];
    for payload in payloads {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        let _ = s.write_all(payload);
        drop(s);
    }
    let ch = d.channel().await;
    VersionClient::new(ch)
        .version(Request::new(()))
        .await
        .unwrap();
}
