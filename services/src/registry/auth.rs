//! Registry credentials and the distribution token dance.
//!
//! Credentials come from a [`Keychain`]: built by hand, or read from a Docker `config.json`
//! (`auths.<host>.auth` as base64 `user:pass`, or `username`/`password`). Credential helpers
//! (`credsStore`, `credHelpers`) are not run: a warning is logged and the registries they
//! cover are accessed anonymously.
//!
//! Authentication is driven by the registry's challenges. A request goes out with whatever
//! [`Authorizer`] already holds for its host and scope; on `401` the `WWW-Authenticate` header
//! is parsed ([`parse_challenges`]):
//!
//! * `Bearer realm=…,service=…,scope=…`: a token is fetched with
//!   `GET realm?service=…&scope=…` (basic auth when there are credentials, anonymous
//!   otherwise), read from `token` or `access_token`, and cached per (host, scope) until
//!   `expires_in` (60 s when absent) runs out;
//! * `Basic`: the credentials are sent, and keep being sent to that host.
//!
//! The request is then retried once. A second `401`, a refused token request, or a Basic
//! challenge with no credentials is PermissionDenied with a message that says
//! "authentication required" (no credentials) or "unauthorized" (credentials rejected).

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::Engine as _;
use berth_proto::errdefs::{Error, Kind, io_error};
use reqwest::header::HeaderValue;
use serde::Deserialize;

/// A user name and password (or token used as one) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or personal access token.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization: Basic …` header value.
    pub fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password);
        let mut value = HeaderValue::try_from(format!(
            "Basic {}",
            base64::prelude::BASE64_STANDARD.encode(raw)
        ))
        .expect("base64 is a valid header value");
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials per registry.
#[derive(Debug, Clone, Default)]
pub struct Keychain {
    entries: HashMap<String, Credentials>,
    warnings: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl Keychain {
    /// An empty keychain: every registry is accessed anonymously.
    pub fn new() -> Keychain {
        Keychain::default()
    }

    /// Adds (or replaces) the credentials for `registry` (a name as in references, or any
    /// spelling Docker's `config.json` uses: `https://index.docker.io/v1/`, `host:port`, …).
    pub fn insert(&mut self, registry: &str, credentials: Credentials) {
        self.entries.insert(normalize_key(registry), credentials);
    }

    /// The credentials for `registry`, if any. Docker Hub's names (`docker.io`,
    /// `index.docker.io`, `registry-1.docker.io`) share one entry.
    pub fn get(&self, registry: &str) -> Option<&Credentials> {
        self.entries.get(&normalize_key(registry))
    }

    /// What could not be used when the keychain was read (credential helpers, identity
    /// tokens), one sentence each, for showing to the user; also logged as warnings.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Reads a Docker `config.json`; a missing file gives an empty keychain.
    pub fn from_docker_config_file(path: &Path) -> Result<Keychain, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Keychain::from_docker_config(&text)
                .map_err(|e| e.context(format!("{}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keychain::new()),
            Err(e) => Err(io_error(format!("reading {}", path.display()), e)),
        }
    }

    /// Parses the text of a Docker `config.json`. Entries that cannot be decoded are
    /// InvalidArgument; helpers and identity tokens are skipped with a warning.
    pub fn from_docker_config(text: &str) -> Result<Keychain, Error> {
        let config: DockerConfig = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("invalid docker config.json: {e}")))?;
        let mut keychain = Keychain::new();
        if let Some(store) = &config.creds_store {
            keychain.warnings.push(format!(
                "docker config.json credsStore {store:?} is not supported (credential helpers \
                 are not run): registries without an inline auth entry are accessed anonymously"
            ));
        }
        let mut helpers: Vec<_> = config.cred_helpers.iter().collect();
        helpers.sort();
        for (registry, helper) in helpers {
            keychain.warnings.push(format!(
                "docker config.json credHelpers entry {registry:?} ({helper:?}) is not \
                 supported: {registry} is accessed anonymously unless it has an inline auth entry"
            ));
        }
        for (key, entry) in config.auths {
            if entry.identitytoken.is_some() {
                keychain.warnings.push(format!(
                    "docker config.json identitytoken for {key:?} is not supported (OAuth \
                     refresh tokens are not exchanged)"
                ));
            }
            let creds = match (&entry.auth, &entry.username, &entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => decode_auth(&key, auth)?,
                (_, Some(user), Some(pass)) => Credentials::new(user, pass),
                _ => continue,
            };
            keychain.insert(&key, creds);
        }
        for warning in &keychain.warnings {
            tracing::warn!("{warning}");
        }
        Ok(keychain)
    }
}

fn decode_auth(key: &str, auth: &str) -> Result<Credentials, Error> {
    let bad = |why: &str| Error::invalid(format!("config.json auth for {key:?}: {why}"));
    let bytes = base64::prelude::BASE64_STANDARD
        .decode(auth.trim())
        .map_err(|_| bad("not valid base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| bad("expected user:password"))?;
    Ok(Credentials::new(user, pass.trim_end_matches('\0')))
}

/// Reduces the spellings of a registry in `config.json` keys to `host[:port]`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower case (`bearer`, `basic`, …).
    pub scheme: String,
    /// The parameters, keys lower case.
    pub params: HashMap<String, String>,
}

/// Parses a `WWW-Authenticate` header value into its challenges (RFC 7235: several
/// challenges may share one header, separated by commas; values may be quoted strings).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < bytes.len() && pred(bytes[*i]) {
            *i += 1;
        }
    };
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b);
    while i < bytes.len() {
        skip(&mut i, &|b| b == b' ' || b == b'\t' || b == b',');
        let start = i;
        skip(&mut i, &is_token);
        if i == start {
            i += 1; // garbage: skip a byte
            continue;
        }
        let word = &header[start..i];
        let mut j = i;
        skip(&mut j, &|b| b == b' ' || b == b'\t');
        if j < bytes.len() && bytes[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            skip(&mut j, &|b| b == b' ' || b == b'\t');
            let value = if j < bytes.len() && bytes[j] == b'"' {
                j += 1;
                let mut v = String::new();
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    let ch = header[j..].chars().next().expect("in bounds");
                    v.push(ch);
                    j += ch.len_utf8();
                }
                j += 1; // closing quote
                v
            } else {
                let vs = j;
                skip(&mut j, &|b| b != b',' && b != b' ' && b != b'\t');
                header[vs..j].to_string()
            };
            out.last_mut()
                .expect("checked non-empty")
                .params
                .insert(word.to_ascii_lowercase(), value);
            i = j;
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: HashMap::new(),
            });
        }
    }
    out
}

/// What a host asked for, remembered so later requests authenticate up front.
#[derive(Debug, Clone)]
enum HostScheme {
    Basic,
    Bearer { realm: String, service: String },
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// Holds each host's auth scheme and the bearer tokens fetched for it; shared by every
/// request of a client.
#[derive(Debug, Default)]
pub struct Authorizer {
    keychain: Keychain,
    state: Mutex<AuthState>,
}

#[derive(Debug, Default)]
struct AuthState {
    schemes: HashMap<String, HostScheme>,
    tokens: HashMap<(String, String), Token>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Leeway before expiry after which a cached token is no longer used.
const TOKEN_LEEWAY: Duration = Duration::from_secs(10);
/// The token lifetime the distribution spec assumes when `expires_in` is absent.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

impl Authorizer {
    /// An authorizer drawing credentials from `keychain`.
    pub fn new(keychain: Keychain) -> Authorizer {
        Authorizer {
            keychain,
            state: Mutex::default(),
        }
    }

    /// The credentials held for `registry`, if any.
    pub fn credentials(&self, registry: &str) -> Option<&Credentials> {
        self.keychain.get(registry)
    }

    /// The `Authorization` header to send to `host` for `scope`, from what earlier
    /// challenges taught; `None` means send nothing.
    pub fn header(&self, registry: &str, host: &str, scope: &str) -> Option<HeaderValue> {
        let state = self.state.lock().expect("auth state poisoned");
        match state.schemes.get(host)? {
            HostScheme::Basic => self.credentials(registry).map(Credentials::basic_header),
            HostScheme::Bearer { .. } => {
                let token = state.tokens.get(&(host.to_string(), scope.to_string()))?;
                if Instant::now() + TOKEN_LEEWAY >= token.expires {
                    return None;
                }
                let mut v = HeaderValue::try_from(format!("Bearer {}", token.value)).ok()?;
                v.set_sensitive(true);
                Some(v)
            }
        }
    }

    /// Answers a `401` from `host`: learns its scheme from `www_authenticate` and, for bearer
    /// auth, fetches a token for `scope` with `http`. `sent_auth` says whether the refused
    /// request carried basic credentials. Ok means "retry the request" (callers retry once).
    pub async fn handle_challenge(
        &self,
        http: &reqwest::Client,
        registry: &str,
        host: &str,
        scope: &str,
        www_authenticate: Option<&str>,
        sent_auth: bool,
    ) -> Result<(), Error> {
        let creds = self.credentials(registry).cloned();
        let challenges = www_authenticate.map(parse_challenges).unwrap_or_default();
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let basic = challenges.iter().find(|c| c.scheme == "basic");
        if let Some(bearer) = bearer {
            let Some(realm) = bearer.params.get("realm").cloned() else {
                return Err(Error::new(
                    Kind::PermissionDenied,
                    format!("unauthorized: {host} sent a bearer challenge without a realm"),
                ));
            };
            let service = bearer.params.get("service").cloned().unwrap_or_default();
            let mut scopes: Vec<String> = scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(extra) = bearer.params.get("scope") {
                for s in extra.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|have| have == s) {
                        scopes.push(s.to_string());
                    }
                }
            }
            let token = fetch_token(http, &realm, &service, &scopes, creds.as_ref(), host).await?;
            let mut state = self.state.lock().expect("auth state poisoned");
            state
                .schemes
                .insert(host.to_string(), HostScheme::Bearer { realm, service });
            state
                .tokens
                .insert((host.to_string(), scope.to_string()), token);
            Ok(())
        } else if basic.is_some() {
            match creds {
                None => Err(Error::new(
                    Kind::PermissionDenied,
                    format!(
                        "authentication required: {host} asks for basic auth and no \
                         credentials are configured for {registry} (unauthorized)"
                    ),
                )),
                Some(_) if sent_auth => Err(unauthorized(host, true)),
                Some(_) => {
                    let mut state = self.state.lock().expect("auth state poisoned");
                    state.schemes.insert(host.to_string(), HostScheme::Basic);
                    Ok(())
                }
            }
        } else {
            Err(Error::new(
                Kind::PermissionDenied,
                format!(
                    "unauthorized: {host} answered 401 with no usable WWW-Authenticate \
                     challenge ({:?})",
                    www_authenticate.unwrap_or("")
                ),
            ))
        }
    }

    /// The `Authorization` header for a request to `host` for `scope`: like
    /// [`Authorizer::header`], but when `host` is known to use bearer tokens and none is
    /// cached for `scope`, one is fetched first (saving the round trip of a `401`).
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        registry: &str,
        host: &str,
        scope: &str,
    ) -> Result<Option<HeaderValue>, Error> {
        if let Some(h) = self.header(registry, host, scope) {
            return Ok(Some(h));
        }
        let known = {
            let state = self.state.lock().expect("auth state poisoned");
            state.schemes.get(host).cloned()
        };
        let Some(HostScheme::Bearer { realm, service }) = known else {
            return Ok(None);
        };
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let creds = self.credentials(registry).cloned();
        let token = fetch_token(http, &realm, &service, &scopes, creds.as_ref(), host).await?;
        self.state
            .lock()
            .expect("auth state poisoned")
            .tokens
            .insert((host.to_string(), scope.to_string()), token);
        Ok(self.header(registry, host, scope))
    }

    /// Forgets the token for (`host`, `scope`), e.g. after the registry refused it.
    pub fn invalidate(&self, host: &str, scope: &str) {
        let mut state = self.state.lock().expect("auth state poisoned");
        state.tokens.remove(&(host.to_string(), scope.to_string()));
    }
}

/// The error for a registry that refused the credentials (or the lack of them).
pub fn unauthorized(host: &str, had_credentials: bool) -> Error {
    let message = if had_credentials {
        format!("unauthorized: {host} rejected the configured credentials")
    } else {
        format!("authentication required: {host} refused anonymous access (unauthorized)")
    };
    Error::new(Kind::PermissionDenied, message)
}

async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: &str,
    scopes: &[String],
    creds: Option<&Credentials>,
    host: &str,
) -> Result<Token, Error> {
    let mut url = url::Url::parse(realm).map_err(|e| {
        Error::new(
            Kind::PermissionDenied,
            format!("unauthorized: {host} names an invalid token realm {realm:?}: {e}"),
        )
    })?;
    {
        let mut q = url.query_pairs_mut();
        if !service.is_empty() {
            q.append_pair("service", service);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
    }
    let mut req = http.get(url.clone());
    if let Some(c) = creds {
        req = req.header(reqwest::header::AUTHORIZATION, c.basic_header());
    }
    let resp = req.send().await.map_err(|e| {
        Error::new(
            Kind::Unavailable,
            format!("fetching a token from {realm}: {e}"),
        )
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(
            unauthorized(host, creds.is_some()).context(format!("token request to {realm}"))
        );
    }
    if !status.is_success() {
        let kind = if status.is_server_error() {
            Kind::Unavailable
        } else {
            Kind::PermissionDenied
        };
        return Err(Error::new(
            kind,
            format!("token request to {realm} failed: HTTP {status}"),
        ));
    }
    let body: TokenResponse = resp.json().await.map_err(|e| {
        Error::new(
            Kind::PermissionDenied,
            format!("unauthorized: invalid token response from {realm}: {e}"),
        )
    })?;
    let value = body
        .token
        .filter(|t| !t.is_empty())
        .or(body.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| {
            Error::new(
                Kind::PermissionDenied,
                format!("unauthorized: token response from {realm} holds no token"),
            )
        })?;
    let lifetime = body
        .expires_in
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(lifetime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");
    }

    #[test]
    fn parses_several_challenges_and_odd_spacing() {
        let c = parse_challenges(
            r#"Basic realm="r1", Bearer  realm = "http://x/t" , service=svc,error="insufficient_scope", Negotiate"#,
        );
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[0].params["realm"], "r1");
        assert_eq!(c[1].params["realm"], "http://x/t");
        assert_eq!(c[1].params["service"], "svc");
        assert_eq!(c[1].params["error"], "insufficient_scope");
        assert!(c[2].params.is_empty());

        let c = parse_challenges(r#"basic Realm="a \"quoted\" realm""#);
        assert_eq!(c[0].params["realm"], r#"a "quoted" realm"#);
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Basic").len(), 1);
    }

    #[test]
    fn reads_docker_config_json() {
        // "user:pa:ss" with a colon in the password.
        let auth = base64::prelude::BASE64_STANDARD.encode("user:pa:ss");
        let text = format!(
            r#"{{
              "auths": {{
                "https://index.docker.io/v1/": {{"auth": "{auth}"}},
                "localhost:5000": {{"username": "u2", "password": "p2"}},
                "http://reg.example.com/v2/": {{"auth": "{auth}"}},
                "empty.example.com": {{}}
              }},
              "HttpHeaders": {{"User-Agent": "x"}}
            }}"#
        );
        let k = Keychain::from_docker_config(&text).unwrap();
        assert_eq!(k.get("docker.io"), Some(&Credentials::new("user", "pa:ss")));
        assert_eq!(k.get("registry-1.docker.io").unwrap().username, "user");
        assert_eq!(k.get("localhost:5000"), Some(&Credentials::new("u2", "p2")));
        assert_eq!(k.get("reg.example.com").unwrap().password, "pa:ss");
        assert!(k.get("empty.example.com").is_none());
        assert!(k.get("localhost:5001").is_none());
    }

    #[test]
    fn creds_store_means_anonymous() {
        let k = Keychain::from_docker_config(
            r#"{"auths": {"docker.io": {}}, "credsStore": "desktop",
                "credHelpers": {"gcr.io": "gcloud"}}"#,
        )
        .unwrap();
        assert!(k.get("docker.io").is_none());
        assert!(k.get("gcr.io").is_none());
        assert_eq!(k.warnings().len(), 2);
        assert!(k.warnings()[0].contains("credsStore \"desktop\" is not supported"));
        assert!(k.warnings()[1].contains("gcr.io"));
        let plain = Keychain::from_docker_config(r#"{"auths": {}}"#).unwrap();
        assert!(plain.warnings().is_empty());
    }

    #[test]
    fn rejects_broken_config_json() {
        for bad in [
            "not json",
            r#"{"auths": {"x": {"auth": "!!!"}}}"#,
            &format!(
                r#"{{"auths": {{"x": {{"auth": "{}"}}}}}}"#,
                base64::prelude::BASE64_STANDARD.encode("nocolon")
            ),
        ] {
            assert_eq!(
                Keychain::from_docker_config(bad).unwrap_err().kind,
                Kind::InvalidArgument,
                "{bad}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = Keychain::from_docker_config_file(&dir.path().join("none.json")).unwrap();
        assert!(missing.get("docker.io").is_none());
    }

    #[test]
    fn credentials_never_print_passwords() {
        let c = Credentials::new("me", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        let h = c.basic_header();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic bWU6czNjcmV0");
    }

    #[test]
    fn basic_scheme_sends_credentials_after_a_challenge() {
        let mut k = Keychain::new();
        k.insert("reg:1", Credentials::new("a", "b"));
        let auth = Authorizer::new(k);
        assert!(
            auth.header("reg:1", "reg:1", "s").is_none(),
            "nothing before a challenge"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let http = reqwest::Client::new();
        rt.block_on(auth.handle_challenge(
            &http,
            "reg:1",
            "reg:1",
            "s",
            Some("Basic realm=x"),
            false,
        ))
        .unwrap();
        assert!(auth.header("reg:1", "reg:1", "s").is_some());
        let err = rt
            .block_on(auth.handle_challenge(
                &http,
                "reg:1",
                "reg:1",
                "s",
                Some("Basic realm=x"),
                true,
            ))
            .unwrap_err();
        assert_eq!(err.kind, Kind::PermissionDenied);
        assert!(err.message.contains("unauthorized"), "{err}");

        let anon = Authorizer::new(Keychain::new());
        let err = rt
            .block_on(anon.handle_challenge(&http, "r", "r", "s", Some("Basic realm=x"), false))
            .unwrap_err();
        assert!(err.message.contains("authentication required"), "{err}");
        let err = rt
            .block_on(anon.handle_challenge(&http, "r", "r", "s", None, false))
            .unwrap_err();
        assert_eq!(err.kind, Kind::PermissionDenied);
    }
}
