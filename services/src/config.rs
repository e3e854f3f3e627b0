//! berthd's configuration: a TOML file in which every key has a default.
//!
//! `berthd config default` prints [`Config::default`]; `deploy/config.toml` is that output, and
//! CI checks the two agree. Command-line flags override the file.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Config format version.
    pub version: u32,
    /// Persistent data: metadata, content, snapshots.
    pub root: PathBuf,
    /// Runtime state: sockets, bundles; gone after a reboot.
    pub state: PathBuf,
    /// The gRPC API endpoint.
    pub grpc: Grpc,
    /// Logging.
    pub debug: Debug,
    /// Garbage collection timing.
    pub gc: Gc,
    /// Registry access for daemon-side pulls and pushes.
    pub registry: Registry,
    /// How runtime names become shim binaries.
    pub runtime: Runtime,
}

/// The `[runtime]` table.
///
/// A container names its runtime (`io.containerd.runc.v2`); berthd runs the shim binary that
/// name stands for, `containerd-shim-runc-v2`, found on `PATH` unless `shims` maps the name to
/// an explicit path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Runtime {
    /// Runtime name → shim binary path, overriding the `PATH` lookup.
    pub shims: BTreeMap<String, PathBuf>,
}

/// The `[registry]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registry {
    /// Directory of per-registry `<host>/hosts.toml` files (mirrors, plain HTTP, CAs), in the
    /// layout containerd uses for `certs.d`.
    pub config_path: PathBuf,
    /// Docker `config.json` whose `auths` give registry credentials (what `docker login`
    /// writes); read at every transfer.
    pub docker_config: PathBuf,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            config_path: PathBuf::from("/etc/berth/certs.d"),
            docker_config: PathBuf::from("/root/.docker/config.json"),
        }
    }
}

/// The `[grpc]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grpc {
    /// Unix socket path of the API.
    pub address: PathBuf,
    /// Group owning the socket (it is created 0660); 0 keeps root's group.
    pub gid: u32,
    /// Largest request message accepted, in bytes.
    pub max_recv_message_size: usize,
    /// Largest response message sent, in bytes.
    pub max_send_message_size: usize,
}

/// The `[debug]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Debug {
    /// Log level: trace, debug, info, warn or error.
    pub level: String,
}

/// The `[gc]` table: when garbage collection runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gc {
    /// Delay between a deletion and the collection it triggers.
    #[serde(with = "humantime_serde")]
    pub schedule_delay: Duration,
    /// Delay between start-up and the first collection.
    #[serde(with = "humantime_serde")]
    pub startup_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            root: PathBuf::from("/var/lib/berth"),
            state: PathBuf::from("/run/berth"),
            grpc: Grpc::default(),
            debug: Debug::default(),
            gc: Gc::default(),
            registry: Registry::default(),
            runtime: Runtime::default(),
        }
    }
}

impl Default for Grpc {
    fn default() -> Self {
        Grpc {
            address: PathBuf::from("/run/berth/berth.sock"),
            gid: 0,
            max_recv_message_size: 16 << 20,
            max_send_message_size: 16 << 20,
        }
    }
}

impl Default for Debug {
    fn default() -> Self {
        Debug {
            level: "info".to_string(),
        }
    }
}

impl Default for Gc {
    fn default() -> Self {
        Gc {
            schedule_delay: Duration::from_millis(0),
            startup_delay: Duration::from_millis(100),
        }
    }
}

impl Config {
    /// Parses a config file's text; unknown keys are an error (a typo must not pass silently).
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The default config as TOML, as `berthd config default` prints it.
    pub fn default_toml() -> String {
        toml::to_string(&Config::default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips() {
        let text = Config::default_toml();
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn missing_keys_take_defaults_and_typos_fail() {
        let c = Config::parse("root = \"/tmp/x\"\n[gc]\nschedule_delay = \"2s\"\n").unwrap();
        assert_eq!(c.root, PathBuf::from("/tmp/x"));
        assert_eq!(c.gc.schedule_delay, Duration::from_secs(2));
        assert_eq!(c.grpc, Grpc::default());
        assert!(Config::parse("rooot = \"/x\"").is_err());
        let c = Config::parse("[runtime.shims]\n\"io.x.y.v2\" = \"/opt/shim\"\n").unwrap();
        assert_eq!(c.runtime.shims["io.x.y.v2"], PathBuf::from("/opt/shim"));
    }

    #[test]
    fn deploy_config_is_the_default() {
        let shipped = include_str!("../../deploy/config.toml");
        assert_eq!(Config::parse(shipped).unwrap(), Config::default());
    }
}
