//! containerd's label rules: a key and its value together may hold at most 4096 bytes, and a
//! key may not be empty.

use std::collections::HashMap;

use crate::errdefs::Error;

/// Container labels through which Berth's front ends (berthctl, the Docker facade) and berthd
/// agree on what a container wants beyond its OCI spec.
pub mod berth {
    /// The container's human name (`berthctl run --name`), unique per namespace.
    pub const NAME: &str = "berth.io/name";
    /// `json-file`: berthd gives the task's stdout/stderr to the shim as a JSON-lines log
    /// file under its root dir (readable through `berth.logs.v1`).
    pub const LOG_DRIVER: &str = "berth.io/log-driver";
    /// The one log driver berthd knows.
    pub const LOG_DRIVER_JSON_FILE: &str = "json-file";
    /// Rotate the log file when it exceeds this many bytes (default 10 MiB).
    pub const LOG_MAX_SIZE: &str = "berth.io/log-max-size";
    /// How many log files to keep, the current one included (default 3).
    pub const LOG_MAX_FILE: &str = "berth.io/log-max-file";
    /// Comma-separated names of the named volumes the container mounts.
    pub const VOLUMES: &str = "berth.io/volumes";
    /// `true`: berthd removes the container (task, snapshot, record) once its task exits and
    /// no restart is due (`berthctl run -d --rm`).
    pub const AUTO_REMOVE: &str = "berth.io/auto-remove";
    /// The image reference the user gave (`berthctl ps` shows it).
    pub const IMAGE_REF: &str = "berth.io/image";
}

/// containerd's (1.7) restart-monitor labels, which berthd's restart monitor honours.
pub mod restart {
    /// `running`: keep a task running; `stopped`: leave it stopped (set by `stop`/`kill`).
    pub const STATUS: &str = "containerd.io/restart.status";
    /// `always`, `unless-stopped`, `on-failure[:N]` or `no`.
    pub const POLICY: &str = "containerd.io/restart.policy";
    /// Where a restarted task's stdout/stderr go (a log URI such as `file:///path`), for
    /// containers that do not use Berth's log driver.
    pub const LOG_URI: &str = "containerd.io/restart.loguri";
    /// How many times the monitor has restarted the task.
    pub const COUNT: &str = "containerd.io/restart.count";
    /// `true` once a user stopped the container (an `unless-stopped` policy then stays quiet).
    pub const EXPLICITLY_STOPPED: &str = "containerd.io/restart.explicitly-stopped";
}

/// The most bytes a label's key and value may take together.
pub const MAX_LABEL_SIZE: usize = 4096;

/// Checks one label; the error is InvalidArgument, phrased as containerd phrases it.
pub fn validate(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid("label key must not be empty"));
    }
    let size = key.len() + value.len();
    if size > MAX_LABEL_SIZE {
        let shown: String = key.chars().take(10).collect();
        return Err(Error::invalid(format!(
            "label key and value length ({size} bytes) greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {shown}: invalid argument"
        )));
    }
    Ok(())
}

/// Checks every label of a map.
pub fn validate_all(labels: &HashMap<String, String>) -> Result<(), Error> {
    labels.iter().try_for_each(|(k, v)| validate(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_size_limit() {
        assert!(validate("k", &"v".repeat(4095)).is_ok());
        assert!(validate("k", &"v".repeat(4096)).is_err());
        assert!(validate("", "v").is_err());
    }
}
