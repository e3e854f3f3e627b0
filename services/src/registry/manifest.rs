//! OCI and Docker schema 2 manifests, indexes and descriptors, with their media types.
//!
//! Docker's schema 2 formats are structurally the OCI ones (OCI copied them), so one
//! [`Manifest`] and one [`Index`] type read both; the `mediaType` says which. Docker schema 1
//! (signed JWS manifests from before 2016) is refused with NotImplemented wherever it shows up:
//! by media type or by `"schemaVersion": 1` in the body.

use std::collections::BTreeMap;

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::platform::Platform;

/// Media types of the OCI image spec and of Docker's distribution formats.
pub mod media_types {
    /// OCI image index (multi-platform).
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable uncompressed layer (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable gzip layer (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// OCI non-distributable zstd layer (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    /// The OCI empty JSON descriptor's type (`{}`), for artifacts.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

    /// Docker manifest list (multi-platform).
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker foreign (non-distributable) gzip layer.
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker plugin config.
    pub const DOCKER_PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";
    /// Docker schema 1 manifest (unsupported).
    pub const DOCKER_SCHEMA1_MANIFEST: &str =
        "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker schema 1 signed manifest (unsupported).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// What a resolver accepts, best first (containerd's list, ending in `*/*`).
    pub const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.oci.image.index.v1+json, */*";
}

use media_types as mt;

/// The message given whenever a schema 1 manifest is met.
pub const SCHEMA1_UNSUPPORTED: &str = "docker schema 1 manifests are not supported";

/// Whether `media_type` is a multi-platform index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == mt::OCI_INDEX || media_type == mt::DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single-image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == mt::OCI_MANIFEST || media_type == mt::DOCKER_MANIFEST
}

/// Whether `media_type` is one of Docker's schema 1 types.
pub fn is_schema1(media_type: &str) -> bool {
    media_type == mt::DOCKER_SCHEMA1_MANIFEST || media_type == mt::DOCKER_SCHEMA1_SIGNED
}

/// A pointer to content: what it is, its digest and its size, as in the OCI image spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content pointed to.
    pub media_type: String,
    /// The content's digest.
    #[serde(with = "digest_serde")]
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: i64,
    /// Other places the content may be fetched from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Default for Descriptor {
    /// An empty descriptor: no media type, the digest of no bytes, size 0.
    fn default() -> Self {
        Descriptor {
            media_type: String::new(),
            digest: Digest::sha256_of(b""),
            size: 0,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// An image manifest (OCI or Docker schema 2): a config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (required by Docker, recommended by OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (signatures, SBOMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker): one manifest per platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests, each usually with a platform.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestDocument {
    /// A multi-platform index or manifest list.
    Index(Box<Index>),
    /// A single-image manifest.
    Manifest(Box<Manifest>),
}

/// The shape of a manifest body, enough to tell its kind when the server's Content-Type does
/// not (`application/json`, `text/plain`, missing).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    signatures: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    fs_layers: Option<serde::de::IgnoredAny>,
}

/// The media type of a manifest body: `content_type` if it is a known manifest type, else
/// what the body says (its `mediaType`, or its shape). Schema 1 is NotImplemented; a body
/// that is not a manifest is InvalidArgument.
pub fn detect_media_type(content_type: Option<&str>, body: &[u8]) -> Result<String, Error> {
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if is_schema1(&ct) {
        return Err(Error::new(Kind::NotImplemented, SCHEMA1_UNSUPPORTED));
    }
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("manifest is not valid JSON: {e}")))?;
    if probe.schema_version == Some(1) || probe.signatures.is_some() || probe.fs_layers.is_some() {
        return Err(Error::new(Kind::NotImplemented, SCHEMA1_UNSUPPORTED));
    }
    if is_index(&ct) || is_manifest(&ct) {
        return Ok(ct);
    }
    if let Some(m) = probe.media_type {
        if is_schema1(&m) {
            return Err(Error::new(Kind::NotImplemented, SCHEMA1_UNSUPPORTED));
        }
        return Ok(m);
    }
    if probe.manifests.is_some() {
        Ok(mt::OCI_INDEX.to_string())
    } else if probe.config.is_some() {
        Ok(mt::OCI_MANIFEST.to_string())
    } else {
        Err(Error::invalid(format!(
            "unrecognised manifest (content type {ct:?}, no mediaType, no config or manifests)"
        )))
    }
}

/// Parses a manifest or index body of `media_type`. Schema 1 (by type or body) is
/// NotImplemented; a body whose `mediaType` contradicts `media_type`, or a malformed body, is
/// InvalidArgument; any other media type is NotImplemented.
pub fn parse(media_type: &str, body: &[u8]) -> Result<ManifestDocument, Error> {
    if is_schema1(media_type) {
        return Err(Error::new(Kind::NotImplemented, SCHEMA1_UNSUPPORTED));
    }
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("manifest is not valid JSON: {e}")))?;
    if probe.schema_version == Some(1) {
        return Err(Error::new(Kind::NotImplemented, SCHEMA1_UNSUPPORTED));
    }
    if probe.schema_version != Some(2) {
        return Err(Error::invalid(format!(
            "unsupported manifest schemaVersion {:?}",
            probe.schema_version
        )));
    }
    if let Some(declared) = &probe.media_type
        && declared != media_type
    {
        return Err(Error::invalid(format!(
            "manifest declares mediaType {declared:?} but was served as {media_type:?}"
        )));
    }
    let invalid = |e: serde_json::Error| Error::invalid(format!("invalid {media_type}: {e}"));
    if is_index(media_type) {
        serde_json::from_slice(body)
            .map(|i| ManifestDocument::Index(Box::new(i)))
            .map_err(invalid)
    } else if is_manifest(media_type) {
        serde_json::from_slice(body)
            .map(|m| ManifestDocument::Manifest(Box::new(m)))
            .map_err(invalid)
    } else {
        Err(Error::new(
            Kind::NotImplemented,
            format!("unsupported manifest media type {media_type:?}"),
        ))
    }
}

/// Serde for [`Digest`] as its `algorithm:hex` string.
pub mod digest_serde {
    use super::*;

    /// Writes the digest as a string.
    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    /// Reads and validates a digest string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_MANIFEST_JSON: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
        "size": 7023
      },
      "layers": [
        {
          "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
          "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
          "size": 32654,
          "annotations": {"x": "y"}
        }
      ],
      "annotations": {"com.example.key1": "value1"}
    }"#;

    const DOCKER_MANIFEST_JSON: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1469,
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
      },
      "layers": [
        {
          "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
          "size": 2811478,
          "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
        }
      ]
    }"#;

    const DOCKER_LIST_JSON: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests": [
        {
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "size": 527,
          "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
          "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}
        },
        {
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "size": 528,
          "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
          "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1",
                       "os.features": ["win32k"]}
        }
      ]
    }"#;

    const OCI_INDEX_JSON: &str = r#"{
      "schemaVersion": 2,
      "manifests": [
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "size": 7143,
          "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
          "platform": {"architecture": "ppc64le", "os": "linux"}
        }
      ],
      "annotations": {"org.opencontainers.image.ref.name": "1"}
    }"#;

    const SCHEMA1_JSON: &str = r#"{
      "schemaVersion": 1, "name": "x", "tag": "latest", "architecture": "amd64",
      "fsLayers": [{"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
      "history": [], "signatures": []
    }"#;

    #[test]
    fn parses_oci_manifests() {
        let ManifestDocument::Manifest(m) =
            parse(mt::OCI_MANIFEST, OCI_MANIFEST_JSON.as_bytes()).unwrap()
        else {
            panic!("not a manifest")
        };
        assert_eq!(m.config.media_type, mt::OCI_CONFIG);
        assert_eq!(m.config.size, 7023);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].annotations["x"], "y");
        assert_eq!(m.annotations["com.example.key1"], "value1");
        // Serialising and parsing again gives the same value.
        let again = serde_json::to_vec(&m).unwrap();
        assert_eq!(
            parse(mt::OCI_MANIFEST, &again).unwrap(),
            ManifestDocument::Manifest(m)
        );
    }

    #[test]
    fn parses_docker_manifests_and_lists() {
        let ManifestDocument::Manifest(m) =
            parse(mt::DOCKER_MANIFEST, DOCKER_MANIFEST_JSON.as_bytes()).unwrap()
        else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers[0].media_type, mt::DOCKER_LAYER_GZIP);

        let ManifestDocument::Index(list) =
            parse(mt::DOCKER_MANIFEST_LIST, DOCKER_LIST_JSON.as_bytes()).unwrap()
        else {
            panic!("not an index")
        };
        assert_eq!(list.manifests.len(), 2);
        let p = list.manifests[0].platform.as_ref().unwrap();
        assert_eq!((p.os.as_str(), p.variant.as_str()), ("linux", "v6"));
        let w = list.manifests[1].platform.as_ref().unwrap();
        assert_eq!(w.os_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(w.os_features.as_deref(), Some(&["win32k".to_string()][..]));
        let json = serde_json::to_string(&list).unwrap();
        assert!(json.contains(r#""os.version":"10.0.17763.1""#), "{json}");
    }

    #[test]
    fn parses_oci_indexes_without_media_type() {
        let ManifestDocument::Index(idx) = parse(mt::OCI_INDEX, OCI_INDEX_JSON.as_bytes()).unwrap()
        else {
            panic!("not an index")
        };
        assert_eq!(idx.media_type, None);
        assert_eq!(idx.manifests[0].size, 7143);
    }

    #[test]
    fn detects_media_types_from_bodies() {
        let d = |ct: Option<&str>, body: &str| detect_media_type(ct, body.as_bytes());
        assert_eq!(
            d(Some(mt::OCI_MANIFEST), OCI_MANIFEST_JSON).unwrap(),
            mt::OCI_MANIFEST
        );
        assert_eq!(
            d(Some("application/json"), DOCKER_LIST_JSON).unwrap(),
            mt::DOCKER_MANIFEST_LIST
        );
        assert_eq!(d(None, OCI_INDEX_JSON).unwrap(), mt::OCI_INDEX);
        let bare = r#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}}"#;
        assert_eq!(d(Some("text/plain"), bare).unwrap(), mt::OCI_MANIFEST);
        assert_eq!(
            d(Some("application/json"), "{}").unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(d(None, "not json").unwrap_err().kind, Kind::InvalidArgument);
    }

    #[test]
    fn rejects_schema1_everywhere() {
        for (ct, body) in [
            (Some(mt::DOCKER_SCHEMA1_SIGNED), SCHEMA1_JSON),
            (Some(mt::DOCKER_SCHEMA1_MANIFEST), "{}"),
            (Some("application/json"), SCHEMA1_JSON),
            (None, SCHEMA1_JSON),
        ] {
            let err = detect_media_type(ct, body.as_bytes()).unwrap_err();
            assert_eq!(err.kind, Kind::NotImplemented);
            assert_eq!(err.message, SCHEMA1_UNSUPPORTED);
        }
        let err = parse(mt::DOCKER_MANIFEST, SCHEMA1_JSON.as_bytes()).unwrap_err();
        assert_eq!(err.kind, Kind::NotImplemented);
        let err = parse(mt::DOCKER_SCHEMA1_SIGNED, SCHEMA1_JSON.as_bytes()).unwrap_err();
        assert_eq!(err.message, SCHEMA1_UNSUPPORTED);
    }

    #[test]
    fn rejects_inconsistent_or_broken_documents() {
        let err = parse(mt::OCI_INDEX, OCI_MANIFEST_JSON.as_bytes()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert!(err.message.contains("declares mediaType"), "{err}");
        let bad_digest = OCI_MANIFEST_JSON.replace("sha256:b5b2", "sha256:XXXX");
        let err = parse(mt::OCI_MANIFEST, bad_digest.as_bytes()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        let err = parse(mt::OCI_MANIFEST, br#"{"schemaVersion":3}"#).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        let err = parse("application/x-unknown", br#"{"schemaVersion":2}"#).unwrap_err();
        assert_eq!(err.kind, Kind::NotImplemented);
        let no_config = r#"{"schemaVersion":2,"layers":[]}"#;
        assert_eq!(
            parse(mt::OCI_MANIFEST, no_config.as_bytes())
                .unwrap_err()
                .kind,
            Kind::InvalidArgument
        );
    }
}
