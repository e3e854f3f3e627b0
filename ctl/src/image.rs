//! Reading a stored image the way the runtime needs it: name → manifest for this platform →
//! config (entrypoint, env, user…) and the chain ID of its unpacked snapshot.

use anyhow::{Context as _, bail};
use containerd_client::services::v1::{
    GetImageRequest, Image, ListImagesRequest, ReadContentRequest, content_client::ContentClient,
    images_client::ImagesClient,
};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

use crate::client::Client;

/// Media types of indexes (OCI and Docker).
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// An image resolved for this platform.
pub struct ResolvedImage {
    /// The stored image record.
    pub record: Image,
    /// The digest of the platform's manifest.
    pub manifest_digest: String,
    /// The manifest itself.
    pub manifest: ImageManifest,
    /// The image config.
    pub config: ImageConfiguration,
    /// The chain ID of the top layer: the parent snapshot of a container's rootfs.
    pub chain_id: String,
}

impl ResolvedImage {
    /// The compressed size of config and layers, as `images` shows it.
    pub fn size(&self) -> i64 {
        self.manifest.config().size() as i64
            + self
                .manifest
                .layers()
                .iter()
                .map(|l| l.size() as i64)
                .sum::<i64>()
    }
}

/// Reads a whole blob from the content store.
pub async fn read_blob(client: &Client, digest: &str) -> anyhow::Result<Vec<u8>> {
    let mut stream = ContentClient::new(client.channel.clone())
        .read(client.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .with_context(|| format!("reading {digest}"))?
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await? {
        data.extend_from_slice(&chunk.data);
    }
    Ok(data)
}

/// The platform string of this machine, as images name it (`linux/amd64`).
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    ("linux", arch)
}

/// Picks the manifest for `platform` (`os/arch[/variant]`, default this machine's) from a
/// manifest or an index blob.
async fn platform_manifest(
    client: &Client,
    media_type: &str,
    digest: &str,
    platform: Option<&str>,
) -> anyhow::Result<(String, ImageManifest)> {
    let blob = read_blob(client, digest).await?;
    let is_index = INDEX_TYPES.contains(&media_type)
        || serde_json::from_slice::<serde_json::Value>(&blob)
            .ok()
            .and_then(|v| v.get("manifests").cloned())
            .is_some();
    if !is_index {
        let manifest = ImageManifest::from_reader(&blob[..])
            .with_context(|| format!("parsing manifest {digest}"))?;
        return Ok((digest.to_string(), manifest));
    }
    let index =
        ImageIndex::from_reader(&blob[..]).with_context(|| format!("parsing index {digest}"))?;
    let (host_os, host_arch) = host_platform();
    let mut want = platform.unwrap_or("").split('/');
    let os = want.next().filter(|s| !s.is_empty()).unwrap_or(host_os);
    let arch = want.next().unwrap_or(host_arch);
    let variant = want.next();
    let chosen = index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == os
                    && p.architecture().to_string() == arch
                    && variant.is_none_or(|v| p.variant().as_deref() == Some(v))
            })
        })
        .with_context(|| format!("image has no manifest for platform {os}/{arch}"))?;
    let chosen_digest = chosen.digest().to_string();
    let blob = read_blob(client, &chosen_digest).await.with_context(|| {
        format!("the manifest for {os}/{arch} is not in the content store (pull it first)")
    })?;
    let manifest = ImageManifest::from_reader(&blob[..])
        .with_context(|| format!("parsing manifest {chosen_digest}"))?;
    Ok((chosen_digest, manifest))
}

/// Computes the chain ID of a list of layer diff IDs (OCI image spec: identity of a stack).
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut chain = String::new();
    for diff in diff_ids {
        if chain.is_empty() {
            chain = diff.clone();
        } else {
            let digest = Sha256::digest(format!("{chain} {diff}").as_bytes());
            chain = format!("sha256:{}", hex::encode(digest));
        }
    }
    chain
}

/// Every image record of the namespace, sorted by name.
pub async fn list(client: &Client) -> anyhow::Result<Vec<Image>> {
    let mut records = ImagesClient::new(client.channel.clone())
        .list(client.request(ListImagesRequest {
            filters: Vec::new(),
        }))
        .await
        .context("listing images")?
        .into_inner()
        .images;
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// Gets a stored image by name; NotFound becomes a plain "no such image" error.
pub async fn get(client: &Client, name: &str) -> anyhow::Result<Image> {
    let res = ImagesClient::new(client.channel.clone())
        .get(client.request(GetImageRequest {
            name: name.to_string(),
        }))
        .await;
    match res {
        Ok(r) => r
            .into_inner()
            .image
            .with_context(|| format!("berthd returned no image for {name}")),
        Err(s) if s.code() == tonic::Code::NotFound => bail!("no such image: {name}"),
        Err(s) => Err(s).with_context(|| format!("looking up image {name}")),
    }
}

/// Resolves a stored image for `platform` (default: this machine's), by the name as given or
/// else its normalized form (`busybox` → `docker.io/library/busybox:latest`).
pub async fn resolve(
    client: &Client,
    name: &str,
    platform: Option<&str>,
) -> anyhow::Result<ResolvedImage> {
    let record = match get(client, name).await {
        Ok(record) => record,
        Err(first) => match get(client, &normalize(name)).await {
            Ok(record) => record,
            Err(_) => return Err(first),
        },
    };
    let target = record
        .target
        .clone()
        .with_context(|| format!("image {name} has no target"))?;
    let (manifest_digest, manifest) =
        platform_manifest(client, &target.media_type, &target.digest, platform).await?;
    let config_digest = manifest.config().digest().to_string();
    let blob = read_blob(client, &config_digest).await?;
    let config = ImageConfiguration::from_reader(&blob[..])
        .with_context(|| format!("parsing image config {config_digest}"))?;
    let chain_id = chain_id(config.rootfs().diff_ids());
    Ok(ResolvedImage {
        record,
        manifest_digest,
        manifest,
        config,
        chain_id,
    })
}

/// The user-facing name of a normalized reference: `docker.io/library/busybox:latest` →
/// `busybox:latest`, as docker prints it.
pub fn familiar(name: &str) -> String {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

/// Normalizes what a user typed to the name images are stored under: `busybox` →
/// `docker.io/library/busybox:latest`; names with a registry host stay as they are, with
/// `:latest` added when neither tag nor digest is given.
pub fn normalize(name: &str) -> String {
    let (repo, suffix) = match name.rsplit_once('@') {
        Some((repo, digest)) => (repo.to_string(), format!("@{digest}")),
        None => {
            let last = name.rsplit('/').next().unwrap_or(name);
            if last.contains(':') {
                let (r, t) = name.rsplit_once(':').unwrap_or((name, "latest"));
                (r.to_string(), format!(":{t}"))
            } else {
                (name.to_string(), ":latest".to_string())
            }
        }
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_host =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_host {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{full}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        assert_eq!(chain_id(&["sha256:aa".into()]), "sha256:aa");
        let two = chain_id(&["sha256:aa".into(), "sha256:bb".into()]);
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"sha256:aa sha256:bb"))
        );
        assert_eq!(two, expected);
        assert_eq!(chain_id(&[]), "");
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("lab/busybox:1"), "docker.io/lab/busybox:1");
        assert_eq!(
            normalize("localhost:5000/lab/busybox"),
            "localhost:5000/lab/busybox:latest"
        );
        assert_eq!(normalize("127.0.0.1:5000/x:2"), "127.0.0.1:5000/x:2");
        assert_eq!(
            normalize("busybox@sha256:ab"),
            "docker.io/library/busybox@sha256:ab"
        );
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/lab/x:1"), "lab/x:1");
    }
}
