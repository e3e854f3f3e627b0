//! Archives: importing OCI image layouts, `docker save` tarballs and root filesystem tarballs,
//! and exporting images as an OCI layout that also carries Docker's `manifest.json`.
//!
//! Archives stream through: the client's bytes feed a tar reader on a blocking thread, and
//! every blob goes straight into the content store (verified against the digest its path
//! names, when it names one). Nothing in an archive becomes a path on the host: entries are
//! only ever read into the content store, by digest.

use std::{
    collections::{BTreeSet, HashMap},
    io::{BufRead, BufReader, Read, Write},
    sync::Arc,
};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind, io_error},
};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{ProgressTx, Transfer};
use crate::{
    diff::{MEDIA_TAR, MEDIA_TAR_GZIP},
    registry::{Descriptor, ManifestDocument, Platform, Reference, manifest, platform},
    request::Scope,
};

/// Largest small file (index.json, manifest.json, …) read into memory.
const MAX_SMALL: u64 = 16 << 20;
/// OCI annotation naming an image in a layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation carrying the full image name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What an import asks for.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `archive` (OCI layout or docker save) or `rootfs`.
    pub format: String,
    /// Image name for rootfs imports and unnamed archive images.
    pub name: String,
    /// Store without unpacking.
    pub skip_unpack: bool,
    /// Snapshotter for unpacking.
    pub snapshotter: String,
    /// `os/arch` for a rootfs image's config.
    pub platform: String,
}

/// Reads what the client streams, on a blocking thread.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    /// Reads from `rx` until it closes.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Sends what a blocking writer produces to the client.
struct ChannelWriter(mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `reader`, decompressed when it starts with gzip's magic bytes.
fn maybe_gunzip<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, Error> {
    let mut buffered = BufReader::with_capacity(1 << 20, reader);
    let head = buffered
        .fill_buf()
        .map_err(|e| io_error("read archive", e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

fn normalize(path: &std::path::Path) -> String {
    let s = path.to_string_lossy();
    s.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// A blob stored from an archive entry.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: i64,
}

impl Transfer {
    /// Stores `size` bytes from `reader` under `reference`, verified against `expected`.
    fn store_stream(
        &self,
        scope: &Scope,
        reference: &str,
        reader: &mut dyn Read,
        size: i64,
        expected: Option<Digest>,
    ) -> Result<Digest, Error> {
        let mut w = match self
            .content
            .writer(scope, reference, size, expected.clone())
        {
            Ok(w) => w,
            Err(e) if e.kind == Kind::AlreadyExists => {
                return expected.ok_or(e);
            }
            Err(e) => return Err(e),
        };
        let offset = w.status().offset;
        if !(expected.is_some() && offset == size) {
            if offset > 0 {
                w.truncate(0)?;
            }
            copy_into(reader, &mut w, "read archive")?;
        }
        match w.commit(size, expected.as_ref(), HashMap::new()) {
            Ok(d) => Ok(d),
            Err(e) if e.kind == Kind::AlreadyExists => Ok(w.digest()),
            Err(e) => Err(e.context(format!("archive entry {reference}"))),
        }
    }

    /// Reads an image archive (OCI layout or docker save) into the content store; returns the
    /// images it names as (name, target).
    pub(super) fn read_archive(
        &self,
        scope: &Scope,
        reader: impl Read,
        fallback_name: &str,
    ) -> Result<Vec<(String, Descriptor)>, Error> {
        let mut archive = tar::Archive::new(maybe_gunzip(reader)?);
        let mut stored: HashMap<String, Stored> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let entries = archive
            .entries()
            .map_err(|e| Error::invalid(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| Error::new(Kind::DataLoss, format!("corrupt archive: {e}")))?;
            let path = normalize(&entry.path().map_err(|e| Error::invalid(e.to_string()))?);
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = entry.link_name() {
                    let base = std::path::Path::new(&path)
                        .parent()
                        .map(|p| p.join(&target))
                        .unwrap_or_else(|| target.to_path_buf());
                    let resolved = if kind.is_hard_link() {
                        normalize(&target)
                    } else {
                        clean(&base)
                    };
                    links.insert(path, resolved);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size() as i64;
            if matches!(
                path.as_str(),
                "index.json" | "manifest.json" | "oci-layout" | "repositories"
            ) {
                if size as u64 > MAX_SMALL {
                    return Err(Error::invalid(format!("{path} is too large")));
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::new(Kind::DataLoss, format!("read {path}: {e}")))?;
                small.insert(path, buf);
                continue;
            }
            let expected = path
                .strip_prefix("blobs/")
                .and_then(|rest| rest.split_once('/'))
                .map(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")))
                .transpose()
                .map_err(|e| e.context(format!("archive entry {path}")))?;
            let reference = format!("import-{}", uuid::Uuid::new_v4());
            let digest = self.store_stream(scope, &reference, &mut entry, size, expected)?;
            stored.insert(path, Stored { digest, size });
        }
        let lookup = |p: &str| -> Option<Stored> {
            let mut p = p.trim_start_matches("./").to_string();
            for _ in 0..8 {
                if let Some(s) = stored.get(&p) {
                    return Some(s.clone());
                }
                p = links.get(&p)?.clone();
            }
            None
        };
        if let Some(index) = small.get("index.json") {
            return self.oci_images(index, fallback_name);
        }
        if let Some(manifest) = small.get("manifest.json") {
            return self.docker_images(scope, manifest, &lookup);
        }
        Err(Error::invalid(
            "archive has neither index.json (OCI layout) nor manifest.json (docker save)",
        ))
    }

    fn oci_images(&self, index: &[u8], fallback: &str) -> Result<Vec<(String, Descriptor)>, Error> {
        let ManifestDocument::Index(index) =
            manifest::parse("application/vnd.oci.image.index.v1+json", index)?
        else {
            return Err(Error::invalid("index.json is not an image index"));
        };
        let mut out = Vec::new();
        for desc in index.manifests {
            let name = match (
                desc.annotations.get(CONTAINERD_NAME),
                desc.annotations.get(REF_NAME),
            ) {
                (Some(full), _) => full.clone(),
                (None, Some(r)) if r.contains('/') || r.contains(':') => Reference::parse(r)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| r.clone()),
                (None, Some(tag)) if !fallback.is_empty() => format!("{fallback}:{tag}"),
                _ if !fallback.is_empty() => fallback.to_string(),
                _ => continue,
            };
            out.push((name, desc));
        }
        Ok(out)
    }

    fn docker_images(
        &self,
        scope: &Scope,
        manifest_json: &[u8],
        lookup: &dyn Fn(&str) -> Option<Stored>,
    ) -> Result<Vec<(String, Descriptor)>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(manifest_json)
            .map_err(|e| Error::invalid(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            let missing =
                |p: &str| Error::invalid(format!("manifest.json names {p}, not in the archive"));
            let config = lookup(&e.config).ok_or_else(|| missing(&e.config))?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let s = lookup(l).ok_or_else(|| missing(l))?;
                let media = if self.is_gzip(&scope.namespace, &s.digest)? {
                    MEDIA_TAR_GZIP
                } else {
                    MEDIA_DOCKER_LAYER
                };
                layers.push(serde_json::json!({"mediaType": media, "size": s.size, "digest": s.digest.to_string()}));
            }
            let body = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_DOCKER_MANIFEST,
                "config": {"mediaType": MEDIA_DOCKER_CONFIG, "size": config.size, "digest": config.digest.to_string()},
                "layers": layers,
            }))
            .map_err(|e| Error::internal(e.to_string()))?;
            let digest = Digest::sha256_of(&body);
            let reference = format!("import-{}", uuid::Uuid::new_v4());
            self.store_stream(
                scope,
                &reference,
                &mut body.as_slice(),
                body.len() as i64,
                Some(digest.clone()),
            )?;
            let desc = Descriptor {
                media_type: MEDIA_DOCKER_MANIFEST.to_string(),
                digest,
                size: body.len() as i64,
                urls: Vec::new(),
                annotations: Default::default(),
                platform: None,
                artifact_type: None,
            };
            for tag in e.repo_tags.unwrap_or_default() {
                let name = Reference::parse(&tag).map(|r| r.to_string()).unwrap_or(tag);
                out.push((name, desc.clone()));
            }
        }
        Ok(out)
    }

    fn is_gzip(&self, ns: &str, digest: &Digest) -> Result<bool, Error> {
        let (mut file, _) = self.content.reader(ns, digest)?;
        let mut magic = [0u8; 2];
        Ok(file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b])
    }

    /// Sets containerd's GC labels from `desc` down (index → manifests → config and layers),
    /// for the children present; returns the manifests found, with their platforms.
    pub(super) fn label_graph(
        &self,
        ns: &str,
        desc: &Descriptor,
    ) -> Result<Vec<Descriptor>, Error> {
        let (mut file, _) = self.content.reader(ns, &desc.digest)?;
        let mut body = Vec::new();
        file.read_to_end(&mut body)
            .map_err(|e| io_error(format!("read {}", desc.digest), e))?;
        let mut labels = Vec::new();
        let mut manifests = Vec::new();
        match manifest::parse(&desc.media_type, &body)? {
            ManifestDocument::Index(index) => {
                let mut i = 0;
                for m in &index.manifests {
                    if self.content.info(ns, &m.digest).is_err() {
                        continue;
                    }
                    labels.push((
                        format!("containerd.io/gc.ref.content.m.{i}"),
                        m.digest.to_string(),
                    ));
                    i += 1;
                    manifests.extend(self.label_graph(ns, m)?);
                }
            }
            ManifestDocument::Manifest(m) => {
                labels.push((
                    "containerd.io/gc.ref.content.config".to_string(),
                    m.config.digest.to_string(),
                ));
                for (i, l) in m.layers.iter().enumerate() {
                    labels.push((
                        format!("containerd.io/gc.ref.content.l.{i}"),
                        l.digest.to_string(),
                    ));
                }
                manifests.push(desc.clone());
            }
        }
        self.content
            .update(ns, &desc.digest, crate::content::LabelUpdate::Keys(labels))?;
        Ok(manifests)
    }

    /// Stores a root filesystem tarball as a one-layer image.
    pub(super) fn read_rootfs(
        &self,
        scope: &Scope,
        reader: impl Read,
        platform: &str,
    ) -> Result<Descriptor, Error> {
        let mut buffered = BufReader::with_capacity(1 << 20, reader);
        let gzip = buffered
            .fill_buf()
            .map_err(|e| io_error("read rootfs", e))?
            .starts_with(&[0x1f, 0x8b]);
        let reference = format!("import-{}", uuid::Uuid::new_v4());
        let mut w = self.content.writer(scope, &reference, 0, None)?;
        copy_into(&mut buffered, &mut w, "read rootfs")?;
        let size = w.status().offset;
        if size == 0 {
            return Err(Error::invalid("the rootfs archive is empty"));
        }
        let layer = match w.commit(size, None, HashMap::new()) {
            Ok(d) => d,
            Err(e) if e.kind == Kind::AlreadyExists => w.digest(),
            Err(e) => return Err(e),
        };
        // The diff ID is the digest of the uncompressed tar; check it is a tar on the way.
        let (file, _) = self.content.reader(&scope.namespace, &layer)?;
        let mut hashing = HashingReader::new(maybe_gunzip(file)?);
        {
            let mut archive = tar::Archive::new(&mut hashing);
            for entry in archive
                .entries()
                .map_err(|e| Error::invalid(format!("rootfs is not a tar archive: {e}")))?
            {
                entry.map_err(|e| Error::invalid(format!("rootfs is not a tar archive: {e}")))?;
            }
        }
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| io_error("read rootfs", e))?;
        let diff_id = hashing.digest();
        let plat = if platform.is_empty() {
            Platform::host()
        } else {
            Platform::parse(platform)?
        };
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": plat.architecture,
            "os": plat.os,
            "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created_by": "berth import"}],
        }))
        .map_err(|e| Error::internal(e.to_string()))?;
        let config_digest = Digest::sha256_of(&config);
        self.store_stream(
            scope,
            &format!("import-{}", uuid::Uuid::new_v4()),
            &mut config.as_slice(),
            config.len() as i64,
            Some(config_digest.clone()),
        )?;
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": if gzip { MEDIA_TAR_GZIP } else { MEDIA_TAR }, "digest": layer.to_string(), "size": size}],
        }))
        .map_err(|e| Error::internal(e.to_string()))?;
        let digest = Digest::sha256_of(&body);
        self.store_stream(
            scope,
            &format!("import-{}", uuid::Uuid::new_v4()),
            &mut body.as_slice(),
            body.len() as i64,
            Some(digest.clone()),
        )?;
        Ok(Descriptor {
            media_type: MEDIA_OCI_MANIFEST.to_string(),
            digest,
            size: body.len() as i64,
            urls: Vec::new(),
            annotations: Default::default(),
            platform: None,
            artifact_type: None,
        })
    }

    /// Names `images` and unpacks each one's host (or only) manifest.
    pub(super) async fn finish_import(
        self: &Arc<Self>,
        scope: &Scope,
        images: Vec<(String, Descriptor)>,
        opts: &ImportOptions,
        tx: &ProgressTx,
    ) -> Result<(), Error> {
        for (name, desc) in images {
            let this = self.clone();
            let (ns, d) = (scope.namespace.clone(), desc.clone());
            let manifests = tokio::task::spawn_blocking(move || this.label_graph(&ns, &d))
                .await
                .map_err(|e| Error::internal(format!("label task: {e}")))??;
            if !opts.skip_unpack {
                let host = Platform::host();
                let chosen = manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_none_or(|p| host.matches(p)))
                    .cloned();
                if let Some(m) = chosen {
                    let (mut file, _) = self.content.reader(&scope.namespace, &m.digest)?;
                    let mut body = Vec::new();
                    file.read_to_end(&mut body)
                        .map_err(|e| io_error(format!("read {}", m.digest), e))?;
                    if let ManifestDocument::Manifest(parsed) =
                        manifest::parse(&m.media_type, &body)?
                    {
                        let snapshotter = if opts.snapshotter.is_empty() {
                            super::DEFAULT_SNAPSHOTTER
                        } else {
                            opts.snapshotter.as_str()
                        };
                        self.unpack(scope, snapshotter, &parsed.config, &parsed.layers, tx)
                            .await?;
                    }
                }
            }
            self.name_image(&scope.namespace, &name, &desc, tx).await?;
        }
        Ok(())
    }

    /// Writes `images` (with their graphs, or one platform's) as an OCI layout tarball with
    /// Docker's manifest.json to `out`.
    pub(super) fn write_archive(
        &self,
        ns: &str,
        images: &[String],
        wanted: Option<&Platform>,
        out: mpsc::Sender<Bytes>,
    ) -> Result<(), Error> {
        let mut builder = tar::Builder::new(ChannelWriter(out));
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        for name in images {
            let record = self.images.get(ns, name)?;
            let mut top = Descriptor {
                media_type: record.target.media_type.clone(),
                digest: Digest::parse(&record.target.digest)?,
                size: record.target.size,
                urls: Vec::new(),
                annotations: Default::default(),
                platform: None,
                artifact_type: None,
            };
            let body = self.read_blob(ns, &top.digest)?;
            let manifests: Vec<(Descriptor, Vec<u8>)> =
                match manifest::parse(&top.media_type, &body)? {
                    ManifestDocument::Index(idx) => {
                        let present: Vec<Descriptor> = idx
                            .manifests
                            .iter()
                            .filter(|m| self.content.info(ns, &m.digest).is_ok())
                            .cloned()
                            .collect();
                        let chosen = match wanted {
                            Some(p) => {
                                let only = platform::select(&idx, p).ok_or_else(|| {
                                    Error::not_found(format!("no {p} manifest in {name}"))
                                })?;
                                top = only.clone();
                                vec![only]
                            }
                            None => {
                                blobs.insert(top.digest.clone());
                                present
                            }
                        };
                        chosen
                            .into_iter()
                            .map(|m| Ok((m.clone(), self.read_blob(ns, &m.digest)?)))
                            .collect::<Result<_, Error>>()?
                    }
                    ManifestDocument::Manifest(_) => vec![(top.clone(), body)],
                };
            let host = Platform::host();
            let mut docker_entry = None;
            for (m, body) in &manifests {
                blobs.insert(m.digest.clone());
                if let ManifestDocument::Manifest(parsed) = manifest::parse(&m.media_type, body)? {
                    blobs.insert(parsed.config.digest.clone());
                    for l in &parsed.layers {
                        if self.content.info(ns, &l.digest).is_err() {
                            return Err(Error::not_found(format!(
                                "layer {} of {name} is not stored (pull it for this platform first)",
                                l.digest
                            )));
                        }
                        blobs.insert(l.digest.clone());
                    }
                    let fits = m
                        .platform
                        .as_ref()
                        .is_none_or(|p| wanted.unwrap_or(&host).matches(p));
                    if docker_entry.is_none() && fits {
                        docker_entry = Some(serde_json::json!({
                            "Config": format!("blobs/sha256/{}", parsed.config.digest.encoded()),
                            "RepoTags": [Reference::parse(name).map(|r| r.familiar()).unwrap_or_else(|_| name.clone())],
                            "Layers": parsed.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.encoded())).collect::<Vec<_>>(),
                        }));
                    }
                }
            }
            if let Some(e) = docker_entry {
                docker.push(e);
            }
            let tag = Reference::parse(name)
                .ok()
                .and_then(|r| r.tag.clone())
                .unwrap_or_else(|| name.clone());
            index.push(serde_json::json!({
                "mediaType": top.media_type,
                "digest": top.digest.to_string(),
                "size": top.size,
                "annotations": {CONTAINERD_NAME: name, REF_NAME: tag},
            }));
        }
        let small =
            |b: &mut tar::Builder<ChannelWriter>, path: &str, data: &[u8]| -> Result<(), Error> {
                let mut h = tar::Header::new_ustar();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, path, data)
                    .map_err(|e| io_error(format!("write {path}"), e))
            };
        small(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        for digest in &blobs {
            let (file, size) = self.content.reader(ns, digest)?;
            let mut h = tar::Header::new_ustar();
            h.set_size(size as u64);
            h.set_mode(0o444);
            h.set_entry_type(tar::EntryType::Regular);
            let path = format!("blobs/{}/{}", digest.algorithm().name(), digest.encoded());
            builder
                .append_data(&mut h, &path, BufReader::with_capacity(1 << 20, file))
                .map_err(|e| io_error(format!("write {path}"), e))?;
        }
        let index_json = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}))
            .map_err(|e| Error::internal(e.to_string()))?;
        small(&mut builder, "index.json", &index_json)?;
        let manifest_json =
            serde_json::to_vec(&docker).map_err(|e| Error::internal(e.to_string()))?;
        small(&mut builder, "manifest.json", &manifest_json)?;
        builder
            .into_inner()
            .map_err(|e| io_error("finish archive", e))?;
        Ok(())
    }

    fn read_blob(&self, ns: &str, digest: &Digest) -> Result<Vec<u8>, Error> {
        let (mut file, _) = self.content.reader(ns, digest)?;
        let mut body = Vec::new();
        file.read_to_end(&mut body)
            .map_err(|e| io_error(format!("read {digest}"), e))?;
        Ok(body)
    }
}

/// Copies everything `reader` yields into a content writer.
fn copy_into(
    reader: &mut dyn Read,
    w: &mut crate::content::Writer,
    what: &str,
) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::new(Kind::DataLoss, format!("{what}: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        w.write(&buf[..n])?;
    }
}

/// Lexically cleans a relative archive path (for symlinks between entries).
fn clean(path: &std::path::Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

/// Hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        }
    }

    fn digest(self) -> Digest {
        Digest::from_sha256(sha2::Digest::finalize(self.hasher).into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

impl Transfer {
    /// Imports the archive arriving on `data` into `namespace`.
    pub async fn import(
        self: &Arc<Self>,
        namespace: &str,
        opts: ImportOptions,
        data: mpsc::Receiver<Bytes>,
        tx: ProgressTx,
    ) -> Result<(), Error> {
        let rootfs = match opts.format.as_str() {
            "" | "archive" => false,
            "rootfs" => true,
            other => return Err(Error::invalid(format!("unknown import format {other:?}"))),
        };
        let rootfs_name = if rootfs {
            if opts.name.is_empty() {
                return Err(Error::invalid("a rootfs import needs an image name"));
            }
            Some(Reference::parse(&opts.name)?.to_string())
        } else {
            None
        };
        let (scope, lease) = self.transfer_lease(namespace, "import")?;
        let this = self.clone();
        let (bscope, bopts) = (scope.clone(), opts.clone());
        let read = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader::new(data);
            match rootfs_name {
                Some(name) => Ok(vec![(
                    name,
                    this.read_rootfs(&bscope, reader, &bopts.platform)?,
                )]),
                None => this.read_archive(&bscope, reader, &bopts.name),
            }
        })
        .await
        .map_err(|e| Error::internal(format!("import task: {e}")));
        let result = match read {
            Ok(Ok(images)) if images.is_empty() => Err(Error::invalid(
                "the archive names no image (give a name to import it under)",
            )),
            Ok(Ok(images)) => self.finish_import(&scope, images, &opts, &tx).await,
            Ok(Err(e)) | Err(e) => Err(e),
        };
        if let Err(err) = self.leases.delete(namespace, &lease, false).await {
            tracing::warn!(%err, lease, "releasing import lease");
        }
        result
    }

    /// Streams `images` of `namespace` as one archive on the returned channel; a failure
    /// arrives on the second channel.
    pub fn export(
        self: &Arc<Self>,
        namespace: &str,
        images: Vec<String>,
        platform: &str,
    ) -> Result<(mpsc::Receiver<Bytes>, tokio::sync::oneshot::Receiver<Error>), Error> {
        if images.is_empty() {
            return Err(Error::invalid("name at least one image to export"));
        }
        let wanted = if platform.is_empty() {
            None
        } else {
            Some(Platform::parse(platform)?)
        };
        for name in &images {
            self.images.get(namespace, name)?;
        }
        let (tx, rx) = mpsc::channel(8);
        let (err_tx, err_rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        let ns = namespace.to_string();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = this.write_archive(&ns, &images, wanted.as_ref(), tx) {
                let _ = err_tx.send(e);
            }
        });
        Ok((rx, err_rx))
    }
}
