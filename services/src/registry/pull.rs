//! Reading from a registry: resolve a reference, fetch manifests and blobs, check blobs.
//!
//! Resolution and fetches try the registry's endpoints in order (mirrors first, see
//! [`super::hosts`]) and move to the next one on NotFound or another failure; the first
//! failure that is not NotFound is what is reported when every endpoint fails. Manifests are
//! always verified against their digest. Blob streams are not (a resumed stream lacks the
//! prefix): the content store verifies what it ingests.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{
    Method, StatusCode,
    header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, RANGE},
};

use super::{
    client::{MAX_MANIFEST_SIZE, RegistryClient, Retry, Target, status_error},
    hosts::RegistryHost,
    manifest::{self, Descriptor, media_types},
    reference::Reference,
    verify,
};

/// The header registries use to announce a manifest's or blob's digest.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A blob's bytes as they arrive, from the offset asked for to the end.
pub struct BlobStream {
    size: Option<u64>,
    offset: u64,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl BlobStream {
    /// The blob's total size, when the registry said it (it always does in practice).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Where in the blob the stream starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

fn scope_pull(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse().ok())
}

/// Collects the failures of the hosts tried in turn: NotFound moves on quietly, other errors
/// are remembered, and the first of them is what is reported if no host succeeds.
#[derive(Default)]
struct Failures {
    not_found: Option<Error>,
    first: Option<Error>,
}

impl Failures {
    /// Records `err` from `host`; returns it back if trying further hosts is pointless.
    fn record(&mut self, host: &RegistryHost, err: Error) -> Result<(), Error> {
        match err.kind {
            Kind::NotImplemented => return Err(err),
            Kind::NotFound => {
                self.not_found.get_or_insert(err);
            }
            _ => {
                tracing::debug!(host = %host.host, error = %err, "trying the next host");
                self.first.get_or_insert(err);
            }
        }
        Ok(())
    }

    fn into_error(self) -> Error {
        self.first
            .or(self.not_found)
            .unwrap_or_else(|| Error::internal("no hosts to try"))
    }
}

impl RegistryClient {
    /// Resolves `reference` (by digest if it has one, else by tag) to the descriptor of its
    /// manifest or index: media type, digest and size. Uses `HEAD`, falling back to `GET`
    /// when the registry does not answer `HEAD` usefully; a fetched body is verified against
    /// the announced or requested digest (DataLoss on mismatch). Schema 1 is NotImplemented,
    /// an unknown reference NotFound.
    pub async fn resolve(&self, reference: &Reference) -> Result<Descriptor, Error> {
        let hosts = self.hosts_for(reference, |c| c.resolve)?;
        let mut failures = Failures::default();
        for host in &hosts {
            match self.resolve_at(reference, host).await {
                Ok(desc) => return Ok(desc),
                Err(e) => failures.record(host, e)?,
            }
        }
        Err(match failures.into_error() {
            e if e.kind == Kind::NotFound => Error::not_found(reference),
            e => e,
        })
    }

    async fn resolve_at(
        &self,
        reference: &Reference,
        host: &RegistryHost,
    ) -> Result<Descriptor, Error> {
        let what = format!("manifest {reference}");
        let url = self.url(
            reference,
            host,
            &reference.repository,
            &format!("manifests/{}", reference.object()),
        )?;
        let target = Target::new(reference, host, scope_pull(&reference.repository));
        let http = self.http_for(host)?;
        let head = http
            .request(Method::HEAD, url.clone())
            .header(ACCEPT, media_types::ACCEPT_MANIFESTS)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, head, Retry::Transient).await?;
        match resp.status() {
            s if s.is_success() => {
                let headers = resp.headers();
                let ct = header(headers, CONTENT_TYPE.as_str())
                    .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
                if let Some(ct) = &ct
                    && manifest::is_schema1(ct)
                {
                    return Err(Error::new(
                        Kind::NotImplemented,
                        manifest::SCHEMA1_UNSUPPORTED,
                    ));
                }
                let digest = header(headers, DOCKER_CONTENT_DIGEST)
                    .and_then(|d| Digest::parse(d.trim()).ok());
                let size = content_length(headers);
                let consistent = match (&reference.digest, &digest) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                };
                let known_type = ct
                    .as_deref()
                    .is_some_and(|c| manifest::is_index(c) || manifest::is_manifest(c));
                if let (true, true, Some(digest), Some(size), Some(ct)) =
                    (consistent, known_type, digest, size, ct)
                {
                    return Ok(Descriptor {
                        media_type: ct,
                        digest,
                        size: size as i64,
                        ..Descriptor::default()
                    });
                }
                // Not enough to go on (or a doubtful answer): fetch and check the body.
            }
            StatusCode::NOT_FOUND => return Err(Error::not_found(&what)),
            StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED
            | StatusCode::BAD_REQUEST => {}
            _ => return Err(status_error(resp, &what).await),
        }
        let (media_type, digest, body) = self
            .get_manifest(
                reference,
                host,
                &reference.object(),
                reference.digest.as_ref(),
            )
            .await?;
        Ok(Descriptor {
            media_type,
            digest,
            size: body.len() as i64,
            ..Descriptor::default()
        })
    }

    /// GETs `manifests/<object>` from `host`, checks it against `expected` (or against the
    /// registry's `Docker-Content-Digest` when nothing is expected) and returns media type,
    /// digest and body.
    async fn get_manifest(
        &self,
        reference: &Reference,
        host: &RegistryHost,
        object: &str,
        expected: Option<&Digest>,
    ) -> Result<(String, Digest, Bytes), Error> {
        let what = format!("manifest {}@{object}", reference.name());
        let url = self.url(
            reference,
            host,
            &reference.repository,
            &format!("manifests/{object}"),
        )?;
        let target = Target::new(reference, host, scope_pull(&reference.repository));
        let req = self
            .http_for(host)?
            .get(url)
            .header(ACCEPT, media_types::ACCEPT_MANIFESTS)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, req, Retry::Transient).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &what).await);
        }
        let ct = header(resp.headers(), CONTENT_TYPE.as_str()).map(str::to_string);
        let announced = header(resp.headers(), DOCKER_CONTENT_DIGEST)
            .and_then(|d| Digest::parse(d.trim()).ok());
        if content_length(resp.headers()).is_some_and(|n| n > MAX_MANIFEST_SIZE as u64) {
            return Err(too_large(&what));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::new(Kind::Unavailable, format!("{what}: reading the body: {e}"))
            })?;
            if body.len() + chunk.len() > MAX_MANIFEST_SIZE {
                return Err(too_large(&what));
            }
            body.extend_from_slice(&chunk);
        }
        let media_type = manifest::detect_media_type(ct.as_deref(), &body)?;
        let digest = match (expected, &announced) {
            (Some(want), _) => {
                verify::check(&what, want, &body)?;
                want.clone()
            }
            (None, Some(announced)) => {
                verify::check(&what, announced, &body)?;
                announced.clone()
            }
            (None, None) => Digest::sha256_of(&body),
        };
        if let Some(announced) = announced
            && announced.algorithm() == digest.algorithm()
            && announced != digest
        {
            return Err(verify::mismatch(
                &format!("{what} (Docker-Content-Digest)"),
                &digest,
                &announced,
            ));
        }
        Ok((media_type, digest, Bytes::from(body)))
    }

    /// Fetches the manifest or index `digest` of `reference`'s repository and verifies it.
    /// Returns its media type (from the response, or from the body when the registry is
    /// vague) and its bytes. Schema 1 is NotImplemented, a digest mismatch DataLoss.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(String, Bytes), Error> {
        let hosts = self.hosts_for(reference, |c| c.pull)?;
        let object = digest.to_string();
        let mut failures = Failures::default();
        for host in &hosts {
            match self
                .get_manifest(reference, host, &object, Some(digest))
                .await
            {
                Ok((media_type, _, body)) => return Ok((media_type, body)),
                Err(e) => failures.record(host, e)?,
            }
        }
        Err(failures.into_error())
    }

    /// Streams blob `digest` of `reference`'s repository from byte `offset` on (a `Range`
    /// request when `offset > 0`; if the registry ignores it and sends the whole blob, the
    /// first `offset` bytes are skipped). Redirects to storage are followed (credentials are
    /// not sent to other hosts). The stream is not verified; a connection lost midway
    /// yields an Unavailable item, after which the caller may resume from where it got to.
    pub async fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        let hosts = self.hosts_for(reference, |c| c.pull)?;
        let mut failures = Failures::default();
        for host in &hosts {
            match self.fetch_blob_at(reference, host, digest, offset).await {
                Ok(stream) => return Ok(stream),
                Err(e) => failures.record(host, e)?,
            }
        }
        Err(failures.into_error())
    }

    async fn fetch_blob_at(
        &self,
        reference: &Reference,
        host: &RegistryHost,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        let what = format!("blob {}@{digest}", reference.name());
        let url = self.url(
            reference,
            host,
            &reference.repository,
            &format!("blobs/{digest}"),
        )?;
        let target = Target::new(reference, host, scope_pull(&reference.repository));
        let mut req = self.http_for(host)?.get(url);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
        }
        let req = req.build().map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, req, Retry::Transient).await?;
        let status = resp.status();
        let (size, skip) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = header(resp.headers(), CONTENT_RANGE.as_str()).unwrap_or("");
                let (start, total) = parse_content_range(range).ok_or_else(|| {
                    Error::new(
                        Kind::Unavailable,
                        format!("{what}: bad Content-Range {range:?} in a partial response"),
                    )
                })?;
                if start != offset {
                    return Err(Error::new(
                        Kind::DataLoss,
                        format!("{what}: asked for bytes from {offset}, got them from {start}"),
                    ));
                }
                let total = total.or_else(|| content_length(resp.headers()).map(|n| n + offset));
                (total, 0)
            }
            s if s.is_success() => (content_length(resp.headers()), offset),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(Error::new(
                    Kind::OutOfRange,
                    format!("{what}: offset {offset} is beyond the end of the blob"),
                ));
            }
            _ => return Err(status_error(resp, &what).await),
        };
        if let Some(size) = size
            && offset > size
        {
            return Err(Error::new(
                Kind::OutOfRange,
                format!("{what}: offset {offset} is beyond the end ({size} bytes)"),
            ));
        }
        let expected = size.map(|s| s - offset);
        Ok(BlobStream {
            size,
            offset,
            inner: Box::pin(body_stream(resp, what, skip, expected)),
        })
    }

    /// Whether blob `digest` is in `reference`'s repository on its push endpoint (the
    /// registry itself, not a pull-only mirror): `Some(size)` if it is, `None` if not.
    pub async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        let hosts = self.hosts_for(reference, |c| c.push)?;
        self.blob_exists_at(reference, &hosts[0], &reference.repository, digest, false)
            .await
    }

    /// `HEAD blobs/<digest>` in `repository` on `host`.
    pub(super) async fn blob_exists_at(
        &self,
        reference: &Reference,
        host: &RegistryHost,
        repository: &str,
        digest: &Digest,
        for_push: bool,
    ) -> Result<Option<u64>, Error> {
        let what = format!("blob {}/{repository}@{digest}", reference.registry);
        let url = self.url(reference, host, repository, &format!("blobs/{digest}"))?;
        let scope = if for_push {
            format!("repository:{repository}:pull,push")
        } else {
            scope_pull(repository)
        };
        let target = Target::new(reference, host, scope);
        let req = self
            .http_for(host)?
            .head(url)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let resp = self.send(&target, req, Retry::Transient).await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(content_length(resp.headers()).unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(resp, &what).await),
        }
    }
}

fn too_large(what: &str) -> Error {
    Error::new(
        Kind::ResourceExhausted,
        format!("{what}: larger than the {MAX_MANIFEST_SIZE}-byte manifest limit"),
    )
}

/// Parses `bytes <start>-<end>/<total|*>` into the start and the total, if known.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let v = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = v.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

/// The response body as a stream of `Bytes`, without its first `skip` bytes, failing with
/// Unavailable if it ends before `expected` bytes (when known) have been yielded.
fn body_stream(
    resp: reqwest::Response,
    what: String,
    skip: u64,
    expected: Option<u64>,
) -> impl Stream<Item = Result<Bytes, Error>> + Send {
    struct State<S> {
        inner: S,
        what: String,
        skip: u64,
        yielded: u64,
        expected: Option<u64>,
        done: bool,
    }
    let state = State {
        inner: Box::pin(resp.bytes_stream()),
        what,
        skip,
        yielded: 0,
        expected,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(mut chunk)) => {
                    if st.skip > 0 {
                        let n = st.skip.min(chunk.len() as u64);
                        st.skip -= n;
                        chunk = chunk.slice(n as usize..);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    st.yielded += chunk.len() as u64;
                    if let Some(exp) = st.expected
                        && st.yielded > exp
                    {
                        st.done = true;
                        let e = Error::new(
                            Kind::DataLoss,
                            format!("{}: the registry sent more than {exp} bytes", st.what),
                        );
                        return Some((Err(e), st));
                    }
                    return Some((Ok(chunk), st));
                }
                Some(Err(e)) => {
                    st.done = true;
                    let e = Error::new(
                        Kind::Unavailable,
                        format!(
                            "{}: connection lost after {} bytes: {e}",
                            st.what, st.yielded
                        ),
                    );
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    return match st.expected {
                        Some(exp) if st.yielded < exp || st.skip > 0 => {
                            let e = Error::new(
                                Kind::Unavailable,
                                format!(
                                    "{}: body ended after {} of {exp} bytes",
                                    st.what, st.yielded
                                ),
                            );
                            Some((Err(e), st))
                        }
                        _ => None,
                    };
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_ranges() {
        assert_eq!(parse_content_range("bytes 10-19/20"), Some((10, Some(20))));
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 5-4/20"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }
}
