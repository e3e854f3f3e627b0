//! Against a scripted fake registry: bearer tokens, retries, redirects, servers that ignore
//! Range, schema 1, digest mismatches and upload recovery — what a real local registry will
//! not do on demand.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use base64::Engine as _;
use berth_proto::errdefs::Kind;
use bytes::Bytes;

use super::support::*;
use crate::registry::{
    Credentials, HostsConfig, Keychain, Reference, RegistryClient,
    manifest::{SCHEMA1_UNSUPPORTED, media_types as mt},
};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn manifest_reply() -> Reply {
    Reply::status(200)
        .header("content-type", mt::OCI_MANIFEST)
        .header(
            "docker-content-digest",
            digest(MANIFEST.as_bytes()).to_string(),
        )
        .body(MANIFEST)
}

fn reference(fake: &Fake, path: &str) -> Reference {
    Reference::parse(&format!("{}/{path}", fake.addr)).unwrap()
}

/// A registry that wants `Bearer good-token`, and a token service at `/token` that wants
/// `user:pass` (or gives `access_token` when `oauth_style`).
async fn token_registry(oauth_style: bool) -> Fake {
    Fake::start(move |req, base| {
        if req.path() == "/token" {
            let want = format!(
                "Basic {}",
                base64::prelude::BASE64_STANDARD.encode("user:pass")
            );
            if req.header("authorization") != want {
                return Reply::status(401);
            }
            let field = if oauth_style { "access_token" } else { "token" };
            return Reply::status(200)
                .header("content-type", "application/json")
                .body(format!(r#"{{"{field}":"good-token","expires_in":300}}"#));
        }
        if req.header("authorization") != "Bearer good-token" {
            return Reply::status(401).header(
                "www-authenticate",
                format!(
                    r#"Bearer realm="{base}/token",service="fake-registry",scope="repository:lab/img:pull""#
                ),
            );
        }
        manifest_reply()
    })
    .await
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_and_reused() {
    for oauth_style in [false, true] {
        let fake = token_registry(oauth_style).await;
        let r = reference(&fake, "lab/img:v1");
        let client = client_for(&fake.addr, Some(("user", "pass")));
        let d = client.resolve(&r).await.unwrap();
        assert_eq!(d.digest, digest(MANIFEST.as_bytes()));
        client.resolve(&r).await.unwrap();
        client.fetch_manifest(&r, &d.digest).await.unwrap();
        assert_eq!(fake.count("GET", "/token"), 1, "the token is cached");
        let token_req = fake
            .seen()
            .into_iter()
            .find(|s| s.path() == "/token")
            .unwrap();
        assert!(
            token_req.uri.contains("service=fake-registry"),
            "{}",
            token_req.uri
        );
        assert!(
            token_req
                .uri
                .contains("scope=repository%3Alab%2Fimg%3Apull"),
            "{}",
            token_req.uri
        );
        // One 401, then everything carries the token up front.
        assert_eq!(
            fake.seen()
                .iter()
                .filter(|s| s.path() != "/token" && s.header("authorization").is_empty())
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn refused_tokens_are_permission_denied() {
    let fake = token_registry(false).await;
    let r = reference(&fake, "lab/img:v1");
    let err = client_for(&fake.addr, None).resolve(&r).await.unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");
    assert!(err.message.contains("authentication required"), "{err}");
    let err = client_for(&fake.addr, Some(("user", "nope")))
        .resolve(&r)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::PermissionDenied, "{err}");
    assert!(err.message.contains("unauthorized"), "{err}");
}

#[tokio::test]
async fn anonymous_tokens_work_without_credentials() {
    let fake = Fake::start(|req, base| {
        if req.path() == "/token" {
            assert!(req.header("authorization").is_empty());
            return Reply::status(200).body(r#"{"token":"anon"}"#);
        }
        if req.header("authorization") != "Bearer anon" {
            return Reply::status(401).header(
                "www-authenticate",
                format!(r#"Bearer realm="{base}/token",service="svc""#),
            );
        }
        manifest_reply()
    })
    .await;
    let client = client_for(&fake.addr, None);
    client
        .resolve(&reference(&fake, "lab/img:v1"))
        .await
        .unwrap();
    // A second repository needs a new scope: fetched up front, with no extra 401.
    client
        .resolve(&reference(&fake, "lab/other:v1"))
        .await
        .unwrap();
    assert_eq!(fake.count("GET", "/token"), 2);
    assert_eq!(
        fake.seen()
            .iter()
            .filter(|s| s.header("authorization").is_empty() && s.path() != "/token")
            .count(),
        1
    );
}

#[tokio::test]
async fn retries_transient_failures_only() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let fake = Fake::start(move |req, _| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        match req.path() {
            "/v2/flaky/manifests/v1" if n < 2 => Reply::status(503),
            "/v2/flaky/manifests/v1" => manifest_reply(),
            "/v2/busy/manifests/v1" if n == 0 => Reply::status(429).header("retry-after", "0"),
            "/v2/busy/manifests/v1" => manifest_reply(),
            "/v2/down/manifests/v1" => Reply::status(500),
            "/v2/bad/manifests/v1" => Reply::status(400).body(
                r#"{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}"#,
            ),
            _ => Reply::status(404),
        }
    })
    .await;
    let client = client_for(&fake.addr, None);
    let run = async |repo: &str| {
        calls.store(0, Ordering::SeqCst);
        let res = client
            .resolve(&reference(&fake, &format!("{repo}:v1")))
            .await;
        (res, calls.load(Ordering::SeqCst))
    };
    let (res, n) = run("flaky").await;
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(n, 3);
    let (res, n) = run("busy").await;
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(n, 2);
    let (res, n) = run("down").await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, Kind::Unavailable, "{err}");
    assert_eq!(n, 5, "bounded attempts");
    let (res, n) = run("bad").await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, Kind::InvalidArgument, "{err}");
    assert!(err.message.contains("NAME_INVALID"), "{err}");
    assert_eq!(
        n, 2,
        "HEAD, then GET for the error body; 4xx is not retried"
    );
    let (res, n) = run("missing").await;
    assert_eq!(res.unwrap_err().kind, Kind::NotFound);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn unreachable_registries_are_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let err = client_for(&addr, None)
        .resolve(&Reference::parse(&format!("{addr}/x:1")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::Unavailable, "{err}");
    assert!(err.message.contains("after 5 attempts"), "{err}");
}

#[tokio::test]
async fn schema1_manifests_are_not_implemented() {
    let body = r#"{"schemaVersion":1,"name":"x","tag":"v1","fsLayers":[],"signatures":[]}"#;
    let fake = Fake::start(move |req, _| match (req.method.as_str(), req.path()) {
        ("HEAD", "/v2/signed/manifests/v1") => {
            Reply::status(200).header("content-type", mt::DOCKER_SCHEMA1_SIGNED)
        }
        (_, "/v2/vague/manifests/v1") => Reply::status(200)
            .header("content-type", "application/json")
            .body(body),
        _ => Reply::status(404),
    })
    .await;
    let client = client_for(&fake.addr, None);
    for repo in ["signed", "vague"] {
        let err = client
            .resolve(&reference(&fake, &format!("{repo}:v1")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, Kind::NotImplemented, "{repo}: {err}");
        assert_eq!(err.message, SCHEMA1_UNSUPPORTED);
    }
}

#[tokio::test]
async fn head_fallback_and_digest_checks() {
    let good = digest(MANIFEST.as_bytes());
    let liar = good.to_string();
    let fake = Fake::start(move |req, _| match (req.method.as_str(), req.path()) {
        // No HEAD support: fall back to GET and compute the digest.
        ("HEAD", "/v2/nohead/manifests/v1") => Reply::status(405),
        ("GET", "/v2/nohead/manifests/v1") => Reply::status(200)
            .header("content-type", mt::OCI_MANIFEST)
            .body(MANIFEST),
        // HEAD without a digest, GET body not matching the announced digest.
        ("HEAD", "/v2/liar/manifests/v1") => {
            Reply::status(200).header("content-type", mt::OCI_MANIFEST)
        }
        ("GET", "/v2/liar/manifests/v1") => Reply::status(200)
            .header("content-type", mt::OCI_MANIFEST)
            .header("docker-content-digest", liar.clone())
            .body(format!("{MANIFEST} ")),
        // Fetch by digest returns other bytes.
        ("GET", p) if p.starts_with("/v2/corrupt/manifests/") => Reply::status(200)
            .header("content-type", mt::OCI_MANIFEST)
            .body(MANIFEST.replace("\"layers\":[]", "\"layers\": []")),
        _ => Reply::status(404),
    })
    .await;
    let client = client_for(&fake.addr, None);
    let d = client
        .resolve(&reference(&fake, "nohead:v1"))
        .await
        .unwrap();
    assert_eq!(d.digest, good);
    assert_eq!(d.media_type, mt::OCI_MANIFEST);
    assert_eq!(d.size, MANIFEST.len() as i64);

    let err = client
        .resolve(&reference(&fake, "liar:v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::DataLoss, "{err}");

    let err = client
        .fetch_manifest(&reference(&fake, "corrupt:v1"), &good)
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::DataLoss, "{err}");
    assert!(err.message.contains("digest mismatch"), "{err}");
}

/// Blobs redirect to a storage server on another port (another origin, so no credentials
/// follow), which honours Range or ignores it depending on the path.
#[tokio::test]
async fn blob_redirects_and_servers_ignoring_range() {
    let blob = Bytes::from(data(100_000, 5));
    let d = digest(&blob);
    let b2 = blob.clone();
    let storage = Fake::start(move |req, _| {
        assert!(
            req.header("authorization").is_empty(),
            "credentials must not follow a redirect to another host"
        );
        let range = req.header("range");
        let start = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse::<usize>().ok());
        match (req.path(), start) {
            ("/honours", Some(s)) => Reply::status(206)
                .header(
                    "content-range",
                    format!("bytes {s}-{}/{}", b2.len() - 1, b2.len()),
                )
                .body(b2.slice(s..)),
            _ => Reply::status(200).body(b2.clone()),
        }
    })
    .await;
    let store = storage.addr.clone();
    let fake = Fake::start(move |req, _| {
        if req.header("authorization") != "Basic dXNlcjpwYXNz" {
            return Reply::status(401).header("www-authenticate", r#"Basic realm="x""#);
        }
        let target = if req.path().starts_with("/v2/ranged/") {
            "honours"
        } else {
            "ignores"
        };
        Reply::status(307).header("location", format!("http://{store}/{target}"))
    })
    .await;
    let client = client_for(&fake.addr, Some(("user", "pass")));
    for repo in ["ranged", "plain"] {
        let r = reference(&fake, &format!("{repo}:v1"));
        let whole = collect(client.fetch_blob(&r, &d, 0).await.unwrap())
            .await
            .unwrap();
        assert!(whole[..] == blob[..], "{repo}: whole blob differs");
        let s = client.fetch_blob(&r, &d, 70_001).await.unwrap();
        assert_eq!(s.size(), Some(blob.len() as u64), "{repo}");
        let tail = collect(s).await.unwrap();
        assert!(tail[..] == blob[70_001..], "{repo}: tail differs");
    }
    assert!(
        storage
            .seen()
            .iter()
            .any(|s| s.header("range") == "bytes=70001-")
    );
}

/// A fake upload endpoint that fails the second PATCH once (after storing nothing), so the
/// client must read the progress back and resend; and a mirror that cannot push.
#[tokio::test]
async fn chunk_uploads_recover_from_a_failed_patch() {
    let stored = Arc::new(Mutex::new(Vec::<u8>::new()));
    let patches = Arc::new(AtomicUsize::new(0));
    let (s, p) = (Arc::clone(&stored), Arc::clone(&patches));
    let fake = Fake::start(move |req, _| {
        let mut data = s.lock().unwrap();
        match (req.method.as_str(), req.path()) {
            ("HEAD", _) => Reply::status(404),
            ("POST", "/v2/up/blobs/uploads/") => {
                Reply::status(202).header("location", "/upload/1?state=0")
            }
            ("PATCH", "/upload/1") => {
                if p.fetch_add(1, Ordering::SeqCst) == 1 {
                    return Reply::status(500);
                }
                let start: usize = req
                    .header("content-range")
                    .split('-')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(start, data.len(), "chunks arrive in order");
                data.extend_from_slice(&req.body);
                Reply::status(202)
                    .header("location", format!("/upload/1?state={}", data.len()))
                    .header("range", format!("0-{}", data.len() - 1))
            }
            ("GET", "/upload/1") => Reply::status(204)
                .header("location", format!("/upload/1?state={}", data.len()))
                .header("range", format!("0-{}", data.len().max(1) - 1)),
            ("PUT", "/upload/1") => {
                let want = req.uri.split("digest=").nth(1).unwrap().replace("%3A", ":");
                assert_eq!(want, digest(&data).to_string());
                assert!(req.body.is_empty());
                Reply::status(201).header("docker-content-digest", want)
            }
            _ => Reply::status(404),
        }
    })
    .await;
    let client = RegistryClient::builder()
        .hosts(HostsConfig::new().plain_http(fake.addr.clone()))
        .retry(fast_retry())
        .chunk_size(10)
        .build()
        .unwrap();
    let blob = data(25, 8);
    let r = reference(&fake, "up:v1");
    client
        .push_blob(&r, &digest(&blob), 25, stream_of(&blob, 7), None)
        .await
        .unwrap();
    assert_eq!(&stored.lock().unwrap()[..], &blob[..]);
    assert_eq!(
        patches.load(Ordering::SeqCst),
        4,
        "3 chunks, one sent twice"
    );
    assert_eq!(fake.count("GET", "/upload/1"), 1, "progress read once");
}

/// Mirrors from hosts.toml are tried first for pulls (with `?ns=`), skipped for pushes; a
/// mirror without the content falls through to the upstream.
#[tokio::test]
async fn mirrors_are_tried_first_for_pulls() {
    let upstream = Fake::start(|req, _| match req.path() {
        "/v2/lab/img/manifests/v1" => manifest_reply(),
        _ => Reply::status(404),
    })
    .await;
    let mirror = Fake::start(|req, _| {
        assert!(req.uri.contains("ns="), "mirrors get ?ns=: {}", req.uri);
        Reply::status(404)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(&upstream.addr);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            upstream.addr, mirror.addr
        ),
    )
    .unwrap();
    let client = RegistryClient::builder()
        .hosts(HostsConfig::new().with_dir(dir.path()))
        .retry(fast_retry())
        .build()
        .unwrap();
    let r = reference(&upstream, "lab/img:v1");
    let d = client.resolve(&r).await.unwrap();
    assert_eq!(d.digest, digest(MANIFEST.as_bytes()));
    assert_eq!(mirror.count("HEAD", "/v2/lab/img/manifests/v1"), 1);
    assert_eq!(client.blob_exists(&r, &d.digest).await.unwrap(), None);
    assert_eq!(
        mirror.count("HEAD", "/v2/lab/img/blobs/"),
        0,
        "not a push host"
    );
    let err = client.resolve(&reference(&upstream, "lab/none:v1")).await;
    assert_eq!(err.unwrap_err().kind, Kind::NotFound);
}

/// Basic credentials from a keychain only go to hosts that ask for them.
#[tokio::test]
async fn basic_credentials_follow_the_challenge() {
    let fake = Fake::start(|req, _| {
        if req.header("authorization") == "Basic dXNlcjpwYXNz" {
            manifest_reply()
        } else {
            Reply::status(401).header("www-authenticate", r#"Basic realm="fake""#)
        }
    })
    .await;
    let mut keychain = Keychain::new();
    keychain.insert(&fake.addr, Credentials::new("user", "pass"));
    let client = RegistryClient::builder()
        .hosts(HostsConfig::new().plain_http(fake.addr.clone()))
        .keychain(keychain)
        .build()
        .unwrap();
    let r = reference(&fake, "x:v1");
    client.resolve(&r).await.unwrap();
    client.resolve(&r).await.unwrap();
    let unauthenticated = fake
        .seen()
        .iter()
        .filter(|s| s.header("authorization").is_empty())
        .count();
    assert_eq!(
        unauthenticated, 1,
        "after the first challenge, sent up front"
    );
}
