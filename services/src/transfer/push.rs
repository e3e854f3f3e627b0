//! Pushing a stored image: every blob the chosen manifests need (skipping what the registry
//! has, mounting from the image's own repository when it lives on the same registry), then the
//! manifests by digest, then the top manifest or index by the destination's tag.

use std::io::Read;

use berth_proto::{berth::transfer::v1::Progress, digest::Digest, errdefs::Error};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{ProgressTx, Transfer, report};
use crate::registry::{
    Descriptor, ManifestDocument, Platform, Reference, RegistryClient, manifest, platform,
};

/// What a push asks for.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The stored image's name.
    pub image: String,
    /// Destination reference; empty for the image's own name.
    pub reference: String,
    /// Push only this platform's manifest (`os/arch[/variant]`); empty for all stored ones.
    pub platform: String,
    /// Plain HTTP to the registry.
    pub plain_http: bool,
    /// Registry credentials, if given.
    pub credentials: Option<(String, String)>,
}

/// Bytes per chunk read from the content store while uploading.
const CHUNK: usize = 1 << 20;

impl Transfer {
    /// Pushes `opts.image` from `namespace`; returns the destination and the pushed digest.
    pub async fn push(
        &self,
        namespace: &str,
        opts: PushOptions,
        tx: ProgressTx,
    ) -> Result<(String, Digest), Error> {
        let record = self.images.get(namespace, &opts.image)?;
        let dest = Reference::parse(if opts.reference.is_empty() {
            &opts.image
        } else {
            &opts.reference
        })?;
        let source = Reference::parse(&opts.image).ok();
        let mount_from = source
            .filter(|s| s.registry == dest.registry)
            .map(|s| s.repository);
        let client = self.client_for(&dest, &opts.credentials, opts.plain_http)?;

        let top_digest = Digest::parse(&record.target.digest)?;
        let top_type = record.target.media_type.clone();
        let top = self.read_all(namespace, &top_digest).await?;
        let (push_type, push_bytes) = match manifest::parse(&top_type, &top)? {
            ManifestDocument::Index(index) => {
                let chosen: Vec<Descriptor> = if opts.platform.is_empty() {
                    index
                        .manifests
                        .iter()
                        .filter(|m| self.content.info(namespace, &m.digest).is_ok())
                        .cloned()
                        .collect()
                } else {
                    let wanted = Platform::parse(&opts.platform)?;
                    vec![platform::select(&index, &wanted).ok_or_else(|| {
                        Error::not_found(format!("no {wanted} manifest in {}", opts.image))
                    })?]
                };
                for m in &chosen {
                    let body = self.read_all(namespace, &m.digest).await?;
                    self.push_manifest_tree(
                        namespace,
                        &client,
                        &dest,
                        mount_from.as_deref(),
                        &m.media_type,
                        &body,
                        &tx,
                    )
                    .await?;
                    client
                        .push_manifest(
                            &dest.with_digest(m.digest.clone()),
                            &m.media_type,
                            Bytes::from(body),
                        )
                        .await?;
                }
                if opts.platform.is_empty() {
                    (top_type, top)
                } else {
                    let m = &chosen[0];
                    (
                        m.media_type.clone(),
                        self.read_all(namespace, &m.digest).await?,
                    )
                }
            }
            ManifestDocument::Manifest(_) => {
                self.push_manifest_tree(
                    namespace,
                    &client,
                    &dest,
                    mount_from.as_deref(),
                    &top_type,
                    &top,
                    &tx,
                )
                .await?;
                (top_type, top)
            }
        };
        let digest = client
            .push_manifest(&dest, &push_type, Bytes::from(push_bytes))
            .await?;
        let _ = tx
            .send(Progress {
                event: "done".into(),
                id: dest.to_string(),
                digest: digest.to_string(),
                ..Default::default()
            })
            .await;
        Ok((dest.to_string(), digest))
    }

    /// Pushes the config and layers of one manifest.
    #[allow(clippy::too_many_arguments)]
    async fn push_manifest_tree(
        &self,
        namespace: &str,
        client: &RegistryClient,
        dest: &Reference,
        mount_from: Option<&str>,
        media_type: &str,
        body: &[u8],
        tx: &ProgressTx,
    ) -> Result<(), Error> {
        let ManifestDocument::Manifest(m) = manifest::parse(media_type, body)? else {
            return Err(Error::invalid("an index inside an index cannot be pushed"));
        };
        for blob in std::iter::once(&m.config).chain(m.layers.iter()) {
            let id = blob.digest.to_string();
            if client.blob_exists(dest, &blob.digest).await?.is_some() {
                report(tx, "exists", &id, &blob.media_type, blob.size, blob.size).await;
                continue;
            }
            report(tx, "uploading", &id, &blob.media_type, 0, blob.size).await;
            let body = self.blob_stream(namespace, &blob.digest)?;
            client
                .push_blob(dest, &blob.digest, blob.size as u64, body, mount_from)
                .await?;
            report(tx, "uploaded", &id, &blob.media_type, blob.size, blob.size).await;
        }
        Ok(())
    }

    async fn read_all(&self, namespace: &str, digest: &Digest) -> Result<Vec<u8>, Error> {
        let (mut file, size) = self.content.reader(namespace, digest)?;
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(size.max(0) as usize);
            file.read_to_end(&mut buf)
                .map_err(|e| berth_proto::errdefs::io_error(format!("read {digest}"), e))?;
            Ok(buf)
        })
        .await
        .map_err(|e| Error::internal(format!("read task: {e}")))?
    }

    /// The bytes of a stored blob as a stream, read on a blocking thread.
    fn blob_stream(
        &self,
        namespace: &str,
        digest: &Digest,
    ) -> Result<ReceiverStream<Result<Bytes, Error>>, Error> {
        let (mut file, _) = self.content.reader(namespace, digest)?;
        let (tx, rx) = mpsc::channel(4);
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                let mut buf = vec![0u8; CHUNK];
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(berth_proto::errdefs::io_error(
                            format!("read {digest}"),
                            e,
                        )));
                        return;
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}
