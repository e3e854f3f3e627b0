//! The flags `run` and `create` share (docker's names), and the parsers of their values.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// When to pull the image before creating a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull only when the image is not stored.
    Missing,
    /// Always pull.
    Always,
    /// Never pull; fail when the image is not stored.
    Never,
}

/// How a container is made: image, command and options.
#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open (attach it to the container's process).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to copy it from here).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User as name|uid[:group|gid].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Bind mount a volume: NAME:/path[:ro], /host/path:/path[:ro], or /path (anonymous).
    #[arg(short, long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,
    /// Attach a mount: type=bind|volume,source=…,target=…[,readonly].
    #[arg(long, value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Memory limit (e.g. 32m, 1g).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Limit on the number of processes (-1: unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities (e.g. NET_ADMIN, ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (e.g. NET_RAW, ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give the container every capability and device, and no seccomp filter.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: no-new-privileges[:true], seccomp=unconfined.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Container host name (default: the short ID).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Override the image's entrypoint ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set labels on the container (KEY=VALUE).
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Platform of the image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Runtime (shim) to run the container with.
    #[arg(long, default_value = "io.containerd.berth.v2")]
    pub runtime: String,
    /// Snapshotter for the container's root filesystem.
    #[arg(long, default_value = "overlayfs")]
    pub snapshotter: String,
    /// Pull the image: missing, always or never.
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    /// Pull over plain HTTP (a registry without TLS).
    #[arg(long)]
    pub plain_http: bool,
    /// Restart policy: no, always, on-failure[:N], unless-stopped.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// The image to run.
    pub image: String,
    /// The command and its arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Parses a docker size (`32m`, `1g`, `512k`, `100b`, `1024`) into bytes.
pub fn parse_bytes(text: &str) -> anyhow::Result<i64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let value: f64 = number
        .parse()
        .with_context(|| format!("invalid size {text:?}: expected e.g. 32m or 1g"))?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => bail!("invalid size {text:?}: unknown unit (use b, k, m, g or t)"),
    };
    Ok((value * scale as f64) as i64)
}

/// Environment entries from `-e` and `--env-file`, in docker's order (files first).
/// A bare `KEY` takes this process's value and is dropped when it has none.
pub fn environment(flags: &CreateFlags) -> anyhow::Result<Vec<String>> {
    let mut raw = Vec::new();
    for file in &flags.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading env file {}", file.display()))?;
        raw.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    raw.extend(flags.env.iter().cloned());
    Ok(raw
        .into_iter()
        .filter_map(|entry| {
            if entry.contains('=') {
                Some(entry)
            } else {
                std::env::var(&entry).ok().map(|v| format!("{entry}={v}"))
            }
        })
        .collect())
}

/// `KEY=VALUE` labels (a bare `KEY` gets an empty value, as in docker).
pub fn labels(entries: &[String]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// A restart policy as the restart labels spell it, or `None` for `no`.
pub fn restart_policy(text: &str) -> anyhow::Result<Option<String>> {
    match text.split_once(':') {
        None if text == "no" || text.is_empty() => Ok(None),
        None if matches!(text, "always" | "unless-stopped" | "on-failure") => {
            Ok(Some(text.to_string()))
        }
        Some(("on-failure", n)) if n.parse::<u32>().is_ok() => Ok(Some(text.to_string())),
        _ => bail!(
            "invalid restart policy {text:?}: use no, always, on-failure[:max-retries] or unless-stopped"
        ),
    }
}

/// What `--security-opt` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
}

/// Parses `--security-opt` values.
pub fn security_opts(opts: &[String]) -> anyhow::Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        let (key, value) = opt
            .split_once(['=', ':'])
            .map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => out.seccomp_unconfined = true,
            _ => bail!(
                "unsupported --security-opt {opt:?}: berthctl knows no-new-privileges[:true|false] and seccomp=unconfined"
            ),
        }
    }
    Ok(out)
}

/// Where a mount's data comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A host path.
    Host(PathBuf),
    /// A named volume.
    Volume(String),
    /// A new anonymous volume.
    Anonymous,
}

/// One mount asked for with `-v` or `--mount`.
#[derive(Debug, PartialEq, Eq)]
pub struct MountRequest {
    /// Its source.
    pub source: MountSource,
    /// The path inside the container.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
    /// A new, empty volume is not filled with the image's content at the target.
    pub nocopy: bool,
}

/// Parses `-v SRC:DST[:OPTS]` or `-v DST`; OPTS is a comma-separated list of `ro`, `rw` and
/// `nocopy`.
pub fn parse_volume(spec: &str) -> anyhow::Result<MountRequest> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => bail!("invalid volume {spec:?}: expected [SOURCE:]TARGET[:ro]"),
    };
    let (mut readonly, mut nocopy) = (false, false);
    for option in mode.into_iter().flat_map(|m| m.split(',')) {
        match option {
            "rw" => readonly = false,
            "ro" => readonly = true,
            "nocopy" => nocopy = true,
            other => {
                bail!("invalid volume option {other:?} in {spec:?}: use ro, rw or nocopy")
            }
        }
    }
    if !target.starts_with('/') {
        bail!("invalid volume {spec:?}: the container path {target:?} must be absolute");
    }
    let source = match source {
        None => MountSource::Anonymous,
        Some(s) if s.starts_with('/') => MountSource::Host(PathBuf::from(s)),
        Some(s) if s.starts_with('.') => MountSource::Host(
            std::path::absolute(s).with_context(|| format!("resolving host path {s:?}"))?,
        ),
        Some("") => bail!("invalid volume {spec:?}: empty source"),
        Some(s) => MountSource::Volume(s.to_string()),
    };
    Ok(MountRequest {
        source,
        target: target.to_string(),
        readonly,
        nocopy,
    })
}

/// Parses `--mount type=bind|volume,source=…,target=…[,readonly][,volume-nocopy]`.
pub fn parse_mount(spec: &str) -> anyhow::Result<MountRequest> {
    let mut kind = "volume";
    let (mut source, mut target, mut readonly, mut nocopy) = (None, None, false, false);
    for field in spec.split(',') {
        let (key, value) = field
            .split_once('=')
            .map_or((field, None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("type", Some(v)) => kind = v,
            ("source" | "src", Some(v)) => source = Some(v),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("volume-nocopy", None | Some("true" | "1")) => nocopy = true,
            ("volume-nocopy", Some("false" | "0")) => nocopy = false,
            _ => bail!("invalid --mount field {field:?} in {spec:?}"),
        }
    }
    let target = target.with_context(|| format!("--mount {spec:?} needs target="))?;
    if !target.starts_with('/') {
        bail!("--mount target {target:?} must be an absolute path");
    }
    let source = match (kind, source) {
        ("bind", Some(s)) if s.starts_with('/') => MountSource::Host(PathBuf::from(s)),
        ("bind", _) => bail!("--mount type=bind needs an absolute source= path"),
        ("volume", Some(s)) if !s.is_empty() => MountSource::Volume(s.to_string()),
        ("volume", _) => MountSource::Anonymous,
        (other, _) => bail!("unsupported --mount type {other:?}: use bind or volume"),
    };
    Ok(MountRequest {
        source,
        target: target.to_string(),
        readonly,
        nocopy,
    })
}

/// Whether a `user[:group]` string names a user or group (so the image's files must be
/// read), rather than giving numbers only.
pub fn user_needs_lookup(user: &str) -> bool {
    !user.is_empty()
        && user
            .split(':')
            .any(|part| part.is_empty() || part.parse::<u32>().is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1.5m").unwrap(), 3 << 19);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3x").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart_policy("no").unwrap(), None);
        assert_eq!(restart_policy("always").unwrap().as_deref(), Some("always"));
        assert_eq!(
            restart_policy("on-failure:3").unwrap().as_deref(),
            Some("on-failure:3")
        );
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("on-failure:x").is_err());
    }

    #[test]
    fn security_options() {
        let o = security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()]).unwrap();
        assert!(o.no_new_privileges && o.seccomp_unconfined);
        assert!(
            security_opts(&["no-new-privileges:true".into()])
                .unwrap()
                .no_new_privileges
        );
        assert!(security_opts(&["apparmor=x".into()]).is_err());
    }

    #[test]
    fn volumes_and_mounts() {
        let v = parse_volume("data:/srv:ro").unwrap();
        assert_eq!(v.source, MountSource::Volume("data".into()));
        assert!(v.readonly);
        assert_eq!(
            parse_volume("/host:/c").unwrap().source,
            MountSource::Host("/host".into())
        );
        assert_eq!(parse_volume("/c").unwrap().source, MountSource::Anonymous);
        assert!(parse_volume("data:rel").is_err());
        let m = parse_mount("type=bind,source=/h,target=/c,readonly").unwrap();
        assert_eq!(m.source, MountSource::Host("/h".into()));
        assert!(m.readonly);
        let m = parse_mount("type=volume,src=v,dst=/c").unwrap();
        assert_eq!(m.source, MountSource::Volume("v".into()));
        assert!(parse_mount("type=tmpfs,target=/c").is_err());
        assert!(!v.nocopy && !m.nocopy);
        let v = parse_volume("data:/srv:ro,nocopy").unwrap();
        assert!(v.readonly && v.nocopy);
        assert!(parse_volume("data:/srv:z").is_err());
        let m = parse_mount("type=volume,src=v,dst=/c,volume-nocopy").unwrap();
        assert!(m.nocopy && !m.readonly);
    }

    #[test]
    fn user_lookup() {
        assert!(!user_needs_lookup(""));
        assert!(!user_needs_lookup("65534"));
        assert!(!user_needs_lookup("1000:1000"));
        assert!(user_needs_lookup("nobody"));
        assert!(user_needs_lookup("1000:staff"));
    }
}
