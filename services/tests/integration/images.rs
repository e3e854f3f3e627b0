//! Images service: CRUD, filters, events, and images as garbage-collection roots.

use std::collections::HashMap;

use containerd_client::{
    services::v1::{
        CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
        UpdateImageRequest, images_client::ImagesClient,
    },
    tonic::{Code, transport::Channel},
    types::Descriptor,
};

use crate::{
    content::{blob, digest_of, info_code, put},
    ctr_or_skip,
    daemon::{Daemon, lease, ns},
};

fn image(name: &str, digest: &str, size: i64) -> Image {
    Image {
        name: name.into(),
        labels: HashMap::from([("env".to_string(), "test".to_string())]),
        target: Some(Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest.into(),
            size,
            annotations: HashMap::new(),
        }),
        created_at: None,
        updated_at: None,
    }
}

async fn create(ch: &Channel, img: Image) -> Result<Image, containerd_client::tonic::Status> {
    ImagesClient::new(ch.clone())
        .create(ns(
            "default",
            CreateImageRequest {
                image: Some(img),
                source_date_epoch: None,
            },
        ))
        .await
        .map(|r| r.into_inner().image.unwrap())
}

#[tokio::test]
async fn images_root_their_content_graph() {
    let d = Daemon::start();
    let ch = d.channel().await;
    lease(&ch, "default", "pull").await;
    let layer = blob(50_000, 1);
    let config = blob(500, 2);
    put(
        &ch,
        "default",
        Some("pull"),
        "layer",
        &layer,
        HashMap::new(),
    )
    .await
    .unwrap();
    put(
        &ch,
        "default",
        Some("pull"),
        "config",
        &config,
        HashMap::new(),
    )
    .await
    .unwrap();
    let manifest = blob(700, 3);
    let refs = HashMap::from([
        (
            "containerd.io/gc.ref.content.config".to_string(),
            digest_of(&config),
        ),
        (
            "containerd.io/gc.ref.content.l.0".to_string(),
            digest_of(&layer),
        ),
    ]);
    put(&ch, "default", Some("pull"), "manifest", &manifest, refs)
        .await
        .unwrap();
    let created = create(&ch, image("example.com/app:1", &digest_of(&manifest), 700))
        .await
        .unwrap();
    assert!(created.created_at.is_some());
    let dup = create(&ch, image("example.com/app:1", &digest_of(&manifest), 700))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    // Releasing the pull lease leaves everything reachable from the image.
    let mut leases = containerd_client::services::v1::leases_client::LeasesClient::new(ch.clone());
    leases
        .delete(ns(
            "default",
            containerd_client::services::v1::DeleteRequest {
                id: "pull".into(),
                sync: true,
            },
        ))
        .await
        .unwrap();
    for d in [&layer, &config, &manifest] {
        assert_eq!(info_code(&ch, "default", &digest_of(d)).await, Code::Ok);
    }

    let out = ctr_or_skip!(d, &["images", "ls"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("example.com/app:1") && text.contains(&digest_of(&manifest)),
        "{text}"
    );

    // Deleting the image (synchronously) takes its whole graph.
    ImagesClient::new(ch.clone())
        .delete(ns(
            "default",
            DeleteImageRequest {
                name: "example.com/app:1".into(),
                sync: true,
                target: None,
            },
        ))
        .await
        .unwrap();
    for d in [&layer, &config, &manifest] {
        assert_eq!(
            info_code(&ch, "default", &digest_of(d)).await,
            Code::NotFound
        );
    }
}

#[tokio::test]
async fn images_update_filter_and_validate() {
    let d = Daemon::start();
    let ch = d.channel().await;
    let dg = digest_of(b"x");
    create(&ch, image("a:1", &dg, 1)).await.unwrap();
    create(&ch, image("b:1", &dg, 1)).await.unwrap();
    let mut c = ImagesClient::new(ch.clone());
    let mut img = image("a:1", &dg, 1);
    img.labels = HashMap::from([("tier".to_string(), "gold".to_string())]);
    c.update(ns(
        "default",
        UpdateImageRequest {
            image: Some(img),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels.tier".into()],
            }),
            source_date_epoch: None,
        },
    ))
    .await
    .unwrap();
    let got = c
        .get(ns("default", GetImageRequest { name: "a:1".into() }))
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(got.labels.len(), 2);
    let listed = c
        .list(ns(
            "default",
            ListImagesRequest {
                filters: vec!["labels.tier==gold".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(
        listed.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["a:1"]
    );
    let listed = c
        .list(ns(
            "default",
            ListImagesRequest {
                filters: vec![r#"name~=/^b/"#.into()],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(listed.len(), 1);

    for bad in [
        image("", &dg, 1),
        image("c", "sha256:bad", 1),
        image("c", &dg, 0),
    ] {
        assert_eq!(
            create(&ch, bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
    let mut bad_path = image("a:1", &dg, 1);
    bad_path.name = "a:1".into();
    let err = c
        .update(ns(
            "default",
            UpdateImageRequest {
                image: Some(bad_path),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
                source_date_epoch: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .get(ns(
            "default",
            GetImageRequest {
                name: "nope".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // A namespace holding images cannot be removed.
    let out = ctr_or_skip!(d, &["namespaces", "rm", "default"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("still has images"));
}
