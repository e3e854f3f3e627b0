//! Against a real registry: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1.

use berth_proto::errdefs::Kind;
use bytes::Bytes;

use super::support::*;
use crate::registry::{
    Descriptor, Index, Manifest, ManifestDocument, Platform, Reference, RegistryClient,
    manifest::{self, media_types as mt},
    platform,
};

fn reference(reg: &LocalRegistry, path: &str) -> Reference {
    Reference::parse(&format!("{}/{path}", reg.addr)).unwrap()
}

/// Pushes a one-layer image under `r`'s tag; returns (manifest digest, manifest bytes,
/// layer bytes, config bytes).
async fn push_image(
    client: &RegistryClient,
    r: &Reference,
    seed: u64,
    platform: &str,
) -> (Descriptor, Vec<u8>, Vec<u8>) {
    let layer = data(256 * 1024 + seed as usize, seed);
    let p = Platform::parse(platform).unwrap();
    let config = format!(
        r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        p.architecture,
        p.os,
        digest(&layer)
    )
    .into_bytes();
    for blob in [&layer, &config] {
        client
            .push_blob(
                r,
                &digest(blob),
                blob.len() as u64,
                stream_of(blob, 4096),
                None,
            )
            .await
            .unwrap();
    }
    let m = Manifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor {
            media_type: mt::OCI_CONFIG.into(),
            digest: digest(&config),
            size: config.len() as i64,
            ..Descriptor::default()
        },
        layers: vec![Descriptor {
            media_type: mt::OCI_LAYER.into(),
            digest: digest(&layer),
            size: layer.len() as i64,
            ..Descriptor::default()
        }],
        subject: None,
        annotations: Default::default(),
    };
    let body = serde_json::to_vec(&m).unwrap();
    let d = client
        .push_manifest(r, mt::OCI_MANIFEST, Bytes::from(body.clone()))
        .await
        .unwrap();
    assert_eq!(d, digest(&body));
    let desc = Descriptor {
        media_type: mt::OCI_MANIFEST.into(),
        digest: d,
        size: body.len() as i64,
        platform: Some(p),
        ..Descriptor::default()
    };
    (desc, body, layer)
}

#[tokio::test]
async fn pushes_and_pulls_an_image() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    let client = client_for(&reg.addr, None);
    let r = reference(&reg, "berth/test:v1");
    let (desc, body, layer) = push_image(&client, &r, 1, "linux/amd64").await;
    assert_eq!(
        reg.count(&["PATCH"]),
        0,
        "small blobs go up in one PUT:\n{}",
        reg.log()
    );

    // Resolve by tag (HEAD) and by digest.
    let resolved = client.resolve(&r).await.unwrap();
    assert_eq!(resolved.media_type, mt::OCI_MANIFEST);
    assert_eq!(resolved.digest, desc.digest);
    assert_eq!(resolved.size, body.len() as i64);
    let by_digest = client
        .resolve(&r.with_digest(desc.digest.clone()))
        .await
        .unwrap();
    assert_eq!(by_digest.digest, desc.digest);

    // Fetch the manifest and every blob it names.
    let (media_type, bytes) = client.fetch_manifest(&r, &desc.digest).await.unwrap();
    assert_eq!(media_type, mt::OCI_MANIFEST);
    assert_eq!(&bytes[..], &body[..]);
    let ManifestDocument::Manifest(m) = manifest::parse(&media_type, &bytes).unwrap() else {
        panic!("expected a manifest");
    };
    let got = collect(client.fetch_blob(&r, &m.layers[0].digest, 0).await.unwrap())
        .await
        .unwrap();
    assert!(got == layer, "bytes differ");
    let config = collect(client.fetch_blob(&r, &m.config.digest, 0).await.unwrap())
        .await
        .unwrap();
    assert_eq!(digest(&config), m.config.digest);
    assert_eq!(
        client.blob_exists(&r, &m.layers[0].digest).await.unwrap(),
        Some(layer.len() as u64)
    );

    // Pushing a blob that is there already reads nothing and uploads nothing.
    let uploads = reg.count(&["POST"]);
    client
        .push_blob(
            &r,
            &digest(&layer),
            layer.len() as u64,
            futures::stream::once(async { panic!("the body must not be read") }),
            None,
        )
        .await
        .unwrap();
    assert_eq!(reg.count(&["POST"]), uploads);
}

#[tokio::test]
async fn reports_missing_things_and_bad_content() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    let client = client_for(&reg.addr, None);
    let r = reference(&reg, "berth/none:v1");
    let err = client.resolve(&r).await.unwrap_err();
    assert_eq!(err.kind, Kind::NotFound, "{err}");
    assert!(err.message.contains("berth/none:v1"), "{err}");
    let missing = digest(b"missing");
    assert_eq!(
        client.fetch_manifest(&r, &missing).await.unwrap_err().kind,
        Kind::NotFound
    );
    assert_eq!(
        client.fetch_blob(&r, &missing, 0).await.unwrap_err().kind,
        Kind::NotFound
    );
    assert_eq!(client.blob_exists(&r, &missing).await.unwrap(), None);

    // Content that does not match its declared digest or size is refused before commit.
    let blob = data(1000, 9);
    let err = client
        .push_blob(&r, &missing, 1000, stream_of(&blob, 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::DataLoss, "{err}");
    let err = client
        .push_blob(&r, &digest(&blob), 999, stream_of(&blob, 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition, "{err}");
    let err = client
        .push_blob(&r, &digest(&blob), 1001, stream_of(&blob, 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition, "{err}");
    assert_eq!(client.blob_exists(&r, &digest(&blob)).await.unwrap(), None);

    // A manifest naming blobs the registry does not have is refused by it.
    let orphan = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":7}},"layers":[]}}"#,
        mt::OCI_MANIFEST,
        mt::OCI_CONFIG,
        missing
    );
    let err = client
        .push_manifest(&r, mt::OCI_MANIFEST, Bytes::from(orphan))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind, Kind::FailedPrecondition | Kind::InvalidArgument),
        "{err:?}"
    );
    // Pushing by a digest that is not the content's is refused locally.
    let wrong = r.with_digest(missing.clone());
    let err = client
        .push_manifest(&wrong, mt::OCI_MANIFEST, Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::InvalidArgument);
}

#[tokio::test]
async fn chunked_push_and_resumed_fetch_of_a_large_blob() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    let client = client_for(&reg.addr, None);
    let r = reference(&reg, "berth/big:v1");
    let blob = data(40 << 20, 7);
    let d = digest(&blob);
    client
        .push_blob(&r, &d, blob.len() as u64, stream_of(&blob, 1 << 20), None)
        .await
        .unwrap();
    assert_eq!(
        reg.wait_count(&["PATCH", "status=202"], 3).await,
        3,
        "40 MiB in 16 MiB chunks:\n{}",
        reg.log()
    );
    assert_eq!(
        client.blob_exists(&r, &d).await.unwrap(),
        Some(blob.len() as u64)
    );

    let whole = client.fetch_blob(&r, &d, 0).await.unwrap();
    assert_eq!(whole.size(), Some(blob.len() as u64));
    assert_eq!(digest(&collect(whole).await.unwrap()), d);

    // Resume part way (the registry honours Range: 206).
    let offset = (30 << 20) + 123;
    let rest = client.fetch_blob(&r, &d, offset as u64).await.unwrap();
    assert_eq!(rest.size(), Some(blob.len() as u64));
    assert_eq!(rest.offset(), offset as u64);
    let got = collect(rest).await.unwrap();
    assert_eq!(got.len(), blob.len() - offset);
    assert!(got == blob[offset..], "resumed bytes differ");

    let err = client
        .fetch_blob(&r, &d, blob.len() as u64 + 10)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::OutOfRange, "{err}");
}

#[tokio::test]
async fn mounts_blobs_across_repositories() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    let client = client_for(&reg.addr, None);
    let a = reference(&reg, "berth/a:v1");
    let b = reference(&reg, "berth/b:v1");
    let blob = data(5000, 3);
    let d = digest(&blob);
    client
        .push_blob(&a, &d, blob.len() as u64, stream_of(&blob, 1000), None)
        .await
        .unwrap();
    assert_eq!(client.blob_exists(&b, &d).await.unwrap(), None);
    client
        .push_blob(
            &b,
            &d,
            blob.len() as u64,
            futures::stream::once(async { panic!("a mount reads no body") }),
            Some("berth/a"),
        )
        .await
        .unwrap();
    assert_eq!(
        reg.wait_count(&["POST", "mount=", "status=201"], 1).await,
        1,
        "{}",
        reg.log()
    );
    assert_eq!(
        client.blob_exists(&b, &d).await.unwrap(),
        Some(blob.len() as u64)
    );

    // Mounting from a repository without the blob falls back to an upload.
    let c = reference(&reg, "berth/c:v1");
    let other = data(3000, 4);
    client
        .push_blob(
            &c,
            &digest(&other),
            other.len() as u64,
            stream_of(&other, 1000),
            Some("berth/a"),
        )
        .await
        .unwrap();
    let got = collect(client.fetch_blob(&c, &digest(&other), 0).await.unwrap())
        .await
        .unwrap();
    assert!(got == other, "bytes differ");
}

#[tokio::test]
async fn resolves_an_index_and_selects_a_platform() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    let client = client_for(&reg.addr, None);
    let amd = reference(&reg, "berth/multi:amd64");
    let arm = reference(&reg, "berth/multi:arm64");
    let (amd_desc, _, _) = push_image(&client, &amd, 11, "linux/amd64").await;
    let (arm_desc, _, arm_layer) = push_image(&client, &arm, 12, "linux/arm64").await;
    let index = Index {
        schema_version: 2,
        media_type: Some(mt::OCI_INDEX.into()),
        manifests: vec![arm_desc.clone(), amd_desc.clone()],
        ..Index::default()
    };
    let body = serde_json::to_vec(&index).unwrap();
    let r = reference(&reg, "berth/multi:latest");
    client
        .push_manifest(&r, mt::OCI_INDEX, Bytes::from(body.clone()))
        .await
        .unwrap();

    let top = client.resolve(&r).await.unwrap();
    assert_eq!(top.media_type, mt::OCI_INDEX);
    let (media_type, bytes) = client.fetch_manifest(&r, &top.digest).await.unwrap();
    let ManifestDocument::Index(idx) = manifest::parse(&media_type, &bytes).unwrap() else {
        panic!("expected an index");
    };
    let host = Platform::host();
    let chosen = platform::select(&idx, &host).expect("an entry for the host");
    if host.architecture == "amd64" {
        assert_eq!(chosen.digest, amd_desc.digest);
    }
    let on_arm = platform::select(&idx, &Platform::parse("linux/arm64/v8").unwrap()).unwrap();
    assert_eq!(on_arm.digest, arm_desc.digest);
    let (_, arm_bytes) = client.fetch_manifest(&r, &on_arm.digest).await.unwrap();
    let ManifestDocument::Manifest(m) = manifest::parse(mt::OCI_MANIFEST, &arm_bytes).unwrap()
    else {
        panic!("expected a manifest");
    };
    let layer = collect(client.fetch_blob(&r, &m.layers[0].digest, 0).await.unwrap())
        .await
        .unwrap();
    assert!(layer == arm_layer, "bytes differ");
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let Some(reg) = LocalRegistry::start(Some(("berth", "s3cret"))).await else {
        return;
    };
    let r = reference(&reg, "private/img:v1");
    let authed = client_for(&reg.addr, Some(("berth", "s3cret")));
    let (desc, body, layer) = push_image(&authed, &r, 21, "linux/amd64").await;
    let resolved = authed.resolve(&r).await.unwrap();
    assert_eq!(resolved.digest, desc.digest);
    let (_, bytes) = authed.fetch_manifest(&r, &desc.digest).await.unwrap();
    assert_eq!(&bytes[..], &body[..]);
    let ManifestDocument::Manifest(m) = manifest::parse(mt::OCI_MANIFEST, &bytes).unwrap() else {
        panic!("expected a manifest");
    };
    let got = collect(authed.fetch_blob(&r, &m.layers[0].digest, 0).await.unwrap())
        .await
        .unwrap();
    assert!(got == layer, "bytes differ");

    let anonymous = client_for(&reg.addr, None);
    let err = anonymous.resolve(&r).await.unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");
    assert!(err.message.contains("authentication required"), "{err}");
    let err = anonymous
        .fetch_blob(&r, &m.layers[0].digest, 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");

    let wrong = client_for(&reg.addr, Some(("berth", "wrong")));
    let err = wrong.resolve(&r).await.unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");
    assert!(err.message.contains("unauthorized"), "{err}");
    let err = wrong
        .push_blob(&r, &digest(b"x"), 1, stream_of(b"x", 1), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");
}

/// Another client (skopeo, if installed) reads what we push, and we read what it writes,
/// including its conversion to Docker schema 2.
#[tokio::test]
async fn interoperates_with_skopeo() {
    let Some(reg) = LocalRegistry::start(None).await else {
        return;
    };
    if !std::path::Path::new("/usr/bin/skopeo").exists() {
        eprintln!("skipping: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let client = client_for(&reg.addr, None);
    let src = reference(&reg, "interop/src:v1");
    let (desc, _, layer) = push_image(&client, &src, 31, "linux/amd64").await;
    let dst = reference(&reg, "interop/dst:v2");
    let out = tokio::process::Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &format!("docker://{src}"),
            &format!("docker://{dst}"),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resolved = client.resolve(&dst).await.unwrap();
    assert_eq!(resolved.media_type, mt::DOCKER_MANIFEST);
    assert_ne!(resolved.digest, desc.digest, "converted, so a new digest");
    let (media_type, bytes) = client.fetch_manifest(&dst, &resolved.digest).await.unwrap();
    let ManifestDocument::Manifest(m) = manifest::parse(&media_type, &bytes).unwrap() else {
        panic!("expected a manifest");
    };
    assert_eq!(m.config.media_type, mt::DOCKER_CONFIG);
    // Converting to schema 2 made skopeo gzip our uncompressed layer.
    assert_eq!(m.layers[0].media_type, mt::DOCKER_LAYER_GZIP);
    let got = collect(
        client
            .fetch_blob(&dst, &m.layers[0].digest, 0)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(digest(&got), m.layers[0].digest);
    assert!(got.starts_with(&[0x1f, 0x8b]), "a gzip stream");
    assert!(got.len() > layer.len() / 2);
}
