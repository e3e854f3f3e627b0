//! Test helpers: a private `docker-registry` on 127.0.0.1, a scripted fake registry, and
//! deterministic test data.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use berth_proto::{digest::Digest, errdefs::Error};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

use crate::registry::{
    Credentials, HostsConfig, Keychain, RegistryClient, RetryPolicy, pull::BlobStream,
};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Whether Debian's `docker-registry` is installed. Without it the live tests are skipped
/// with a message, unless `CI` is set: then they fail.
pub fn registry_available() -> bool {
    if Path::new(REGISTRY_BIN).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{REGISTRY_BIN} is missing and CI is set: install Debian's docker-registry package"
    );
    eprintln!("skipping: {REGISTRY_BIN} is not installed (apt-get install docker-registry)");
    false
}

/// A retry policy that keeps failing tests fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

/// A client speaking plain http to `addr`, with optional credentials.
pub fn client_for(addr: &str, creds: Option<(&str, &str)>) -> RegistryClient {
    let mut keychain = Keychain::new();
    if let Some((u, p)) = creds {
        keychain.insert(addr, Credentials::new(u, p));
    }
    RegistryClient::builder()
        .hosts(HostsConfig::new().plain_http(addr))
        .keychain(keychain)
        .retry(fast_retry())
        .build()
        .unwrap()
}

/// `n` pseudo-random bytes from `seed` (xorshift), so blobs do not compress or repeat.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `data` as a stream of `piece`-byte chunks.
pub fn stream_of(
    data: &[u8],
    piece: usize,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + use<> {
    let pieces: Vec<Result<Bytes, Error>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces)
}

/// Reads a blob stream to the end.
pub async fn collect(mut s: BlobStream) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// The digest of `data`.
pub fn digest(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// A private `docker-registry serve` on a free 127.0.0.1 port with its own storage, killed
/// on drop.
pub struct LocalRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    /// Starts a registry, with htpasswd auth for `user` when given. `None` if the binary is
    /// missing (and CI is unset).
    pub async fn start(user: Option<(&str, &str)>) -> Option<LocalRegistry> {
        if !registry_available() {
            return None;
        }
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(user).await {
                Ok(r) => return Some(r),
                Err(log) => last = log,
            }
        }
        panic!("docker-registry did not start:\n{last}");
    }

    async fn try_start(user: Option<(&str, &str)>) -> Result<LocalRegistry, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    \
             rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  \
             secret: berth-test-secret\n",
            root = dir.path().join("data").display()
        );
        if let Some((u, p)) = user {
            let hash = bcrypt::hash(p, 4).unwrap();
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{u}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("spawning {REGISTRY_BIN}: {e}"))?;
        let mut reg = LocalRegistry {
            child,
            addr,
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(Some(status)) = reg.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", reg.log()));
            }
            if let Ok(resp) = http.get(format!("http://{}/v2/", reg.addr)).send().await
                && (resp.status().is_success() || resp.status() == 401)
            {
                return Ok(reg);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("not answering after 10 s:\n{}", reg.log()))
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Like [`LocalRegistry::count`], but waits up to 5 s for the count to reach `want`
    /// (the registry logs a request just after answering it).
    pub async fn wait_count(&self, needles: &[&str], want: usize) -> usize {
        for _ in 0..50 {
            let n = self.count(needles);
            if n >= want {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.count(needles)
    }

    /// Completed requests whose log line contains every one of `needles`.
    pub fn count(&self, needles: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("response completed"))
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- registry log ({}) ---\n{}", self.addr, self.log());
        }
    }
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The request headers.
    pub headers: hyper::HeaderMap,
    /// The request body.
    pub body: Bytes,
}

impl Seen {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
}

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Reply {
    /// An empty reply with `status`.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }
}

type Handler = Arc<dyn Fn(&Seen, &str) -> Reply + Send + Sync>;

/// A scripted HTTP/1 server on 127.0.0.1: `handler(request, own_base_url)` decides each
/// answer; every request is recorded.
pub struct Fake {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Starts the server.
    pub async fn start(handler: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> Fake {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{local}");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen2);
                let base = base.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let seen = Arc::clone(&seen);
                        let base = base.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let request = Seen {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                            };
                            let reply = handler(&request, &base);
                            seen.lock().unwrap().push(request);
                            let mut resp = hyper::Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, hyper::Error>(resp.body(Full::new(reply.body)).unwrap())
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Fake {
            addr: local.to_string(),
            seen,
            task,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests had `method` and a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path().starts_with(prefix))
            .count()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}
