//! Image references in Docker's grammar, normalised the way Docker and containerd do.
//!
//! A reference is `[registry/]repository[:tag][@digest]`. Parsing follows the grammar of the
//! distribution project's `reference` package:
//!
//! * the first path component is a registry host when it contains `.` or `:`, is `localhost`,
//!   or has upper-case letters (`Foo/bar` names host `Foo`); otherwise the registry is
//!   `docker.io`, and a one-component repository there gains `library/` (`busybox` →
//!   `docker.io/library/busybox`). `index.docker.io` is an alias of `docker.io`;
//! * host names are DNS labels with an optional port, or a bracketed IPv6 address;
//! * repository components are lower-case alphanumerics joined by `.`, `_`, `__` or runs of
//!   `-`; the repository path, `library/` included, is at most 255 characters (the
//!   registry's name does not count, as in distribution's `reference` since v0.6);
//! * a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest must pass [`Digest::parse`];
//! * with neither tag nor digest the tag is `latest`; tag and digest may both be given, and
//!   then the digest is what gets pulled.

use std::fmt;

use berth_proto::{digest::Digest, errdefs::Error};

/// The canonical name of Docker Hub, used in normalised references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The namespace Docker Hub uses for one-component names (`busybox` → `library/busybox`).
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag assumed when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry's canonical name, e.g. `docker.io` or `localhost:5000`.
    pub registry: String,
    /// The repository path inside the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag, if any; `latest` when the input named neither tag nor digest.
    pub tag: Option<String>,
    /// The digest, if any; it wins over the tag when resolving.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `s`; errors are InvalidArgument and say what is wrong.
    pub fn parse(s: &str) -> Result<Reference, Error> {
        parse(s).map_err(|why| Error::invalid(format!("invalid reference {s:?}: {why}")))
    }

    /// The host to contact for this reference's registry (`registry-1.docker.io` for
    /// `docker.io`, otherwise the registry itself).
    pub fn host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest string to put in a manifest URL: the digest when there is one,
    /// else the tag (`latest` if neither).
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// A copy of this reference that names `digest` and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// A copy of this reference in another repository of the same registry, with no tag or
    /// digest; `repository` is validated like any repository path.
    pub fn in_repository(&self, repository: &str) -> Result<Reference, Error> {
        validate_path(repository).map_err(|why| {
            Error::invalid(format!("invalid repository name {repository:?}: {why}"))
        })?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            tag: None,
            digest: None,
        })
    }

    /// The short form Docker shows: `docker.io/library/busybox:latest` is `busybox:latest`,
    /// `docker.io/user/img:1` is `user/img:1`; other registries keep their full name, and so
    /// does a Docker Hub repository whose first component reads as a host
    /// (`docker.io/foo.com/img`, `docker.io/localhost/img`), so that the short form always
    /// parses back to this reference.
    pub fn familiar(&self) -> String {
        let short = self
            .repository
            .strip_prefix("library/")
            .filter(|rest| !rest.contains('/'))
            .unwrap_or(&self.repository);
        let name = if self.registry == DOCKER_HUB && split_registry(short).1 == short {
            short.to_string()
        } else {
            self.name()
        };
        let mut out = name;
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// The host serving `registry`'s API: `registry-1.docker.io` for Docker Hub's aliases.
pub fn registry_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_HOST
    } else {
        registry
    }
}

fn parse(s: &str) -> Result<Reference, String> {
    if s.is_empty() {
        return Err("empty reference".into());
    }
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("cannot specify 64-byte hexadecimal strings as a repository name".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (
            rest,
            Some(Digest::parse(d).map_err(|e| format!("bad digest: {}", e.message))?),
        ),
        None => (s, None),
    };
    // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    if name.is_empty() {
        return Err("empty repository name".into());
    }
    let (registry, path) = split_registry(name);
    validate_host(registry)?;
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    let (registry, repository) = if registry == DOCKER_HUB || registry == "index.docker.io" {
        let repo = if path.contains('/') {
            path.to_string()
        } else {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        };
        (DOCKER_HUB.to_string(), repo)
    } else {
        (registry.to_string(), path.to_string())
    };
    // Validated once normalised, so the limit applies to what the string form repeats.
    validate_path(&repository)?;
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Splits `name` into registry and path the way Docker's `splitDockerDomain` does.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = tag.len() <= MAX_TAG_LEN
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid registry host {host:?}"));
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let Some((addr, rest)) = v6.split_once(']') else {
            return bad();
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return bad();
        }
        match rest {
            "" => return Ok(()),
            _ => match rest.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return bad(),
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    if host.starts_with('[') {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        bad()
    }
}

/// Validates a repository path: `/`-separated components of lower-case alphanumerics joined
/// by `.`, `_`, `__` or runs of `-`, at most 255 characters in all.
fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty repository name".into());
    }
    if path.len() > MAX_NAME_LEN {
        return Err(format!(
            "repository name must not be more than {MAX_NAME_LEN} characters"
        ));
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(format!("invalid repository path component {component:?}"));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    // alnum+ (separator alnum+)*
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::errdefs::Kind;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/img"), "docker.io/user/img:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("a/b/c"), "docker.io/a/b/c:latest");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.host(), "registry-1.docker.io");
    }

    #[test]
    fn keeps_other_registries() {
        let r = Reference::parse("localhost:5000/x:1").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "x");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.host(), "localhost:5000");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(
            full("127.0.0.1:5000/lab/busybox:1"),
            "127.0.0.1:5000/lab/busybox:1"
        );
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(full("[fe80::1]/x"), "[fe80::1]/x:latest");
        assert_eq!(full("Foo/bar"), "Foo/bar:latest");
        assert_eq!(full("reg.example.com/a/b"), "reg.example.com/a/b:latest");
    }

    #[test]
    fn parses_digests_alone_and_with_tags() {
        let r = Reference::parse(&format!("reg.example.com/a/b@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("reg.example.com/a/b@{D}"));
        assert_eq!(r.object(), D);

        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{D}"));
        assert_eq!(r.object(), D, "the digest wins");

        let r = Reference::parse(&format!("localhost:5000/x@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn familiar_names_shorten_docker_hub() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(f("user/img"), "user/img:latest");
        assert_eq!(f("library/a/b"), "library/a/b:latest");
        assert_eq!(f("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(f(&format!("busybox@{D}")), format!("busybox@{D}"));
    }

    /// Found by the `reference_parse` fuzz target: the short form of a Docker Hub repository
    /// whose first component looks like a host named that host as the registry.
    #[test]
    fn familiar_names_keep_docker_hub_when_the_short_form_reads_as_a_host() {
        for name in [
            "docker.io/libra.d7f28fory/busbox:latest",
            "docker.io/localhost/img:1",
            "docker.io/docker.io/img:1",
        ] {
            let r = Reference::parse(name).unwrap();
            assert_eq!(r.familiar(), name);
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        }
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/foo.bar"), "foo.bar:latest");
    }

    #[test]
    fn accepts_grammar_edge_cases() {
        for ok in [
            "a",
            "a_b",
            "a__b",
            "a---b",
            "a.b",
            "a0/b1.c2",
            "x:_tag",
            "x:A.b-C_d",
            "host:1/x",
        ] {
            Reference::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let long_tag = "t".repeat(128);
        Reference::parse(&format!("x:{long_tag}")).unwrap();
    }

    #[test]
    fn rejects_bad_references() {
        let too_long_tag = format!("x:{}", "t".repeat(129));
        let too_long_name = "a".repeat(256);
        let hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for bad in [
            "",
            ":tag",
            "busybox:",
            "busybox:-x",
            "busybox:.x",
            "busybox:a b",
            "Busybox",
            "user/Img",
            "a//b",
            "/a",
            "a/",
            "a_.b",
            "a___b",
            "a..b",
            "-a",
            "a-",
            "a.",
            "localhost:5000/",
            "localhost:/x",
            "localhost:50a0/x",
            "-host.com/x",
            "ho_st.com/x",
            "[::1/x",
            "[zz]:5000/x",
            "busybox@sha256:abc",
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "busybox@",
            "a@b@c",
            too_long_tag.as_str(),
            too_long_name.as_str(),
            hex64,
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument, "{bad:?}");
            assert!(err.message.contains("invalid reference"), "{bad:?}: {err}");
        }
    }

    /// Found by the `reference_parse` fuzz target: a one-component name of 248 to 255
    /// characters was accepted, but its string form, with `library/` added, was refused.
    #[test]
    fn limits_the_normalised_repository_path() {
        let longest = "a".repeat(MAX_NAME_LEN - "library/".len());
        let r = Reference::parse(&longest).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        let err = Reference::parse(&format!("{longest}a")).unwrap_err();
        assert!(err.message.contains("more than 255"), "{err}");
        // The registry's name does not count.
        let path = "a".repeat(MAX_NAME_LEN);
        let r = Reference::parse(&format!("registry.example.com:5000/{path}")).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        assert!(r.in_repository(&format!("{path}a")).is_err());
    }

    #[test]
    fn explains_uppercase_repositories() {
        let err = Reference::parse("docker.io/User/img").unwrap_err();
        assert!(err.message.contains("must be lowercase"), "{err}");
    }

    #[test]
    fn derives_related_references() {
        let r = Reference::parse("localhost:5000/a/b:1").unwrap();
        let d = Digest::parse(D).unwrap();
        assert_eq!(
            r.with_digest(d).to_string(),
            format!("localhost:5000/a/b@{D}")
        );
        assert_eq!(r.in_repository("c").unwrap().repository, "c");
        assert_eq!(
            r.in_repository("C").unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(r.name(), "localhost:5000/a/b");
        let parsed: Reference = "busybox".parse().unwrap();
        assert_eq!(parsed.object(), "latest");
    }
}
