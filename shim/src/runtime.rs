//! Which runc to run and how: containerd's runtime options (`containerd.runc.v1.Options`)
//! turned into a [`runc::Runc`] client, and runc's own error messages recovered from its
//! JSON log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::util::JsonOptions;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::shim::oci::Options;
use runc::options::GlobalOpts;

use crate::error::{Error, Result};
use crate::spawner::ReaperSpawner;

/// runc's state root when the options name none (containerd's default).
pub const DEFAULT_RUNC_ROOT: &str = "/run/containerd/runc";

/// The file in the bundle that runc logs to (JSON lines).
pub const RUNC_LOG: &str = "log.json";

/// Places a runc binary name is looked up in after `PATH`.
const FALLBACK_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"];

/// Decodes the runtime options of a create request; absent or foreign options are the
/// defaults, like containerd's Go shim.
pub fn parse_options(any: Option<&Any>) -> Result<Options> {
    let Some(any) = any else {
        return Ok(Options::default());
    };
    if any.type_url.is_empty() {
        return Ok(Options::default());
    }
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != "containerd.runc.v1.Options" {
        return Ok(Options::default());
    }
    Options::parse_from_bytes(&any.value)
        .map_err(|e| Error::InvalidArgument(format!("runtime options: {e}")))
}

/// runc's `--root` for a namespace: `<root>/<namespace>`.
pub fn runc_root(options: &Options, namespace: &str) -> PathBuf {
    let root = if options.root.is_empty() {
        DEFAULT_RUNC_ROOT
    } else {
        options.root.as_str()
    };
    Path::new(root).join(namespace)
}

/// Resolves the runc binary: `binary_name` (default `runc`) on `PATH`, then the usual
/// system directories.
pub fn runc_binary(options: &Options) -> PathBuf {
    let name = if options.binary_name.is_empty() {
        "runc"
    } else {
        options.binary_name.as_str()
    };
    if name.contains('/') {
        return PathBuf::from(name);
    }
    if let Some(found) = runc::utils::binary_path(name) {
        return found;
    }
    FALLBACK_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A runc client for one container of `bundle`, logging to the bundle's `log.json`.
pub fn client(options: &Options, namespace: &str, bundle: &Path) -> Result<runc::Runc> {
    let mut global = GlobalOpts::new()
        .command(runc_binary(options))
        .root(runc_root(options, namespace))
        .log(bundle.join(RUNC_LOG))
        .log_json()
        .systemd_cgroup(options.systemd_cgroup);
    global.custom_spawner(Arc::new(ReaperSpawner));
    global.build().map_err(|e| {
        let binary = runc_binary(options);
        if binary.is_file() {
            Error::Runtime(format!("runc client for {}: {e}", binary.display()))
        } else {
            Error::Runtime(format!(
                "runc binary {:?} not found: not on PATH nor in {}",
                binary.display().to_string(),
                FALLBACK_DIRS.join(", ")
            ))
        }
    })
}

/// The file in the bundle holding the runtime options, for `delete` after a crash.
pub const OPTIONS_FILE: &str = "options.json";

/// Saves the runtime options in the bundle (containerd's Go shim does the same).
pub fn write_options(bundle: &Path, options: &Options) -> Result<()> {
    let json = serde_json::to_vec(&JsonOptions::from(options.clone()))
        .map_err(|e| Error::Runtime(format!("encode options: {e}")))?;
    let path = bundle.join(OPTIONS_FILE);
    std::fs::write(&path, json).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Reads the options saved by [`write_options`]; the defaults when there are none.
pub fn read_options(bundle: &Path) -> Options {
    std::fs::read(bundle.join(OPTIONS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<JsonOptions>(&b).ok())
        .map(Options::from)
        .unwrap_or_default()
}

/// runc's global arguments for a command the `runc` crate cannot build (checkpoint).
pub fn global_args(options: &Options, namespace: &str, bundle: &Path) -> Vec<String> {
    let mut args = vec![
        "--root".to_string(),
        runc_root(options, namespace).display().to_string(),
        "--log".to_string(),
        bundle.join(RUNC_LOG).display().to_string(),
        "--log-format".to_string(),
        "json".to_string(),
    ];
    if options.systemd_cgroup {
        args.push("--systemd-cgroup".to_string());
    }
    args
}

/// The most useful message of a failed runc command: the last `msg` of runc's JSON log
/// (runc's own stderr went to the container's stdio), else the command's output.
pub fn runc_error(bundle: &Path, what: &str, err: runc::error::Error) -> Error {
    let from_log = std::fs::read_to_string(bundle.join(RUNC_LOG))
        .ok()
        .and_then(|log| last_log_message(&log));
    let detail = match (from_log, &err) {
        (Some(msg), _) => msg,
        (None, runc::error::Error::CommandFailed { stdout, stderr, .. }) => {
            format!("{}{}", stdout, stderr).trim().to_string()
        }
        (None, e) => e.to_string(),
    };
    Error::Runtime(format!("OCI runtime {what} failed: {detail}"))
}

/// The `msg` of the last error-level line of a runc JSON log.
pub fn last_log_message(log: &str) -> Option<String> {
    log.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("level")?.as_str()? != "error" {
            return None;
        }
        Some(v.get("msg")?.as_str()?.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_when_absent_or_foreign() {
        assert_eq!(parse_options(None).unwrap(), Options::default());
        let foreign = Any {
            type_url: "io.containerd.other.v1.Options".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        assert_eq!(parse_options(Some(&foreign)).unwrap(), Options::default());
    }

    #[test]
    fn options_root_and_binary_are_honoured() {
        let opts = Options {
            root: "/run/berth/runc".into(),
            binary_name: "/opt/runc".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: opts.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let parsed = parse_options(Some(&any)).unwrap();
        assert_eq!(parsed, opts);
        assert_eq!(
            runc_root(&parsed, "k8s.io"),
            Path::new("/run/berth/runc/k8s.io")
        );
        assert_eq!(runc_binary(&parsed), Path::new("/opt/runc"));
        assert_eq!(
            runc_root(&Options::default(), "default"),
            Path::new("/run/containerd/runc/default")
        );
    }

    #[test]
    fn log_message_is_the_last_error() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"w\"}\n",
            "{\"level\":\"error\",\"msg\":\"first\"}\n",
            "{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": not found\"}\n",
        );
        assert_eq!(
            last_log_message(log).as_deref(),
            Some("exec: \"nope\": not found")
        );
        assert_eq!(last_log_message(""), None);
    }

    #[test]
    fn a_missing_runc_binary_is_named_in_the_error() {
        let opts = Options {
            binary_name: "no-runc".into(),
            ..Default::default()
        };
        let err = client(&opts, "default", Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("no-runc"), "{err}");
    }
}
