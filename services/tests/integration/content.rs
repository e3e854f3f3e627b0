//! Content service over gRPC: writes, commits, reads, resume after a crash, sharing between
//! namespaces.

use std::collections::HashMap;

use containerd_client::{
    services::v1::{
        DeleteContentRequest, InfoRequest, ListContentRequest, ReadContentRequest, StatusRequest,
        UpdateRequest, WriteAction, WriteContentRequest, WriteContentResponse,
        content_client::ContentClient,
    },
    tonic::{Code, Status, transport::Channel},
};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use crate::daemon::{Daemon, lease, ns, ns_lease};

pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Deterministic test bytes.
pub fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A client-side `Write` stream.
pub struct Writer {
    tx: mpsc::Sender<WriteContentRequest>,
    rx: containerd_client::tonic::Streaming<WriteContentResponse>,
    /// The offset the server last reported, sent with the commit as containerd's client does.
    pub offset: i64,
}

impl Writer {
    pub async fn open(ch: &Channel, namespace: &str, lease: Option<&str>) -> Writer {
        let (tx, rx) = mpsc::channel(4);
        let stream = ReceiverStream::new(rx);
        let req = match lease {
            Some(l) => ns_lease(namespace, l, stream),
            None => ns(namespace, stream),
        };
        // berthd answers with response headers at once; errors arrive on the stream.
        let rx = ContentClient::new(ch.clone())
            .write(req)
            .await
            .expect("write stream")
            .into_inner();
        Writer { tx, rx, offset: 0 }
    }

    pub async fn send(&mut self, req: WriteContentRequest) -> Result<WriteContentResponse, Status> {
        self.tx.send(req).await.expect("stream open");
        let resp = match self.rx.next().await {
            Some(r) => r?,
            None => return Err(Status::unknown("stream ended")),
        };
        self.offset = resp.offset;
        Ok(resp)
    }

    pub async fn stat(&mut self, reference: &str) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn write(
        &mut self,
        reference: &str,
        offset: i64,
        data: &[u8],
    ) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.into(),
            offset,
            data: data.to_vec(),
            ..Default::default()
        })
        .await
    }

    pub async fn commit(
        &mut self,
        reference: &str,
        total: i64,
        expected: &str,
        labels: HashMap<String, String>,
    ) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference.into(),
            offset: self.offset,
            total,
            expected: expected.into(),
            labels,
            ..Default::default()
        })
        .await
    }
}

/// Writes `data` as one blob through `ns`; returns the commit response.
pub async fn put(
    ch: &Channel,
    namespace: &str,
    lease: Option<&str>,
    reference: &str,
    data: &[u8],
    labels: HashMap<String, String>,
) -> Result<WriteContentResponse, Status> {
    let mut w = Writer::open(ch, namespace, lease).await;
    w.stat(reference).await?;
    let mut offset = 0i64;
    for chunk in data.chunks(1 << 20) {
        let r = w.write(reference, offset, chunk).await?;
        offset = r.offset;
    }
    w.commit(reference, data.len() as i64, &digest_of(data), labels)
        .await
}

pub async fn read_all(
    ch: &Channel,
    namespace: &str,
    digest: &str,
    offset: i64,
    size: i64,
) -> Result<Vec<u8>, Status> {
    let mut stream = ContentClient::new(ch.clone())
        .read(ns(
            namespace,
            ReadContentRequest {
                digest: digest.into(),
                offset,
                size,
            },
        ))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        assert_eq!(msg.offset, offset + out.len() as i64);
        out.extend_from_slice(&msg.data);
    }
    Ok(out)
}

pub async fn info_code(ch: &Channel, namespace: &str, digest: &str) -> Code {
    match ContentClient::new(ch.clone())
        .info(ns(
            namespace,
            InfoRequest {
                digest: digest.into(),
            },
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test]
async fn write_commit_read_round_trip() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let data = blob(3 << 20 | 123, 7);
    let labels = HashMap::from([("team".to_string(), "blue".to_string())]);
    lease(&ch, "default", "keep").await;
    let resp = put(&ch, "default", Some("keep"), "round-trip", &data, labels)
        .await
        .unwrap();
    assert_eq!(resp.digest, digest_of(&data));
    assert_eq!(resp.offset, data.len() as i64);

    let mut client = ContentClient::new(ch.clone());
    let info = client
        .info(ns(
            "default",
            InfoRequest {
                digest: digest_of(&data),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, data.len() as i64);
    assert_eq!(info.labels["team"], "blue");

    assert_eq!(
        read_all(&ch, "default", &digest_of(&data), 0, 0)
            .await
            .unwrap(),
        data
    );
    assert_eq!(
        read_all(&ch, "default", &digest_of(&data), 1000, 5000)
            .await
            .unwrap(),
        &data[1000..6000]
    );
    let past = read_all(&ch, "default", &digest_of(&data), data.len() as i64 + 1, 0).await;
    assert_eq!(past.unwrap_err().code(), Code::OutOfRange);

    // The blob is a read-only file named by its digest.
    let hex = digest_of(&data)[7..].to_string();
    let path = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256")
        .join(hex);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o444
    );

    // Filters select by label.
    let listed = list(&ch, "default", &[r#"labels."team"==blue"#]).await;
    assert_eq!(listed, vec![digest_of(&data)]);
    assert!(list(&ch, "default", &["labels.team==red"]).await.is_empty());

    // Label updates by field path.
    let mut info2 = info.clone();
    info2.labels = HashMap::from([("extra".to_string(), "1".to_string())]);
    let updated = client
        .update(ns(
            "default",
            UpdateRequest {
                info: Some(info2),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["labels.extra".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(updated.labels.len(), 2);
}

pub async fn list(ch: &Channel, namespace: &str, filters: &[&str]) -> Vec<String> {
    let mut stream = ContentClient::new(ch.clone())
        .list(ns(
            namespace,
            ListContentRequest {
                filters: filters.iter().map(|f| f.to_string()).collect(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.next().await {
        out.extend(msg.unwrap().info.into_iter().map(|i| i.digest));
    }
    out
}

#[tokio::test]
async fn wrong_digest_or_size_commits_nothing() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let data = blob(100_000, 1);
    let wrong = digest_of(b"something else");
    let mut w = Writer::open(&ch, "default", None).await;
    w.write("bad", 0, &data).await.unwrap();
    let err = w
        .commit("bad", data.len() as i64, &wrong, HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("unexpected commit digest"), "{err}");

    let mut w = Writer::open(&ch, "default", None).await;
    w.stat("bad").await.unwrap();
    let err = w.commit("bad", 5, "", HashMap::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("unexpected commit size"), "{err}");

    assert_eq!(
        info_code(&ch, "default", &digest_of(&data)).await,
        Code::NotFound
    );
    assert_eq!(info_code(&ch, "default", &wrong).await, Code::NotFound);
    let blobs = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256");
    assert_eq!(std::fs::read_dir(blobs).unwrap().count(), 0);
}

#[tokio::test]
async fn a_locked_ref_is_unavailable_to_a_second_writer() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let mut first = Writer::open(&ch, "default", None).await;
    first.write("shared-ref", 0, b"hello").await.unwrap();
    let mut second = Writer::open(&ch, "default", None).await;
    let err = second.stat("shared-ref").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // Another namespace's ref of the same name is a different ingest.
    let mut other = Writer::open(&ch, "other", None).await;
    other.stat("shared-ref").await.unwrap();
    drop(first);
    // A client that closes its stream and at once reopens the ref (containerd's own test suite
    // does) gets it, and resumes where it was.
    let mut again = Writer::open(&ch, "default", None).await;
    let st = again.stat("shared-ref").await.unwrap();
    assert_eq!(st.offset, 5);
}

#[tokio::test]
async fn a_partial_ingest_survives_a_crash_and_resumes() {
    let mut d = Daemon::start();
    let data = blob(5 << 20, 3);
    {
        let ch = d.channel().await;
        let mut w = Writer::open(&ch, "default", None).await;
        w.stat("resume-me").await.unwrap();
        w.write("resume-me", 0, &data[..2 << 20]).await.unwrap();
        d.kill();
    }
    d.restart();
    let ch = d.channel().await;
    let status = ContentClient::new(ch.clone())
        .status(ns(
            "default",
            StatusRequest {
                r#ref: "resume-me".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(status.offset, 2 << 20);
    let mut w = Writer::open(&ch, "default", None).await;
    let st = w.stat("resume-me").await.unwrap();
    assert_eq!(st.offset, 2 << 20);
    w.write("resume-me", st.offset, &data[2 << 20..])
        .await
        .unwrap();
    let done = w
        .commit(
            "resume-me",
            data.len() as i64,
            &digest_of(&data),
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(done.digest, digest_of(&data));
    assert_eq!(
        read_all(&ch, "default", &done.digest, 0, 0).await.unwrap(),
        data
    );
}

#[tokio::test]
async fn blobs_are_shared_but_visible_only_where_committed() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let data = blob(4096, 9);
    lease(&ch, "a", "keep").await;
    lease(&ch, "b", "keep").await;
    put(&ch, "a", Some("keep"), "x", &data, HashMap::new())
        .await
        .unwrap();
    assert_eq!(info_code(&ch, "b", &digest_of(&data)).await, Code::NotFound);
    // A writer in b with the expected digest finds the bytes already there.
    let mut w = Writer::open(&ch, "b", Some("keep")).await;
    let resp = w
        .send(WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: "y".into(),
            expected: digest_of(&data),
            total: data.len() as i64,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.offset, data.len() as i64);
    w.commit("y", data.len() as i64, &digest_of(&data), HashMap::new())
        .await
        .unwrap();
    assert_eq!(info_code(&ch, "b", &digest_of(&data)).await, Code::Ok);
    // Writing it again where it exists: AlreadyExists.
    let err = put(&ch, "a", Some("keep"), "z", &data, HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // Deleting from a leaves b's view intact.
    ContentClient::new(ch.clone())
        .delete(ns(
            "a",
            DeleteContentRequest {
                digest: digest_of(&data),
            },
        ))
        .await
        .unwrap();
    assert_eq!(info_code(&ch, "a", &digest_of(&data)).await, Code::NotFound);
    assert_eq!(
        read_all(&ch, "b", &digest_of(&data), 0, 0).await.unwrap(),
        data
    );
}
