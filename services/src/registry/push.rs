//! Writing to a registry: blob uploads (monolithic or chunked), cross-repository mounts and
//! manifest pushes, all against the registry's push endpoint (never a mirror).
//!
//! A blob push first asks whether the blob is already there (`HEAD`), then tries a mount from
//! `mount_from` when given (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`: `201` means
//! done). Otherwise an upload session is opened (`POST`) and
//!
//! * a blob of at most the chunk size (16 MiB by default) is read into memory and sent with
//!   one `PUT <location>?digest=…`;
//! * a larger one is sent as `PATCH` requests of one chunk each, with `Content-Range`, each
//!   to the `Location` the previous answer gave, then closed by an empty `PUT …?digest=…`.
//!   A chunk whose `PATCH` fails transiently is not blindly resent: the session's progress is
//!   read back (`GET <location>`, `Range` header) and the chunk is resent only from a known
//!   position.
//!
//! The bytes are hashed while they stream; a blob whose size or digest differs from what the
//! caller declared is refused before the upload is committed (FailedPrecondition for the
//! size, DataLoss for the digest), and the session is cancelled (`DELETE`).

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use reqwest::{
    StatusCode,
    header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION},
};
use url::Url;

use super::{
    client::{RegistryClient, Retry, Target, status_error},
    hosts::RegistryHost,
    pull::DOCKER_CONTENT_DIGEST,
    reference::Reference,
    verify::{self, Hasher},
};

/// The header a registry may send to ask for a minimum chunk size (OCI distribution spec).
const CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";

/// An open upload session.
struct Upload<'a> {
    reference: &'a Reference,
    repository: String,
    target: Target<'a>,
    location: Url,
    what: String,
}

impl RegistryClient {
    /// Pushes blob `digest` of `size` bytes, read from `body`, to `reference`'s repository.
    /// Skips the upload if the blob is already there, and tries a cross-repository mount
    /// from `mount_from` (a repository of the same registry) first when given; in both cases
    /// `body` is not read. Returns once the registry has committed the blob.
    pub async fn push_blob<S>(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        body: S,
        mount_from: Option<&str>,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        let hosts = self.hosts_for(reference, |c| c.push)?;
        let host = &hosts[0];
        let repo = &reference.repository;
        let what = format!("blob {}@{digest}", reference.name());
        if self
            .blob_exists_at(reference, host, repo, digest, true)
            .await?
            .is_some()
        {
            tracing::debug!(%digest, "blob already present; not pushing");
            return Ok(());
        }
        let mut scope = format!("repository:{repo}:pull,push");
        let mut start = self.url(reference, host, repo, "blobs/uploads/")?;
        let mount_from = mount_from.filter(|f| f != repo);
        if let Some(from) = mount_from {
            reference.in_repository(from)?;
            scope.push_str(&format!(" repository:{from}:pull"));
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let target = Target::new(reference, host, scope);
        let req = self
            .http_for(host)?
            .post(start)
            .header(CONTENT_LENGTH, 0)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, req, Retry::Transient).await?;
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => {
                tracing::debug!(%digest, from = ?mount_from, "blob mounted");
                return Ok(());
            }
            StatusCode::ACCEPTED => {}
            _ => return Err(status_error(resp, &format!("starting upload of {what}")).await),
        }
        let location = location(&resp, &what)?;
        let min_chunk = resp
            .headers()
            .get(CHUNK_MIN_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let chunk_size = self.shared.chunk_size.max(min_chunk);
        let mut upload = Upload {
            reference,
            repository: repo.clone(),
            target,
            location,
            what,
        };
        let result = if size <= chunk_size as u64 {
            self.upload_monolithic(&mut upload, host, digest, size, body)
                .await
        } else {
            self.upload_chunked(&mut upload, host, digest, size, body, chunk_size)
                .await
        };
        if result.is_err() {
            self.cancel(&upload, host).await;
        }
        result
    }

    async fn upload_monolithic<S>(
        &self,
        upload: &mut Upload<'_>,
        host: &RegistryHost,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut buf = BytesMut::with_capacity(size as usize);
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| e.context(format!("reading {}", upload.what)))?;
            if buf.len() as u64 + piece.len() as u64 > size {
                return Err(size_mismatch(&upload.what, size, "more"));
            }
            buf.extend_from_slice(&piece);
        }
        if (buf.len() as u64) < size {
            return Err(size_mismatch(&upload.what, size, "fewer"));
        }
        verify::check(&upload.what, digest, &buf)?;
        self.finish(upload, host, digest, buf.freeze()).await
    }

    async fn upload_chunked<S>(
        &self,
        upload: &mut Upload<'_>,
        host: &RegistryHost,
        digest: &Digest,
        size: u64,
        body: S,
        chunk_size: usize,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut hasher = Hasher::new(digest.algorithm());
        let mut buf = BytesMut::with_capacity(chunk_size);
        let mut sent: u64 = 0;
        let mut read: u64 = 0;
        loop {
            let piece = body.next().await;
            let end = piece.is_none();
            if let Some(piece) = piece {
                let piece = piece.map_err(|e| e.context(format!("reading {}", upload.what)))?;
                read += piece.len() as u64;
                if read > size {
                    return Err(size_mismatch(&upload.what, size, "more"));
                }
                hasher.update(&piece);
                buf.extend_from_slice(&piece);
            }
            while buf.len() >= chunk_size || (end && !buf.is_empty()) {
                let n = buf.len().min(chunk_size);
                let chunk = buf.split_to(n).freeze();
                self.patch(upload, host, sent, chunk).await?;
                sent += n as u64;
            }
            if end {
                break;
            }
        }
        if read < size {
            return Err(size_mismatch(&upload.what, size, "fewer"));
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(verify::mismatch(&upload.what, digest, &actual));
        }
        self.finish(upload, host, digest, Bytes::new()).await
    }

    /// Sends one chunk starting at `start`; on a transient failure reads the session's
    /// progress back and resends only from a position the registry confirms.
    async fn patch(
        &self,
        upload: &mut Upload<'_>,
        host: &RegistryHost,
        start: u64,
        chunk: Bytes,
    ) -> Result<(), Error> {
        let end = start + chunk.len() as u64;
        let policy = self.shared.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self
                .http_for(host)?
                .patch(upload.location.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, format!("{start}-{}", end - 1))
                .header(CONTENT_LENGTH, chunk.len())
                .body(chunk.clone())
                .build()
                .map_err(|e| Error::internal(e.to_string()))?;
            let failure = match self.send(&upload.target, req, Retry::Never).await {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    upload.location = location(&resp, &upload.what)?;
                    return Ok(());
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    status_error(resp, &format!("uploading {}", upload.what)).await
                }
                Ok(resp) => {
                    return Err(status_error(resp, &format!("uploading {}", upload.what)).await);
                }
                Err(e) if e.kind == Kind::Unavailable => e,
                Err(e) => return Err(e),
            };
            if attempt >= policy.max_attempts {
                return Err(failure);
            }
            tokio::time::sleep(policy.backoff(attempt)).await;
            match self.progress(upload, host).await? {
                Some(n) if n == end => return Ok(()),
                Some(n) if n == start => {
                    tracing::debug!(start, attempt, "resending chunk");
                }
                other => {
                    return Err(Error::new(
                        Kind::Unavailable,
                        format!(
                            "uploading {}: chunk {start}-{end} failed ({}) and the registry \
                             reports {other:?} bytes received",
                            upload.what, failure.message
                        ),
                    ));
                }
            }
        }
    }

    /// How many bytes the upload session holds (`GET <location>` → `Range: 0-<last>`), and
    /// the session's current location.
    async fn progress(
        &self,
        upload: &mut Upload<'_>,
        host: &RegistryHost,
    ) -> Result<Option<u64>, Error> {
        let req = self
            .http_for(host)?
            .get(upload.location.clone())
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&upload.target, req, Retry::Transient).await?;
        if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
            return Err(status_error(resp, &format!("upload status of {}", upload.what)).await);
        }
        if resp.headers().contains_key(LOCATION) {
            upload.location = location(&resp, &upload.what)?;
        }
        let range = resp
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, last)| last.trim().parse::<u64>().ok());
        Ok(range.map(|last| last + 1).or(Some(0)))
    }

    /// Commits the upload with `PUT <location>?digest=…`, carrying `body` (empty after
    /// chunks).
    async fn finish(
        &self,
        upload: &mut Upload<'_>,
        host: &RegistryHost,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), Error> {
        let mut url = upload.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let req = self
            .http_for(host)?
            .put(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&upload.target, req, Retry::Transient).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            // A retried PUT whose first try committed finds its session gone: the blob is
            // there if the registry says so.
            let err = status_error(resp, &format!("committing {}", upload.what)).await;
            let repo = upload.repository.clone();
            let there = self
                .blob_exists_at(upload.reference, host, &repo, digest, true)
                .await
                .ok()
                .flatten();
            return if there.is_some() { Ok(()) } else { Err(err) };
        }
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(resp, &format!("committing {}", upload.what)).await);
        }
        check_announced(&resp, &upload.what, digest)
    }

    /// Cancels an upload session, best effort.
    async fn cancel(&self, upload: &Upload<'_>, host: &RegistryHost) {
        let Ok(http) = self.http_for(host) else {
            return;
        };
        let Ok(req) = http.delete(upload.location.clone()).build() else {
            return;
        };
        if let Err(e) = self.send(&upload.target, req, Retry::Never).await {
            tracing::debug!(error = %e, "cancelling upload failed");
        }
    }

    /// Pushes a manifest or index of `media_type` to `reference`: under its tag if it has
    /// one, else under its digest (which must be the digest of `body`: InvalidArgument
    /// otherwise). Returns the digest of `body`; DataLoss if the registry announces another.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, Error> {
        let algorithm = reference
            .digest
            .as_ref()
            .map_or(berth_proto::digest::Algorithm::Sha256, Digest::algorithm);
        let digest = verify::digest_of(algorithm, &body);
        if let Some(want) = &reference.digest
            && want != &digest
        {
            return Err(Error::invalid(format!(
                "cannot push manifest to {reference}: its content has digest {digest}"
            )));
        }
        let object = match &reference.tag {
            Some(tag) => tag.clone(),
            None => digest.to_string(),
        };
        let hosts = self.hosts_for(reference, |c| c.push)?;
        let host = &hosts[0];
        let what = format!("manifest {}:{object}", reference.name());
        let url = self.url(
            reference,
            host,
            &reference.repository,
            &format!("manifests/{object}"),
        )?;
        let target = Target::new(
            reference,
            host,
            format!("repository:{}:pull,push", reference.repository),
        );
        let req = self
            .http_for(host)?
            .put(url)
            .header(CONTENT_TYPE, media_type)
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, req, Retry::Transient).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &format!("pushing {what}")).await);
        }
        check_announced(&resp, &what, &digest)?;
        Ok(digest)
    }
}

/// DataLoss if the response announces a digest of the same algorithm other than `digest`.
fn check_announced(resp: &reqwest::Response, what: &str, digest: &Digest) -> Result<(), Error> {
    let announced = resp
        .headers()
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v.trim()).ok());
    match announced {
        Some(a) if a.algorithm() == digest.algorithm() && &a != digest => Err(verify::mismatch(
            &format!("{what} (registry's Docker-Content-Digest)"),
            digest,
            &a,
        )),
        _ => Ok(()),
    }
}

/// The upload URL a response points to, resolved against the request URL.
fn location(resp: &reqwest::Response, what: &str) -> Result<Url, Error> {
    let raw = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::new(
                Kind::Unknown,
                format!("uploading {what}: the registry sent no upload Location"),
            )
        })?;
    resp.url().join(raw).map_err(|e| {
        Error::new(
            Kind::Unknown,
            format!("uploading {what}: bad upload Location {raw:?}: {e}"),
        )
    })
}

fn size_mismatch(what: &str, size: u64, more_or_fewer: &str) -> Error {
    Error::precondition(format!(
        "pushing {what}: the content has {more_or_fewer} bytes than the declared {size}"
    ))
}
