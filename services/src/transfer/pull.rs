//! Pulling an image: resolve → fetch manifests, config and layers (parallel, resumable) →
//! unpack in order → name the image.

use std::{collections::HashMap, sync::Arc};

use berth_proto::{
    berth::transfer::v1::Progress,
    digest::Digest,
    errdefs::{Error, Kind},
};
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use super::{DEFAULT_SNAPSHOTTER, PARALLEL_DOWNLOADS, ProgressTx, Transfer, report};
use crate::{
    blocking::run as blocking,
    diff::{Layer, UNCOMPRESSED_LABEL},
    registry::{
        Descriptor, ManifestDocument, Platform, Reference, RegistryClient, manifest, platform,
    },
    request::Scope,
};

/// What a pull asks for.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The image reference as the user wrote it.
    pub reference: String,
    /// `os/arch[/variant]`, empty for the host's, `all` for every platform.
    pub platform: String,
    /// Snapshotter to unpack into; empty for the default.
    pub snapshotter: String,
    /// Fetch and name only.
    pub skip_unpack: bool,
    /// Plain HTTP to the registry.
    pub plain_http: bool,
    /// Registry credentials, if given.
    pub credentials: Option<(String, String)>,
}

/// The chain IDs of a stack of layer diff IDs (OCI image spec: `sha256(parent + " " + diff)`).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {d}").as_bytes()).to_string(),
        };
        out.push(next);
    }
    out
}

/// How far a layer's download has come, for an unpacker following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Not started (waiting for a download slot).
    Waiting,
    /// Bytes are arriving in the ingest file.
    Writing,
    /// Stored and verified.
    Done,
    /// Given up.
    Failed,
}

/// Reports a download's state; a download that ends without reaching `Done` reports `Failed`.
struct FetchGuard(Option<watch::Sender<Fetch>>);

impl FetchGuard {
    fn set(&self, state: Fetch) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(state);
        }
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        if let Some(tx) = &self.0
            && *tx.borrow() != Fetch::Done
        {
            let _ = tx.send(Fetch::Failed);
        }
    }
}

/// A layer's ingest file, read while its download writes it.
struct Following {
    path: std::path::PathBuf,
    state: watch::Receiver<Fetch>,
}

impl Following {
    /// Waits for the ingest file to exist and returns a reader that follows it to the end of
    /// the download (runs on a blocking thread).
    fn open(mut self) -> Result<FollowReader, Error> {
        loop {
            let state = *self.state.borrow_and_update();
            match std::fs::File::open(&self.path) {
                Ok(file) if state != Fetch::Waiting => {
                    return Ok(FollowReader {
                        file,
                        state: self.state,
                    });
                }
                _ if state == Fetch::Done || state == Fetch::Failed => {
                    return Err(Error::new(
                        Kind::Unavailable,
                        "download ended before it could be followed",
                    ));
                }
                _ => {
                    if futures::executor::block_on(self.state.changed()).is_err() {
                        return Err(Error::new(Kind::Unavailable, "download went away"));
                    }
                }
            }
        }
    }
}

/// Reads a growing file until its download is done.
struct FollowReader {
    file: std::fs::File,
    state: watch::Receiver<Fetch>,
}

impl std::io::Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let state = *self.state.borrow_and_update();
            let n = self.file.read(buf)?;
            if n > 0 || state == Fetch::Done {
                return Ok(n);
            }
            if state == Fetch::Failed || futures::executor::block_on(self.state.changed()).is_err()
            {
                return Err(std::io::Error::other("the download failed"));
            }
        }
    }
}

/// A download task that is cancelled if the pull gives up before it finishes.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A layer of a manifest being pulled, with its place in the stack.
struct PendingLayer {
    index: usize,
    desc: Descriptor,
}

impl Transfer {
    /// Pulls `opts.reference` into `namespace`, reporting to `tx`; returns the image's name
    /// and target digest.
    pub async fn pull(
        self: &Arc<Self>,
        namespace: &str,
        opts: PullOptions,
        tx: ProgressTx,
    ) -> Result<(String, Digest), Error> {
        let reference = Reference::parse(&opts.reference)?;
        let client = self.client_for(&reference, &opts.credentials, opts.plain_http)?;
        let (scope, lease) = self.transfer_lease(namespace, "pull")?;
        let result = self
            .pull_leased(&scope, &client, &reference, &opts, &tx)
            .await;
        if let Err(err) = self.leases.delete(namespace, &lease, false).await {
            tracing::warn!(%err, lease, "releasing pull lease");
        }
        result
    }

    async fn pull_leased(
        self: &Arc<Self>,
        scope: &Scope,
        client: &RegistryClient,
        reference: &Reference,
        opts: &PullOptions,
        tx: &ProgressTx,
    ) -> Result<(String, Digest), Error> {
        let target = client.resolve(reference).await?;
        let name = reference.to_string();
        let _ = tx
            .send(Progress {
                event: "resolved".into(),
                id: name.clone(),
                media_type: target.media_type.clone(),
                digest: target.digest.to_string(),
                ..Default::default()
            })
            .await;
        let (media_type, bytes) = client.fetch_manifest(reference, &target.digest).await?;
        let wanted = match opts.platform.as_str() {
            "" => Some(Platform::host()),
            "all" => None,
            p => Some(Platform::parse(p)?),
        };
        let snapshotter = if opts.snapshotter.is_empty() {
            DEFAULT_SNAPSHOTTER.to_string()
        } else {
            opts.snapshotter.clone()
        };
        let mut unpacked = opts.skip_unpack;
        match manifest::parse(&media_type, &bytes)? {
            ManifestDocument::Index(index) => {
                let chosen: Vec<Descriptor> = match &wanted {
                    Some(p) => vec![platform::select(&index, p).ok_or_else(|| {
                        Error::not_found(format!(
                            "no match for platform {p} in manifest {}",
                            target.digest
                        ))
                    })?],
                    None => index.manifests.clone(),
                };
                let mut labels = HashMap::new();
                for (i, m) in chosen.iter().enumerate() {
                    labels.insert(
                        format!("containerd.io/gc.ref.content.m.{i}"),
                        m.digest.to_string(),
                    );
                    let (mt, body) = client.fetch_manifest(reference, &m.digest).await?;
                    let host = Platform::host();
                    let unpack_this = !unpacked
                        && m.platform.as_ref().is_none_or(|p| match &wanted {
                            Some(w) => w.matches(p),
                            None => host.matches(p),
                        });
                    unpacked |= unpack_this;
                    let into = unpack_this.then_some(snapshotter.as_str());
                    self.pull_manifest(scope, client, reference, m, &mt, body, into, tx)
                        .await?;
                }
                self.store_bytes(scope, &target.digest, &bytes, labels)
                    .await?;
            }
            ManifestDocument::Manifest(_) => {
                let into = (!unpacked).then_some(snapshotter.as_str());
                self.pull_manifest(
                    scope,
                    client,
                    reference,
                    &target,
                    &media_type,
                    bytes,
                    into,
                    tx,
                )
                .await?;
            }
        }
        self.name_image(&scope.namespace, &name, &target, tx)
            .await?;
        Ok((name, target.digest))
    }

    /// Fetches one platform's manifest, config and layers; returns (config, layers).
    #[allow(clippy::too_many_arguments)]
    async fn pull_manifest(
        self: &Arc<Self>,
        scope: &Scope,
        client: &RegistryClient,
        reference: &Reference,
        desc: &Descriptor,
        media_type: &str,
        body: bytes::Bytes,
        unpack_into: Option<&str>,
        tx: &ProgressTx,
    ) -> Result<(), Error> {
        let ManifestDocument::Manifest(m) = manifest::parse(media_type, &body)? else {
            return Err(Error::invalid(format!(
                "{} is an index inside an index",
                desc.digest
            )));
        };
        let mut labels = HashMap::from([(
            "containerd.io/gc.ref.content.config".to_string(),
            m.config.digest.to_string(),
        )]);
        for (i, l) in m.layers.iter().enumerate() {
            labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.to_string(),
            );
        }
        self.fetch_blob(scope, client, reference, &m.config, tx, None)
            .await?;
        // Downloads start in layer order (the semaphore is fair), a bounded number at a time;
        // unpacking follows behind them, each layer as soon as it is stored and its parent
        // is committed.
        let sem = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
        let mut downloads: Vec<AbortOnDrop> = Vec::with_capacity(m.layers.len());
        let mut watches: Vec<watch::Receiver<Fetch>> = Vec::with_capacity(m.layers.len());
        for layer in &m.layers {
            let (watch_tx, watch_rx) = watch::channel(Fetch::Waiting);
            watches.push(watch_rx);
            let sem = sem.clone();
            let this = self.clone();
            let (scope, client, reference, layer, tx) = (
                scope.clone(),
                client.clone(),
                reference.clone(),
                layer.clone(),
                tx.clone(),
            );
            downloads.push(AbortOnDrop(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                this.fetch_blob(&scope, &client, &reference, &layer, &tx, Some(watch_tx))
                    .await
            })));
        }
        let plan = match unpack_into {
            Some(_) => Some(self.unpack_plan(scope, &m.config, m.layers.len())?),
            None => None,
        };
        for (i, download) in downloads.iter_mut().enumerate() {
            let finished = async {
                (&mut download.0)
                    .await
                    .map_err(|e| Error::internal(format!("download task: {e}")))?
            };
            let (Some(snapshotter), Some((diff_ids, chains))) = (unpack_into, &plan) else {
                finished.await?;
                continue;
            };
            let pending = PendingLayer {
                index: i,
                desc: m.layers[i].clone(),
            };
            if *watches[i].borrow() == Fetch::Done {
                finished.await?;
                self.unpack_layer(scope, snapshotter, &pending, chains, diff_ids, None, tx)
                    .await?;
                continue;
            }
            // Apply while the layer downloads, following its ingest file.
            let follow = Following {
                path: self
                    .content
                    .ingest_data_path(&scope.namespace, &format!("layer-{}", m.layers[i].digest)),
                state: watches[i].clone(),
            };
            let streamed = self.unpack_layer(
                scope,
                snapshotter,
                &pending,
                chains,
                diff_ids,
                Some(follow),
                tx,
            );
            let (downloaded, streamed) = tokio::join!(finished, streamed);
            downloaded?;
            if let Err(err) = streamed {
                tracing::debug!(%err, layer = %m.layers[i].digest, "streamed apply failed; applying the stored layer");
                self.unpack_layer(scope, snapshotter, &pending, chains, diff_ids, None, tx)
                    .await?;
            }
        }
        if let (Some(snapshotter), Some((_, chains))) = (unpack_into, &plan) {
            self.label_unpacked(scope, snapshotter, &m.config, chains)?;
        }
        self.store_bytes(scope, &desc.digest, &body, labels).await?;
        Ok(())
    }

    /// Stores small bytes (manifests, indexes) with labels.
    pub(super) async fn store_bytes(
        &self,
        scope: &Scope,
        digest: &Digest,
        bytes: &[u8],
        labels: HashMap<String, String>,
    ) -> Result<(), Error> {
        let content = self.content.clone();
        let (scope, digest, bytes) = (scope.clone(), digest.clone(), bytes.to_vec());
        blocking(move || {
            if content.info(&scope.namespace, &digest).is_ok() {
                let change = crate::content::LabelUpdate::Keys(labels.into_iter().collect());
                content.update(&scope.namespace, &digest, change)?;
                return Ok(());
            }
            let reference = format!("manifest-{digest}");
            let mut w =
                content.writer(&scope, &reference, bytes.len() as i64, Some(digest.clone()))?;
            if w.status().offset > 0 {
                w.truncate(0)?;
            }
            w.write(&bytes)?;
            match w.commit(bytes.len() as i64, Some(&digest), labels) {
                Ok(_) => Ok(()),
                Err(e) if e.kind == Kind::AlreadyExists => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Streams one blob from the registry into the content store (resuming an earlier
    /// attempt), verified at commit.
    async fn fetch_blob(
        &self,
        scope: &Scope,
        client: &RegistryClient,
        reference: &Reference,
        desc: &Descriptor,
        tx: &ProgressTx,
        watch: Option<watch::Sender<Fetch>>,
    ) -> Result<(), Error> {
        let guard = FetchGuard(watch);
        let id = desc.digest.to_string();
        if self.content.info(&scope.namespace, &desc.digest).is_ok() {
            report(tx, "exists", &id, &desc.media_type, desc.size, desc.size).await;
            guard.set(Fetch::Done);
            return Ok(());
        }
        let content = self.content.clone();
        let (wscope, wdigest, size) = (scope.clone(), desc.digest.clone(), desc.size);
        let reference_name = format!("layer-{id}");
        let writer =
            blocking(move || content.writer(&wscope, &reference_name, size, Some(wdigest))).await;
        let mut writer = match writer {
            Ok(w) => w,
            Err(e) if e.kind == Kind::AlreadyExists => {
                report(tx, "exists", &id, &desc.media_type, desc.size, desc.size).await;
                guard.set(Fetch::Done);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut offset = writer.status().offset;
        if offset > size {
            writer = blocking(move || {
                writer.truncate(0)?;
                Ok(writer)
            })
            .await?;
            offset = 0;
        }
        guard.set(Fetch::Writing);
        if offset < size {
            let mut stream = client
                .fetch_blob(reference, &desc.digest, offset as u64)
                .await?;
            let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
            loop {
                let chunk = stream.next().await.transpose()?;
                let flush = match &chunk {
                    Some(c) => {
                        buf.extend_from_slice(c);
                        buf.len() >= 1 << 20
                    }
                    None => !buf.is_empty(),
                };
                if flush {
                    let data = std::mem::take(&mut buf);
                    let (w, result) = blocking_pair(writer, move |w| w.write(&data)).await?;
                    writer = w;
                    offset += result? as i64;
                    guard.set(Fetch::Writing);
                    buf.reserve(1 << 20);
                    report(tx, "fetching", &id, &desc.media_type, offset, size).await;
                }
                if chunk.is_none() {
                    break;
                }
            }
        }
        let labels = HashMap::new();
        let digest = desc.digest.clone();
        let (_, result) =
            blocking_pair(writer, move |w| w.commit(size, Some(&digest), labels)).await?;
        match result {
            Ok(_) => {}
            Err(e) if e.kind == Kind::AlreadyExists => {}
            Err(e) => return Err(e.context(format!("fetching {id}"))),
        }
        guard.set(Fetch::Done);
        report(tx, "fetched", &id, &desc.media_type, size, size).await;
        Ok(())
    }

    /// Reads the diff IDs from `config` and computes the chain IDs of its `layers` layers.
    fn unpack_plan(
        &self,
        scope: &Scope,
        config: &Descriptor,
        layers: usize,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let (file, _) = self.content.reader(&scope.namespace, &config.digest)?;
        let parsed: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::invalid(format!("image config {}: {e}", config.digest)))?;
        let diff_ids: Vec<String> = parsed["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != layers {
            return Err(Error::invalid(format!(
                "image config {} lists {} diff ids for {} layers",
                config.digest,
                diff_ids.len(),
                layers
            )));
        }
        let chains = chain_ids(&diff_ids);
        Ok((diff_ids, chains))
    }

    /// Roots the unpacked chain at the config, as containerd labels it.
    fn label_unpacked(
        &self,
        scope: &Scope,
        snapshotter: &str,
        config: &Descriptor,
        chains: &[String],
    ) -> Result<(), Error> {
        if let Some(top) = chains.last() {
            let change = crate::content::LabelUpdate::Keys(vec![(
                format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
                top.clone(),
            )]);
            self.content
                .update(&scope.namespace, &config.digest, change)?;
        }
        Ok(())
    }

    /// Applies stored layers in order onto `snapshotter`, skipping chains already unpacked.
    pub(super) async fn unpack(
        self: &Arc<Self>,
        scope: &Scope,
        snapshotter: &str,
        config: &Descriptor,
        layers: &[Descriptor],
        tx: &ProgressTx,
    ) -> Result<(), Error> {
        let (diff_ids, chains) = self.unpack_plan(scope, config, layers.len())?;
        for (i, layer) in layers.iter().enumerate() {
            let pending = PendingLayer {
                index: i,
                desc: layer.clone(),
            };
            self.unpack_layer(scope, snapshotter, &pending, &chains, &diff_ids, None, tx)
                .await?;
        }
        self.label_unpacked(scope, snapshotter, config, &chains)
    }

    #[allow(clippy::too_many_arguments)]
    async fn unpack_layer(
        self: &Arc<Self>,
        scope: &Scope,
        snapshotter: &str,
        layer: &PendingLayer,
        chains: &[String],
        diff_ids: &[String],
        follow: Option<Following>,
        tx: &ProgressTx,
    ) -> Result<(), Error> {
        let i = layer.index;
        let chain = chains[i].clone();
        let id = layer.desc.digest.to_string();
        let snapshots = self.snapshots.clone();
        let ns = scope.namespace.clone();
        let (sn, c) = (snapshotter.to_string(), chain.clone());
        if blocking(move || snapshots.stat(&ns, &sn, &c)).await.is_ok() {
            report(
                tx,
                "unpacked",
                &id,
                &layer.desc.media_type,
                layer.desc.size,
                layer.desc.size,
            )
            .await;
            return Ok(());
        }
        report(
            tx,
            "unpacking",
            &id,
            &layer.desc.media_type,
            0,
            layer.desc.size,
        )
        .await;
        let parent = if i == 0 {
            String::new()
        } else {
            chains[i - 1].clone()
        };
        let key = format!("extract-{} {chain}", uuid::Uuid::new_v4());
        let this = self.clone();
        let (scope2, sn, want) = (scope.clone(), snapshotter.to_string(), diff_ids[i].clone());
        let desc = layer.desc.clone();
        blocking(move || {
            let mounts = this
                .snapshots
                .prepare(&scope2, &sn, &key, &parent, HashMap::new())?;
            let layer = Layer {
                media_type: desc.media_type.clone(),
                digest: desc.digest.clone(),
            };
            let applied = match follow {
                None => this.differ.apply(&scope2, &layer, &mounts),
                Some(f) => f
                    .open()
                    .and_then(|reader| this.differ.apply_stream(&layer, reader, &mounts)),
            };
            let applied = match applied {
                Ok(a) if a.diff_id.to_string() == want => a,
                Ok(a) => {
                    let _ = this.snapshots.remove(&scope2.namespace, &sn, &key);
                    return Err(Error::new(
                        Kind::DataLoss,
                        format!(
                            "layer {} unpacks to {}, config says {want}",
                            desc.digest, a.diff_id
                        ),
                    ));
                }
                Err(e) => {
                    let _ = this.snapshots.remove(&scope2.namespace, &sn, &key);
                    return Err(e);
                }
            };
            let labels = HashMap::from([("containerd.io/snapshot.ref".to_string(), chain.clone())]);
            match this.snapshots.commit(&scope2, &sn, &chain, &key, labels) {
                Ok(()) => {}
                Err(e) if e.kind == Kind::AlreadyExists => {
                    let _ = this.snapshots.remove(&scope2.namespace, &sn, &key);
                }
                Err(e) => {
                    let _ = this.snapshots.remove(&scope2.namespace, &sn, &key);
                    return Err(e);
                }
            }
            let change = crate::content::LabelUpdate::Keys(vec![(
                UNCOMPRESSED_LABEL.to_string(),
                applied.diff_id.to_string(),
            )]);
            if desc.media_type.ends_with("gzip") || desc.media_type.ends_with("zstd") {
                this.content
                    .update(&scope2.namespace, &desc.digest, change)?;
            }
            Ok(())
        })
        .await?;
        report(
            tx,
            "unpacked",
            &id,
            &layer.desc.media_type,
            layer.desc.size,
            layer.desc.size,
        )
        .await;
        Ok(())
    }
}

/// Runs `f` on `w` on a blocking thread and hands `w` back with the result.
async fn blocking_pair<W: Send + 'static, T: Send + 'static>(
    mut w: W,
    f: impl FnOnce(&mut W) -> Result<T, Error> + Send + 'static,
) -> Result<(W, Result<T, Error>), Error> {
    tokio::task::spawn_blocking(move || {
        let r = f(&mut w);
        (w, r)
    })
    .await
    .map_err(|e| Error::internal(format!("blocking task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        assert_eq!(
            chains[1],
            Digest::sha256_of(format!("{a} {b}").as_bytes()).to_string()
        );
    }
}
