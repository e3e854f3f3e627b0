//! [`RegistryClient`]: HTTP plumbing shared by pulls and pushes.
//!
//! One client holds one connection pool per TLS setting (most registries share the default
//! one), the [`Authorizer`] with its token cache, the host configuration and the retry
//! policy. Cloning is cheap and clones share all of that. [`RegistryClient::with_plain_http`]
//! gives a view that talks plain http to registries whose upstream is not configured, the
//! per-call equivalent of `ctr --plain-http`.
//!
//! Every request goes through [`RegistryClient::send`]: it adds what the [`Authorizer`]
//! knows, answers one `401` challenge per request, and retries connection errors, `5xx` and
//! `429` with exponential backoff (honouring `Retry-After`), never other `4xx`. Request bodies
//! are always in memory ([`bytes::Bytes`]), so each attempt can resend them; blob uploads are
//! cut into chunks for that reason (see [`RegistryClient::push_blob`]).
//!
//! The operations themselves live in `pull.rs` (resolve, fetch manifests and blobs, blob
//! existence) and `push.rs` (blob upload, cross-repository mount, manifest push).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use berth_proto::errdefs::{Error, Kind};
use reqwest::{
    Certificate, StatusCode,
    header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE},
};
use serde::Deserialize;
use url::Url;

use super::{
    auth::{Authorizer, Keychain, unauthorized},
    hosts::{Capabilities, HostsConfig, RegistryHost},
    reference::Reference,
};

/// The default size of the chunks of a chunked upload, and the largest blob pushed with one
/// monolithic `PUT`.
pub const DEFAULT_CHUNK_SIZE: usize = 16 << 20;
/// The largest manifest accepted (containerd's limit).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;
const SYSTEM_CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each further one.
    pub initial_backoff: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, waiting 200 ms, 400 ms, 800 ms, 1.6 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Builds a [`RegistryClient`]; every setting has a default.
#[derive(Debug, Clone)]
pub struct RegistryClientBuilder {
    hosts: HostsConfig,
    keychain: Keychain,
    retry: RetryPolicy,
    chunk_size: usize,
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        RegistryClientBuilder {
            hosts: HostsConfig::new(),
            keychain: Keychain::new(),
            retry: RetryPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

impl RegistryClientBuilder {
    /// Where each registry's endpoints come from (default: https to the registry itself).
    pub fn hosts(mut self, hosts: HostsConfig) -> Self {
        self.hosts = hosts;
        self
    }

    /// The credentials to use (default: none, anonymous access).
    pub fn keychain(mut self, keychain: Keychain) -> Self {
        self.keychain = keychain;
        self
    }

    /// How failed requests are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The upload chunk size and monolithic-upload limit (default 16 MiB, at least 1 byte).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// The `User-Agent` header (default `berth/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How long to wait for a TCP/TLS connection (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a read may stall before the request fails (default 120 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Builds the client; fails only if the TLS backend cannot be set up.
    pub fn build(self) -> Result<RegistryClient, Error> {
        let client = RegistryClient {
            shared: Arc::new(Shared {
                auth: Authorizer::new(self.keychain),
                hosts: self.hosts,
                retry: RegistryClientBuilder::checked(self.retry),
                chunk_size: self.chunk_size,
                user_agent: self.user_agent,
                connect_timeout: self.connect_timeout,
                read_timeout: self.read_timeout,
                pools: Mutex::default(),
            }),
            plain_http: false,
        };
        client.http_for(&RegistryHost::upstream("https", "localhost"))?;
        Ok(client)
    }

    fn checked(mut retry: RetryPolicy) -> RetryPolicy {
        retry.max_attempts = retry.max_attempts.max(1);
        retry
    }
}

/// A client for registries speaking the OCI distribution API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    pub(super) shared: Arc<Shared>,
    plain_http: bool,
}

/// What clones of a client share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) auth: Authorizer,
    hosts: HostsConfig,
    pub(super) retry: RetryPolicy,
    pub(super) chunk_size: usize,
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    pools: Mutex<HashMap<TlsKey, reqwest::Client>>,
}

/// The TLS settings that need a connection pool of their own.
type TlsKey = (bool, Vec<PathBuf>, Option<(PathBuf, Option<PathBuf>)>);

/// Where a request goes and under which authorization scope.
pub(super) struct Target<'a> {
    /// The name credentials are looked up by: the registry for its own server, the
    /// endpoint's host for a mirror (a mirror never gets the registry's credentials).
    pub(super) creds_key: &'a str,
    /// The endpoint.
    pub(super) host: &'a RegistryHost,
    /// Space-separated token scopes, e.g. `repository:a/b:pull`.
    pub(super) scope: String,
}

impl<'a> Target<'a> {
    /// A request for `reference`'s registry at `host` under `scope`.
    pub(super) fn new(reference: &'a Reference, host: &'a RegistryHost, scope: String) -> Self {
        let creds_key = if host.mirror {
            host.host.as_str()
        } else {
            reference.registry.as_str()
        };
        Target {
            creds_key,
            host,
            scope,
        }
    }
}

/// Whether to retry a request after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Retry connection errors, `5xx` and `429`.
    Transient,
    /// Send once (apart from answering an auth challenge): the caller recovers itself.
    Never,
}

impl RegistryClient {
    /// A client with every default: anonymous, https, five attempts per request.
    pub fn new() -> Result<RegistryClient, Error> {
        RegistryClient::builder().build()
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    /// A view of this client (sharing connections and tokens) that uses plain http for the
    /// default upstream of every registry when `plain_http` is true.
    pub fn with_plain_http(&self, plain_http: bool) -> RegistryClient {
        RegistryClient {
            shared: Arc::clone(&self.shared),
            plain_http,
        }
    }

    /// The endpoints of `reference`'s registry that have the capability `want` selects, in
    /// the order to try them; FailedPrecondition if there are none.
    pub fn hosts_for(
        &self,
        reference: &Reference,
        want: fn(&Capabilities) -> bool,
    ) -> Result<Vec<RegistryHost>, Error> {
        let hosts: Vec<RegistryHost> = self
            .shared
            .hosts
            .hosts(&reference.registry, self.plain_http)?
            .into_iter()
            .filter(|h| want(&h.capabilities))
            .collect();
        if hosts.is_empty() {
            return Err(Error::precondition(format!(
                "no configured host of registry {} can serve this operation",
                reference.registry
            )));
        }
        Ok(hosts)
    }

    /// The URL of `rest` (e.g. `manifests/latest`) in `repository` on `host`.
    pub(super) fn url(
        &self,
        reference: &Reference,
        host: &RegistryHost,
        repository: &str,
        rest: &str,
    ) -> Result<Url, Error> {
        let raw = format!("{}/{repository}/{rest}", host.base_url());
        let mut url = Url::parse(&raw)
            .map_err(|e| Error::invalid(format!("cannot form a URL from {raw:?}: {e}")))?;
        if host.mirror {
            url.query_pairs_mut().append_pair("ns", &reference.registry);
        }
        Ok(url)
    }

    /// The HTTP client for `host`'s TLS settings (created on first use).
    pub(super) fn http_for(&self, host: &RegistryHost) -> Result<reqwest::Client, Error> {
        let key = (host.skip_verify, host.ca.clone(), host.client_cert.clone());
        let mut pools = self.shared.pools.lock().expect("pool map poisoned");
        if let Some(c) = pools.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(self.shared.user_agent.clone())
            .connect_timeout(self.shared.connect_timeout)
            .read_timeout(self.shared.read_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        for cert in system_roots() {
            builder = builder.add_root_certificate(cert.clone());
        }
        for path in &host.ca {
            let pem = std::fs::read(path).map_err(|e| {
                berth_proto::errdefs::io_error(format!("reading CA file {}", path.display()), e)
            })?;
            let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::invalid(format!("CA file {} is not PEM: {e}", path.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &host.client_cert {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| {
                    berth_proto::errdefs::io_error(
                        format!("reading client certificate {}", p.display()),
                        e,
                    )
                })
            };
            let mut pem = read(cert)?;
            if let Some(key) = key {
                pem.push(b'\n');
                pem.extend(read(key)?);
            }
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::invalid(format!(
                    "client certificate {} is not a PEM certificate and key: {e}",
                    cert.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        if host.skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| Error::internal(format!("setting up the HTTP client: {e}")))?;
        pools.insert(key, client.clone());
        Ok(client)
    }

    /// Sends `request` to `target`, authenticating and retrying as the module doc says.
    /// The response may have any status but `401`; callers map the others.
    pub(super) async fn send(
        &self,
        target: &Target<'_>,
        mut request: reqwest::Request,
        retry: Retry,
    ) -> Result<reqwest::Response, Error> {
        let http = self.http_for(target.host)?;
        for (name, value) in &target.host.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                return Err(Error::invalid(format!(
                    "invalid configured header {name:?}"
                )));
            };
            request.headers_mut().append(name, value);
        }
        let policy = self.shared.retry;
        let auth = &self.shared.auth;
        let (method, url) = (request.method().clone(), request.url().clone());
        let mut attempt = 0;
        let mut challenged = false;
        loop {
            attempt += 1;
            let mut req = request
                .try_clone()
                .ok_or_else(|| Error::internal("request body cannot be replayed"))?;
            let authz = auth
                .authorize(&http, target.creds_key, &target.host.host, &target.scope)
                .await?;
            let sent_basic = authz
                .as_ref()
                .is_some_and(|h| h.as_bytes().starts_with(b"Basic "));
            if let Some(h) = authz {
                req.headers_mut().insert(AUTHORIZATION, h);
            }
            let last = retry == Retry::Never || attempt >= policy.max_attempts;
            match http.execute(req).await {
                Err(e) => {
                    let transient = e.is_connect() || e.is_timeout() || e.is_request();
                    if transient && !last {
                        let wait = policy.backoff(attempt);
                        tracing::debug!(%method, %url, attempt, ?wait, error = %e, "retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let hint = if target.host.scheme == "https" && e.is_connect() {
                        " (if this registry serves plain http, configure it as such)"
                    } else {
                        ""
                    };
                    return Err(Error::new(
                        Kind::Unavailable,
                        format!(
                            "{method} {url}: {}{hint} (after {attempt} attempt{})",
                            error_chain(&e),
                            if attempt == 1 { "" } else { "s" }
                        ),
                    ));
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    if challenged {
                        let had = auth.credentials(target.creds_key).is_some();
                        return Err(
                            unauthorized(&target.host.host, had).context(format!("{method} {url}"))
                        );
                    }
                    challenged = true;
                    attempt -= 1;
                    auth.invalidate(&target.host.host, &target.scope);
                    let challenge: Vec<&str> = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    let challenge = (!challenge.is_empty()).then(|| challenge.join(", "));
                    auth.handle_challenge(
                        &http,
                        target.creds_key,
                        &target.host.host,
                        &target.scope,
                        challenge.as_deref(),
                        sent_basic,
                    )
                    .await
                    .map_err(|e| e.context(format!("{method} {url}")))?;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if transient && !last {
                        let wait = retry_after(&resp)
                            .unwrap_or_else(|| policy.backoff(attempt))
                            .min(policy.max_backoff);
                        tracing::debug!(%method, %url, attempt, %status, ?wait, "retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The error and its sources in one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

/// Certificates from the system's CA bundle (added to the built-in web PKI roots, so that
/// CAs installed on the host are trusted too).
fn system_roots() -> &'static [Certificate] {
    static ROOTS: OnceLock<Vec<Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .and_then(|pem| Certificate::from_pem_bundle(&pem).ok())
            .unwrap_or_default()
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Turns an unsuccessful response into an [`Error`] about `what`, classed by status and by
/// the registry's error codes.
pub(super) async fn status_error(resp: reqwest::Response, what: &str) -> Error {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let entries = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| b.errors)
        .unwrap_or_default();
    let codes: Vec<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    let detail = if entries.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string()
    } else {
        entries
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let has = |c: &str| codes.contains(&c);
    let kind = match status {
        StatusCode::NOT_FOUND => Kind::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Kind::PermissionDenied,
        StatusCode::TOO_MANY_REQUESTS => Kind::Unavailable,
        StatusCode::RANGE_NOT_SATISFIABLE => Kind::OutOfRange,
        StatusCode::PAYLOAD_TOO_LARGE => Kind::ResourceExhausted,
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => Kind::NotImplemented,
        StatusCode::BAD_REQUEST if has("DIGEST_INVALID") || has("SIZE_INVALID") => Kind::DataLoss,
        StatusCode::BAD_REQUEST if has("MANIFEST_BLOB_UNKNOWN") || has("BLOB_UNKNOWN") => {
            Kind::FailedPrecondition
        }
        StatusCode::BAD_REQUEST => Kind::InvalidArgument,
        s if s.is_server_error() => Kind::Unavailable,
        _ => Kind::Unknown,
    };
    if kind == Kind::NotFound {
        return Error::not_found(what);
    }
    let label = match kind {
        Kind::PermissionDenied if status == StatusCode::FORBIDDEN => "denied: ",
        Kind::PermissionDenied => "unauthorized: ",
        _ => "",
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    Error::new(kind, format!("{label}{what}: HTTP {status}{detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(RetryPolicy::default().backoff(40), Duration::from_secs(10));
    }

    #[test]
    fn urls_carry_the_namespace_for_mirrors() {
        let client = RegistryClient::new().unwrap();
        let r = Reference::parse("busybox").unwrap();
        let mut host = RegistryHost::upstream("http", "mirror:5000");
        let u = client
            .url(&r, &host, &r.repository, "manifests/latest")
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://mirror:5000/v2/library/busybox/manifests/latest"
        );
        host.mirror = true;
        let u = client.url(&r, &host, &r.repository, "blobs/x").unwrap();
        assert_eq!(
            u.as_str(),
            "http://mirror:5000/v2/library/busybox/blobs/x?ns=docker.io"
        );
    }

    #[test]
    fn plain_http_views_share_state() {
        let client = RegistryClient::new().unwrap();
        let r = Reference::parse("localhost:5000/x").unwrap();
        let https = client.hosts_for(&r, |c| c.pull).unwrap();
        let http = client
            .with_plain_http(true)
            .hosts_for(&r, |c| c.pull)
            .unwrap();
        assert_eq!(https[0].scheme, "https");
        assert_eq!(http[0].scheme, "http");
        assert!(Arc::ptr_eq(
            &client.shared,
            &client.with_plain_http(true).shared
        ));
    }
}
