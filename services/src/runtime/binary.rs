//! The shim binary: which file a runtime name stands for, and its two command-line verbs,
//! `start` (launch or join a shim, print its address) and `delete` (clean up after a shim that
//! is gone).
//!
//! Both run the way containerd 1.6 runs them: `<shim> -namespace NS -address GRPC
//! -publish-binary BERTHD -id ID …` with the bundle as working directory and the daemon's
//! ttrpc address in `TTRPC_ADDRESS`.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
};

use berth_proto::errdefs::{Error, Kind};
use containerd_shim_protos::{api::DeleteResponse, protobuf::Message as _};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::client::Protocol;

/// Where the daemon can be reached, as shims are told.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The gRPC API socket.
    pub grpc: PathBuf,
    /// The ttrpc socket serving events to shims.
    pub ttrpc: PathBuf,
    /// The daemon's own executable, for `-publish-binary`.
    pub exe: PathBuf,
}

/// The shim binary for runtime `name`: a configured path, an absolute path, or
/// `containerd-shim-<name>-<version>` on `PATH` (or next to berthd) for `io.containerd.<name>.<version>`.
pub fn resolve(name: &str, shims: &BTreeMap<String, PathBuf>) -> Result<PathBuf, Error> {
    if let Some(path) = shims.get(name) {
        return executable(path).ok_or_else(|| {
            Error::not_found(format!(
                "runtime {name:?}: configured shim binary {}",
                path.display()
            ))
        });
    }
    if Path::new(name).is_absolute() {
        return executable(Path::new(name))
            .ok_or_else(|| Error::not_found(format!("invalid custom binary path {name:?}")));
    }
    let binary = binary_name(name)?;
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(own_dir)
        .find_map(|dir| executable(&dir.join(&binary)))
        .ok_or_else(|| {
            Error::not_found(format!("runtime {name:?} binary not installed {binary:?}"))
        })
}

/// `io.containerd.runc.v2` → `containerd-shim-runc-v2`.
fn binary_name(name: &str) -> Result<String, Error> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [.., kind, version] if parts.len() >= 2 && !kind.is_empty() && !version.is_empty() => {
            Ok(format!("containerd-shim-{kind}-{version}"))
        }
        _ => Err(Error::invalid(format!(
            "invalid runtime name {name:?}, correct runtime name should be either format like \
             'io.containerd.runc.v2' or a full path to the binary"
        ))),
    }
}

fn executable(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| path.to_path_buf())
}

/// What `start` printed: where the shim listens and which task API it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// `unix://…` address of the shim's ttrpc server.
    pub address: String,
    /// The task service it serves.
    pub protocol: Protocol,
}

#[derive(Deserialize)]
struct BootstrapJson {
    version: u32,
    address: String,
    protocol: String,
}

impl Bootstrap {
    /// Parses a shim's `start` output: a plain address (task API v2) or containerd 2.x's JSON
    /// bootstrap message.
    pub fn parse(out: &str) -> Result<Bootstrap, Error> {
        let out = out.trim();
        if !out.starts_with('{') {
            if out.is_empty() {
                return Err(Error::internal("shim printed no address"));
            }
            return Ok(Bootstrap {
                address: out.to_string(),
                protocol: Protocol::V2,
            });
        }
        let json: BootstrapJson = serde_json::from_str(out)
            .map_err(|e| Error::internal(format!("invalid shim bootstrap {out:?}: {e}")))?;
        if json.protocol != "ttrpc" {
            return Err(Error::new(
                Kind::NotImplemented,
                format!("shim protocol {:?} is not supported", json.protocol),
            ));
        }
        let protocol = match json.version {
            2 => Protocol::V2,
            3 => Protocol::V3,
            v => {
                return Err(Error::new(
                    Kind::NotImplemented,
                    format!("shim bootstrap version {v} is not supported"),
                ));
            }
        };
        Ok(Bootstrap {
            address: json.address,
            protocol,
        })
    }

    /// The JSON form kept in the bundle so a restarted daemon can reconnect.
    pub fn to_json(&self) -> String {
        let version = match self.protocol {
            Protocol::V2 => 2,
            Protocol::V3 => 3,
        };
        serde_json::json!({"version": version, "address": self.address, "protocol": "ttrpc"})
            .to_string()
    }
}

/// One shim binary invocation for task `id` of `namespace` in `bundle`.
pub struct Invocation<'a> {
    /// The shim binary.
    pub binary: &'a Path,
    /// Where the daemon listens.
    pub addresses: &'a Addresses,
    /// The task's namespace.
    pub namespace: &'a str,
    /// The task id.
    pub id: &'a str,
    /// The bundle directory.
    pub bundle: &'a Path,
}

impl Invocation<'_> {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.binary);
        cmd.arg("-namespace")
            .arg(self.namespace)
            .arg("-address")
            .arg(&self.addresses.grpc)
            .arg("-publish-binary")
            .arg(&self.addresses.exe)
            .arg("-id")
            .arg(self.id)
            .args(args)
            .current_dir(self.bundle)
            .env("TTRPC_ADDRESS", &self.addresses.ttrpc)
            .env("GRPC_ADDRESS", &self.addresses.grpc)
            .env("NAMESPACE", self.namespace)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Shims outlive the daemon: keep them out of its process group.
            .process_group(0)
            .kill_on_drop(false);
        cmd
    }

    /// Runs `start` with `options` (a marshalled `Any`) on stdin; returns where the shim listens.
    pub async fn start(&self, options: Option<Vec<u8>>) -> Result<Bootstrap, Error> {
        let mut cmd = self.command(&["start"]);
        cmd.stdin(if options.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::internal(format!("exec {}: {e}", self.binary.display())))?;
        if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), options) {
            // A shim that ignores its stdin may exit before reading it: not an error.
            let _ = stdin.write_all(&bytes).await;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::internal(format!("wait for shim start: {e}")))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.trim().is_empty() {
                text = format!("{text} {}", stderr.trim());
            }
            return Err(Error::internal(format!(
                "start failed: {}: {}",
                text.trim(),
                out.status
            )));
        }
        Bootstrap::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs `delete`: the shim kills what is left of the task, unmounts its rootfs and reports
    /// how it ended.
    pub async fn delete(&self) -> Result<DeleteResponse, Error> {
        let bundle = self.bundle.display().to_string();
        let out = self
            .command(&["-bundle", &bundle, "delete"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::internal(format!("exec {}: {e}", self.binary.display())))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(Error::internal(format!(
                "shim delete: {}: {}",
                stderr.trim(),
                out.status
            )));
        }
        if !stderr.trim().is_empty() {
            tracing::warn!(id = self.id, warnings = %stderr.trim(), "shim cleanup warnings");
        }
        DeleteResponse::parse_from_bytes(&out.stdout)
            .map_err(|e| Error::internal(format!("shim delete response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_become_binary_names() {
        assert_eq!(
            binary_name("io.containerd.runc.v2").unwrap(),
            "containerd-shim-runc-v2"
        );
        assert_eq!(
            binary_name("io.containerd.berth.v2").unwrap(),
            "containerd-shim-berth-v2"
        );
        assert_eq!(binary_name("runc").unwrap_err().kind, Kind::InvalidArgument);
    }

    #[test]
    fn missing_binaries_are_not_found() {
        let e = resolve("io.containerd.nosuch.v9", &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind, Kind::NotFound);
        assert!(e.message.contains("containerd-shim-nosuch-v9"), "{e}");
    }

    #[test]
    fn bootstrap_is_plain_or_json() {
        let plain = Bootstrap::parse("unix:///run/s/abc\n").unwrap();
        assert_eq!(plain.protocol, Protocol::V2);
        assert_eq!(plain.address, "unix:///run/s/abc");
        let json =
            Bootstrap::parse(r#"{"version":3,"address":"unix:///x","protocol":"ttrpc"}"#).unwrap();
        assert_eq!(json.protocol, Protocol::V3);
        assert_eq!(Bootstrap::parse(&json.to_json()).unwrap(), json);
        assert!(Bootstrap::parse(r#"{"version":3,"address":"x","protocol":"grpc"}"#).is_err());
    }
}
