//! The few things the shim reads from (and fixes in) a bundle's `config.json`.
//!
//! Lowering `oom_score_adj` needs CAP_SYS_RESOURCE; without it runc fails. Like
//! containerd's `restrict_oom_score_adj`, a request below the shim's own value is clamped
//! to it instead.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Capability number of CAP_SYS_RESOURCE.
const CAP_SYS_RESOURCE: u32 = 24;

/// What the shim needs to know about a container's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInfo {
    /// The container has its own pid namespace (else its processes are killed when init
    /// exits, like the Go shim).
    pub own_pid_namespace: bool,
    /// The spec has OCI hooks (runc runs them during start and delete).
    pub has_hooks: bool,
}

/// Whether this process may lower oom_score_adj.
fn can_lower_oom_score() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

fn own_oom_score() -> i64 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The oom_score_adj to use for a request of `wanted`: unchanged, or clamped to `floor`
/// when it may not be lowered below it.
pub fn clamp_oom_score(wanted: i64, floor: i64, can_lower: bool) -> i64 {
    if can_lower { wanted } else { wanted.max(floor) }
}

/// Clamps an exec process's oom_score_adj.
pub fn clamp_process_oom_score(process: &mut oci_spec::runtime::Process) {
    if let Some(wanted) = process.oom_score_adj() {
        let clamped = clamp_oom_score(wanted as i64, own_oom_score(), can_lower_oom_score());
        if clamped != wanted as i64 {
            process.set_oom_score_adj(Some(clamped as i32));
        }
    }
}

/// Inspects `config.json` in `bundle`, rewriting it only when its oom_score_adj must be
/// clamped.
pub fn prepare(bundle: &Path) -> Result<SpecInfo> {
    let path = bundle.join("config.json");
    let bytes =
        std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let mut spec: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidArgument(format!("config.json: {e}")))?;
    let info = inspect(&spec);
    if clamp_spec(&mut spec, own_oom_score(), can_lower_oom_score()) {
        let out = serde_json::to_vec(&spec)
            .map_err(|e| Error::InvalidArgument(format!("config.json: {e}")))?;
        std::fs::write(&path, out)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    }
    Ok(info)
}

/// Reads [`SpecInfo`] from a parsed spec.
pub fn inspect(spec: &Value) -> SpecInfo {
    let own_pid_namespace = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.get("type").and_then(Value::as_str) == Some("pid")
                    && n.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
            })
        });
    let has_hooks = spec
        .get("hooks")
        .and_then(Value::as_object)
        .is_some_and(|hooks| {
            hooks
                .values()
                .any(|list| list.as_array().is_some_and(|l| !l.is_empty()))
        });
    SpecInfo {
        own_pid_namespace,
        has_hooks,
    }
}

/// Clamps `process.oomScoreAdj`; true when the spec changed.
pub fn clamp_spec(spec: &mut Value, floor: i64, can_lower: bool) -> bool {
    let Some(adj) = spec.pointer_mut("/process/oomScoreAdj") else {
        return false;
    };
    let Some(wanted) = adj.as_i64() else {
        return false;
    };
    let clamped = clamp_oom_score(wanted, floor, can_lower);
    if clamped == wanted {
        return false;
    }
    *adj = Value::from(clamped);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_score_is_clamped_without_the_capability() {
        assert_eq!(clamp_oom_score(-999, 0, false), 0);
        assert_eq!(clamp_oom_score(-999, 0, true), -999);
        assert_eq!(clamp_oom_score(500, 0, false), 500);
        let mut spec = serde_json::json!({"process": {"oomScoreAdj": -998}});
        assert!(clamp_spec(&mut spec, -500, false));
        assert_eq!(spec["process"]["oomScoreAdj"], -500);
        assert!(!clamp_spec(&mut spec, -500, false));
    }

    #[test]
    fn pid_namespace_detection() {
        let own =
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}});
        assert!(inspect(&own).own_pid_namespace);
        let joined = serde_json::json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}});
        assert!(!inspect(&joined).own_pid_namespace);
        assert!(!inspect(&serde_json::json!({})).own_pid_namespace);
    }

    #[test]
    fn hook_detection() {
        let none = serde_json::json!({"hooks": {"prestart": []}});
        assert!(!inspect(&none).has_hooks);
        let some = serde_json::json!({"hooks": {"poststop": [{"path": "/bin/true"}]}});
        assert!(inspect(&some).has_hooks);
        assert!(!inspect(&serde_json::json!({})).has_hooks);
    }
}
