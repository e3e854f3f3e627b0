//! Where a shim listens: a filesystem unix socket (never abstract: CVE-2020-15257) named
//! by hashing the daemon address, namespace and group, so that every container of a pod
//! finds the same shim.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Annotations that put containers in one shim, checked in order.
pub const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.kubernetes.cri.sandbox-id",
    "io.containerd.runc.v2.group",
];

/// The group a container's shim serves: the first grouping annotation of its spec, else
/// the container id itself.
pub fn group(spec: &Value, id: &str) -> String {
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|key| {
            spec.pointer("/annotations")
                .and_then(|a| a.get(*key))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        })
        .unwrap_or(id)
        .to_string()
}

/// The group of the bundle in `dir` (its `config.json`), or `id` when there is none.
pub fn bundle_group(dir: &Path, id: &str) -> String {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|spec| group(&spec, id))
        .unwrap_or_else(|| id.to_string())
}

/// The socket address (`unix:///…`) for a group, in `socket_dir` when the daemon names
/// one, else under containerd's `/run/containerd/s`.
pub fn socket_address(
    daemon: &str,
    namespace: &str,
    group: &str,
    socket_dir: Option<&str>,
) -> String {
    let default = containerd_shim::socket_address(daemon, namespace, group);
    match socket_dir {
        Some(dir) if !dir.is_empty() => {
            let hash = default.rsplit('/').next().unwrap_or_default();
            format!("unix://{}/{hash}", dir.trim_end_matches('/'))
        }
        _ => default,
    }
}

/// The filesystem path of a `unix://` address.
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Whether a shim already answers at `address`.
pub fn is_live(address: &str) -> bool {
    UnixStream::connect(socket_path(address)).is_ok()
}

/// Removes the socket file of `address` when nothing listens there any more (a shim that
/// was killed leaves it behind). Anything that is not a socket is left alone.
pub fn remove_dead(address: &str) {
    let path = Path::new(socket_path(address));
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && !is_live(address) {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds `address` with mode 0600 in a 0700 directory, replacing a dead socket.
pub fn listen(address: &str) -> Result<UnixListener> {
    let path = Path::new(socket_path(address));
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
    }
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && !is_live(address) => {
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path).map_err(|e| Error::io(format!("bind {address}"), e))?
        }
        Err(e) => return Err(Error::io(format!("bind {address}"), e)),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("chmod {address}"), e))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_sockets_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("dead");
        drop(UnixListener::bind(&dead).unwrap());
        let live = dir.path().join("live");
        let _listener = UnixListener::bind(&live).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        for p in [&dead, &live, &file] {
            remove_dead(&format!("unix://{}", p.display()));
        }
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(file.exists());
    }

    #[test]
    fn grouping_follows_annotations() {
        let pod = serde_json::json!({"annotations": {"io.kubernetes.cri.sandbox-id": "sb1"}});
        assert_eq!(group(&pod, "c1"), "sb1");
        let grp = serde_json::json!({"annotations": {"io.containerd.runc.v2.group": "g"}});
        assert_eq!(group(&grp, "c1"), "g");
        assert_eq!(group(&serde_json::json!({}), "c1"), "c1");
    }

    #[test]
    fn addresses_hash_daemon_namespace_and_group() {
        let a = socket_address("/run/berth/berth.sock", "default", "sb1", None);
        assert!(a.starts_with("unix:///run/containerd/s/"));
        assert_eq!(
            a,
            socket_address("/run/berth/berth.sock", "default", "sb1", None)
        );
        assert_ne!(
            a,
            socket_address("/run/berth/berth.sock", "k8s.io", "sb1", None)
        );
        let d = socket_address("/run/berth/berth.sock", "default", "sb1", Some("/tmp/s/"));
        assert_eq!(d.rsplit('/').next(), a.rsplit('/').next());
        assert!(d.starts_with("unix:///tmp/s/"));
    }

    #[test]
    fn listen_makes_private_socket_and_replaces_dead_ones() {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("unix://{}/s/x", dir.path().display());
        let l = listen(&addr).unwrap();
        let mode = std::fs::metadata(socket_path(&addr))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(dir.path().join("s"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert!(is_live(&addr));
        drop(l);
        assert!(!is_live(&addr));
        let _again = listen(&addr).unwrap();
    }
}
