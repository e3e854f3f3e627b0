//! Which endpoints serve a registry, in the spirit of containerd's `hosts.toml`.
//!
//! For a registry named `R` (as written in references: `docker.io`, `localhost:5000`), the
//! file `<config_dir>/R/hosts.toml` is read if it exists, else `<config_dir>/_default/hosts.toml`:
//!
//! ```toml
//! server = "https://registry-1.docker.io"   # the upstream; default https://<R>
//! capabilities = ["pull", "resolve", "push"] # of the upstream (this is the default)
//! skip_verify = false
//! ca = "/etc/berth/certs.d/docker.io/ca.crt" # or a list; relative to the file's folder
//!
//! [host."http://mirror.local:5000"]          # tried first, in file order
//!   capabilities = ["pull", "resolve"]
//!   skip_verify = true
//!   ca = ["a.crt"]
//!   override_path = false                    # true: the URL path replaces `/v2`
//!   [host."http://mirror.local:5000".header]
//!     x-custom = "1"
//! ```
//!
//! The result is an ordered list of [`RegistryHost`]s: the `[host]` entries in file order,
//! then the upstream `server`. Without a file the list is the upstream alone, over https.
//! As in containerd, plain http is used only where configured: an `http://` URL in the file,
//! a host named in [`HostsConfig::plain_http`], or the per-call plain-http flag (which, like
//! `ctr --plain-http`, switches the default upstream to http but leaves URLs written in a
//! `hosts.toml` alone).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, io_error};
use serde::Deserialize;
use url::Url;

use super::reference::registry_host;

/// What an endpoint may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// Blobs and manifests may be fetched by digest.
    pub pull: bool,
    /// Tags may be resolved to digests.
    pub resolve: bool,
    /// Blobs and manifests may be pushed.
    pub push: bool,
}

impl Capabilities {
    /// Every capability: what the upstream server has by default.
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
    /// Pull and resolve: what a mirror has by default.
    pub const PULL_RESOLVE: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: false,
    };

    fn parse(names: &[String]) -> Result<Capabilities, Error> {
        let mut caps = Capabilities::default();
        for name in names {
            match name.as_str() {
                "pull" => caps.pull = true,
                "resolve" => caps.resolve = true,
                "push" => caps.push = true,
                other => {
                    return Err(Error::invalid(format!(
                        "unknown host capability {other:?} (expected pull, resolve or push)"
                    )));
                }
            }
        }
        Ok(caps)
    }
}

/// One endpoint of a registry, with what it may do and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]` to connect to.
    pub host: String,
    /// The API root path, normally `/v2` (a mirror may add a prefix: `/prefix/v2`).
    pub path: String,
    /// What this endpoint may be used for.
    pub capabilities: Capabilities,
    /// Whether TLS certificate checks are skipped.
    pub skip_verify: bool,
    /// Extra PEM CA files to trust for this endpoint.
    pub ca: Vec<PathBuf>,
    /// Client certificate for mutual TLS: the certificate file and, if separate, its key.
    pub client_cert: Option<(PathBuf, Option<PathBuf>)>,
    /// Extra headers sent with every request to this endpoint.
    pub headers: Vec<(String, String)>,
    /// Whether this is a mirror (not the registry's own server); mirrors get the registry's
    /// name as `?ns=` on requests, as containerd does.
    pub mirror: bool,
}

impl RegistryHost {
    /// The registry's own server at `scheme://host/v2` with every capability.
    pub fn upstream(scheme: &str, host: &str) -> RegistryHost {
        RegistryHost {
            scheme: scheme.to_string(),
            host: host.to_string(),
            path: "/v2".to_string(),
            capabilities: Capabilities::ALL,
            skip_verify: false,
            ca: Vec::new(),
            client_cert: None,
            headers: Vec::new(),
            mirror: false,
        }
    }

    /// The base URL of the API, e.g. `https://registry-1.docker.io/v2`.
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}

/// Where per-registry host configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct HostsConfig {
    dir: Option<PathBuf>,
    plain_http: HashSet<String>,
}

impl HostsConfig {
    /// No configuration folder: every registry is its own https server.
    pub fn new() -> HostsConfig {
        HostsConfig::default()
    }

    /// Reads `<dir>/<registry>/hosts.toml` (or `<dir>/_default/hosts.toml`) when present.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> HostsConfig {
        self.dir = Some(dir.into());
        self
    }

    /// Uses plain http for the default upstream of `registry` (a name as written in
    /// references, e.g. `localhost:5000`).
    pub fn plain_http(mut self, registry: impl Into<String>) -> HostsConfig {
        self.plain_http.insert(registry.into());
        self
    }

    /// The endpoints for `registry`, in the order to try them. `plain_http` is the per-call
    /// flag: it makes the default upstream plain http.
    pub fn hosts(&self, registry: &str, plain_http: bool) -> Result<Vec<RegistryHost>, Error> {
        let scheme = if plain_http || self.plain_http.contains(registry) {
            "http"
        } else {
            "https"
        };
        if let Some(dir) = &self.dir {
            for name in [registry, "_default"] {
                let folder = dir.join(name);
                let file = folder.join("hosts.toml");
                match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        return parse_hosts_toml(registry, &text, &folder, scheme)
                            .map_err(|e| e.context(format!("{}", file.display())));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(format!("reading {}", file.display()), e)),
                }
            }
        }
        Ok(vec![RegistryHost::upstream(
            scheme,
            registry_host(registry),
        )])
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: Option<bool>,
    #[serde(default)]
    ca: Option<OneOrMany>,
    #[serde(default)]
    header: Option<toml::Table>,
    #[serde(default)]
    override_path: Option<bool>,
    #[serde(default)]
    client: Option<ClientCerts>,
}

/// containerd's `client`: a combined PEM file, or `[cert, key]` pairs (`""` for a key kept
/// in the cert file).
#[derive(Deserialize)]
#[serde(untagged)]
enum ClientCerts {
    One(String),
    Pairs(Vec<Vec<String>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parses a `hosts.toml` for `registry`. Relative `ca` paths are taken from `base_dir`;
/// `default_scheme` is the upstream's scheme when the file names no `server`.
pub fn parse_hosts_toml(
    registry: &str,
    text: &str,
    base_dir: &Path,
    default_scheme: &str,
) -> Result<Vec<RegistryHost>, Error> {
    let mut table: toml::Table = toml::from_str(text)
        .map_err(|e| Error::invalid(format!("invalid hosts.toml: {}", e.message())))?;
    let server = match table.remove("server") {
        None => None,
        Some(toml::Value::String(s)) => Some(s),
        Some(_) => return Err(Error::invalid("hosts.toml: server must be a string")),
    };
    let hosts = match table.remove("host") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err(Error::invalid("hosts.toml: host must be a table")),
    };
    let top: HostEntry = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| Error::invalid(format!("hosts.toml: {}", e.message())))?;

    let mut out = Vec::new();
    for (url, value) in hosts {
        let entry: HostEntry = value.try_into().map_err(|e: toml::de::Error| {
            Error::invalid(format!("hosts.toml: host {url:?}: {}", e.message()))
        })?;
        let mut host = endpoint(&url, &entry, base_dir, Capabilities::PULL_RESOLVE)?;
        host.mirror = host.host != registry_host(registry);
        out.push(host);
    }
    let upstream_url = match server {
        Some(s) => s,
        None => format!("{default_scheme}://{}", registry_host(registry)),
    };
    out.push(endpoint(&upstream_url, &top, base_dir, Capabilities::ALL)?);
    Ok(out)
}

fn endpoint(
    raw: &str,
    entry: &HostEntry,
    base_dir: &Path,
    default_caps: Capabilities,
) -> Result<RegistryHost, Error> {
    // containerd accepts a bare host and assumes https.
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::invalid(format!("hosts.toml: invalid host URL {raw:?}: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::invalid(format!(
            "hosts.toml: host URL {raw:?} must be http or https"
        )));
    }
    let Some(name) = url.host_str() else {
        return Err(Error::invalid(format!(
            "hosts.toml: host URL {raw:?} has no host"
        )));
    };
    let host = match url.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.to_string(),
    };
    let prefix = url.path().trim_end_matches('/');
    let path = if entry.override_path.unwrap_or(false) || prefix.ends_with("/v2") {
        prefix.to_string()
    } else {
        format!("{prefix}/v2")
    };
    let capabilities = match &entry.capabilities {
        Some(names) => Capabilities::parse(names)?,
        None => default_caps,
    };
    let ca = match &entry.ca {
        None => Vec::new(),
        Some(OneOrMany::One(p)) => vec![base_dir.join(p)],
        Some(OneOrMany::Many(ps)) => ps.iter().map(|p| base_dir.join(p)).collect(),
    };
    let client_cert = match &entry.client {
        None => None,
        Some(ClientCerts::One(cert)) => Some((base_dir.join(cert), None)),
        Some(ClientCerts::Pairs(pairs)) => match pairs.first().map(Vec::as_slice) {
            None => None,
            Some([cert]) => Some((base_dir.join(cert), None)),
            Some([cert, key]) if key.is_empty() => Some((base_dir.join(cert), None)),
            Some([cert, key]) => Some((base_dir.join(cert), Some(base_dir.join(key)))),
            Some(_) => {
                return Err(Error::invalid(
                    "hosts.toml: client must be a path or a list of [cert, key] pairs",
                ));
            }
        },
    };
    let mut headers = Vec::new();
    for (name, value) in entry.header.iter().flatten() {
        match value {
            toml::Value::String(v) => headers.push((name.clone(), v.clone())),
            toml::Value::Array(vs) => {
                for v in vs {
                    let Some(v) = v.as_str() else {
                        return Err(Error::invalid(format!(
                            "hosts.toml: header {name:?} values must be strings"
                        )));
                    };
                    headers.push((name.clone(), v.to_string()));
                }
            }
            _ => {
                return Err(Error::invalid(format!(
                    "hosts.toml: header {name:?} must be a string or a list of strings"
                )));
            }
        }
    }
    Ok(RegistryHost {
        scheme: url.scheme().to_string(),
        host,
        path,
        capabilities,
        skip_verify: entry.skip_verify.unwrap_or(false),
        ca,
        client_cert,
        headers,
        mirror: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::errdefs::Kind;

    fn parse(registry: &str, text: &str) -> Result<Vec<RegistryHost>, Error> {
        parse_hosts_toml(registry, text, Path::new("/etc/berth/certs.d/x"), "https")
    }

    #[test]
    fn defaults_to_https_upstream() {
        let cfg = HostsConfig::new();
        let hosts = cfg.hosts("docker.io", false).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].base_url(), "https://registry-1.docker.io/v2");
        assert_eq!(hosts[0].capabilities, Capabilities::ALL);
        let hosts = cfg.hosts("localhost:5000", false).unwrap();
        assert_eq!(
            hosts[0].base_url(),
            "https://localhost:5000/v2",
            "no implicit http"
        );
    }

    #[test]
    fn plain_http_by_flag_or_by_name() {
        let cfg = HostsConfig::new().plain_http("127.0.0.1:5000");
        assert_eq!(
            cfg.hosts("127.0.0.1:5000", false).unwrap()[0].base_url(),
            "http://127.0.0.1:5000/v2"
        );
        assert_eq!(
            cfg.hosts("127.0.0.1:5001", false).unwrap()[0].scheme,
            "https"
        );
        assert_eq!(cfg.hosts("127.0.0.1:5001", true).unwrap()[0].scheme, "http");
    }

    #[test]
    fn parses_mirrors_in_file_order_then_server() {
        let text = r#"
            server = "https://registry-1.docker.io"
            [host."https://zzz-mirror:5000"]
              capabilities = ["pull", "resolve"]
            [host."https://aaa-mirror.example.com/prefix"]
              capabilities = ["pull"]
              skip_verify = true
              ca = ["a.crt", "/abs/b.crt"]
              [host."https://aaa-mirror.example.com/prefix".header]
                x-one = "1"
                x-many = ["a", "b"]
            [host."http://raw.example.com/custom/api"]
              override_path = true
              client = [["c.pem", "c.key"]]
        "#;
        let hosts = parse("docker.io", text).unwrap();
        // File order, not key order: this needs toml's `preserve_order` feature.
        let urls: Vec<String> = hosts.iter().map(|h| h.base_url()).collect();
        assert_eq!(
            urls,
            [
                "https://zzz-mirror:5000/v2",
                "https://aaa-mirror.example.com/prefix/v2",
                "http://raw.example.com/custom/api",
                "https://registry-1.docker.io/v2",
            ]
        );
        assert!(hosts[0].mirror && hosts[1].mirror && !hosts[3].mirror);
        assert_eq!(hosts[0].capabilities, Capabilities::PULL_RESOLVE);
        assert_eq!(
            hosts[1].capabilities,
            Capabilities {
                pull: true,
                ..Capabilities::default()
            }
        );
        assert!(hosts[1].skip_verify && !hosts[0].skip_verify);
        assert_eq!(
            hosts[1].ca,
            [
                PathBuf::from("/etc/berth/certs.d/x/a.crt"),
                PathBuf::from("/abs/b.crt")
            ]
        );
        assert_eq!(
            hosts[1].headers,
            [
                ("x-one".to_string(), "1".to_string()),
                ("x-many".to_string(), "a".to_string()),
                ("x-many".to_string(), "b".to_string()),
            ]
        );
        assert_eq!(hosts[3].capabilities, Capabilities::ALL);
        assert_eq!(
            hosts[2].client_cert,
            Some((
                PathBuf::from("/etc/berth/certs.d/x/c.pem"),
                Some(PathBuf::from("/etc/berth/certs.d/x/c.key"))
            ))
        );
        assert_eq!(hosts[1].client_cert, None);
    }

    #[test]
    fn upstream_settings_come_from_the_top_level() {
        let text = r#"
            server = "http://127.0.0.1:5000"
            capabilities = ["pull", "resolve"]
            skip_verify = true
            ca = "ca.pem"
            client = "/abs/both.pem"
        "#;
        let hosts = parse("myreg", text).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].base_url(), "http://127.0.0.1:5000/v2");
        assert!(!hosts[0].capabilities.push);
        assert!(hosts[0].skip_verify);
        assert_eq!(hosts[0].ca, [PathBuf::from("/etc/berth/certs.d/x/ca.pem")]);
        assert_eq!(
            hosts[0].client_cert,
            Some((PathBuf::from("/abs/both.pem"), None))
        );
        // Without `server` the upstream is the registry itself, with the default scheme.
        let hosts = parse_hosts_toml("myreg:1", "", Path::new("/"), "http").unwrap();
        assert_eq!(hosts[0].base_url(), "http://myreg:1/v2");
        let hosts = parse("myreg", r#"server = "myreg.example.com""#).unwrap();
        assert_eq!(hosts[0].base_url(), "https://myreg.example.com/v2");
    }

    #[test]
    fn rejects_bad_files() {
        for bad in [
            "server = 5",
            "server = \"ftp://x\"",
            "server = \"http://\"",
            "host = 1",
            "[host.\"http://m\"]\ncapabilities = [\"fly\"]",
            "[host.\"http://m\"]\nunknown_key = 1",
            "[host.\"http://m\".header]\nx = 1",
            "client = [[\"a\", \"b\", \"c\"]]",
            "client = 3",
            "not toml at all =",
        ] {
            let err = parse("r", bad).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn reads_files_from_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("localhost:5000")).unwrap();
        std::fs::write(
            dir.path().join("localhost:5000/hosts.toml"),
            "server = \"http://localhost:5000\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(
            dir.path().join("_default/hosts.toml"),
            "[host.\"http://fallback-mirror\"]\n",
        )
        .unwrap();
        let cfg = HostsConfig::new().with_dir(dir.path());
        let hosts = cfg.hosts("localhost:5000", false).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].base_url(), "http://localhost:5000/v2");
        let hosts = cfg.hosts("other.example.com", false).unwrap();
        assert_eq!(hosts[0].base_url(), "http://fallback-mirror/v2");
        assert_eq!(hosts[1].base_url(), "https://other.example.com/v2");

        std::fs::write(dir.path().join("_default/hosts.toml"), "server = 1").unwrap();
        let err = cfg.hosts("other.example.com", false).unwrap_err();
        assert!(err.message.contains("_default/hosts.toml"), "{err}");
    }
}
