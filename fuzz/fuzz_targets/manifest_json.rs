//! The JSON documents Berth reads from registries and clients: manifests and indexes (OCI
//! and Docker schema 2, kind detected from the Content-Type or the body), image configs, and
//! runtime specs. None may panic; a parsed manifest or index must read back equal from its
//! own serialisation; an index must survive platform selection; an image config must survive
//! being turned into a runtime spec.
#![no_main]

use berth_services::registry::{
    ManifestDocument, Platform,
    manifest::{self, media_types as mt},
    platform,
};
use berth_spec::SpecBuilder;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::ImageConfiguration;

/// The Content-Types a registry might answer with; the first byte of the input picks one.
const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(mt::OCI_INDEX),
    Some(mt::OCI_MANIFEST),
    Some(mt::DOCKER_MANIFEST_LIST),
    Some(mt::DOCKER_MANIFEST),
    Some(mt::DOCKER_SCHEMA1_MANIFEST),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&how, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(how) % CONTENT_TYPES.len()];
    if let Ok(media_type) = manifest::detect_media_type(content_type, body)
        && let Ok(document) = manifest::parse(&media_type, body)
    {
        check_document(&media_type, &document);
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfiguration>(body) {
        let _ = SpecBuilder::new("default", "fuzz")
            .image_config(&config)
            .build();
    }
    if let Ok(spec) = berth_spec::from_json(body) {
        let json = berth_spec::to_json(&spec).expect("a parsed spec serialises");
        berth_spec::from_json(&json).expect("a serialised spec parses");
    }
});

/// Round-trips `document` through JSON and, for an index, selects from it.
fn check_document(media_type: &str, document: &ManifestDocument) {
    let json = match document {
        ManifestDocument::Index(index) => serde_json::to_vec(index),
        ManifestDocument::Manifest(manifest) => serde_json::to_vec(manifest),
    }
    .expect("a parsed document serialises");
    let again = manifest::parse(media_type, &json)
        .unwrap_or_else(|e| panic!("a serialised {media_type} does not parse: {e:?}"));
    assert_eq!(
        &again, document,
        "{media_type} changed in a JSON round trip"
    );
    if let ManifestDocument::Index(index) = document {
        for wanted in ["linux/amd64", "linux/arm/v7", "windows/amd64", "arm64"] {
            let wanted = Platform::parse(wanted).expect("a fixed platform parses");
            let _ = platform::select(index, &wanted);
        }
        for entry in index.manifests.iter().filter_map(|d| d.platform.clone()) {
            let entry = entry.normalize();
            let _ = (entry.compatible(), entry.rank(&Platform::host()));
        }
    }
}
