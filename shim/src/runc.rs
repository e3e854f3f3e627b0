//! runc command lines: global options plus one subcommand, rendered to argv.

use std::path::PathBuf;

/// runc's global options (they precede the subcommand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Global {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format_json: bool,
    systemd_cgroup: bool,
}

impl Global {
    /// No global options: runc's defaults.
    pub fn new() -> Global {
        Global::default()
    }

    /// `--root DIR`: where runc keeps container state (one per daemon).
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Global {
        self.root = Some(dir.into());
        self
    }

    /// `--log FILE`: runc's own log.
    pub fn log(mut self, file: impl Into<PathBuf>) -> Global {
        self.log = Some(file.into());
        self
    }

    /// `--log-format json`: machine-readable errors.
    pub fn log_format_json(mut self) -> Global {
        self.log_format_json = true;
        self
    }

    /// `--systemd-cgroup`: cgroups through systemd.
    pub fn systemd_cgroup(mut self) -> Global {
        self.systemd_cgroup = true;
        self
    }

    fn render(&self, argv: &mut Vec<String>) {
        if let Some(root) = &self.root {
            argv.push("--root".into());
            argv.push(root.display().to_string());
        }
        if let Some(log) = &self.log {
            argv.push("--log".into());
            argv.push(log.display().to_string());
        }
        if self.log_format_json {
            argv.push("--log-format".into());
            argv.push("json".into());
        }
        if self.systemd_cgroup {
            argv.push("--systemd-cgroup".into());
        }
    }
}

/// A runc subcommand with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `runc create --bundle B [--pid-file P] [--console-socket S] ID`
    Create {
        /// Container id.
        id: String,
        /// Bundle directory holding config.json.
        bundle: PathBuf,
        /// Where runc writes the init pid.
        pid_file: Option<PathBuf>,
        /// Socket receiving the pty master, for terminals.
        console_socket: Option<PathBuf>,
    },
    /// `runc start ID`
    Start {
        /// Container id.
        id: String,
    },
    /// `runc kill [--all] ID SIGNAL`
    Kill {
        /// Container id.
        id: String,
        /// Signal number.
        signal: i32,
        /// Signal every process of the container.
        all: bool,
    },
    /// `runc delete [--force] ID`
    Delete {
        /// Container id.
        id: String,
        /// Kill it first if running.
        force: bool,
    },
    /// `runc state ID`
    State {
        /// Container id.
        id: String,
    },
}

impl Command {
    /// argv after the runc binary: global options, subcommand, its options, operands.
    pub fn argv(&self, global: &Global) -> Vec<String> {
        let mut argv = Vec::new();
        global.render(&mut argv);
        match self {
            Command::Create {
                id,
                bundle,
                pid_file,
                console_socket,
            } => {
                argv.extend([
                    "create".into(),
                    "--bundle".into(),
                    bundle.display().to_string(),
                ]);
                if let Some(p) = pid_file {
                    argv.extend(["--pid-file".into(), p.display().to_string()]);
                }
                if let Some(s) = console_socket {
                    argv.extend(["--console-socket".into(), s.display().to_string()]);
                }
                argv.push(id.clone());
            }
            Command::Start { id } => argv.extend(["start".into(), id.clone()]),
            Command::Kill { id, signal, all } => {
                argv.push("kill".into());
                if *all {
                    argv.push("--all".into());
                }
                argv.extend([id.clone(), signal.to_string()]);
            }
            Command::Delete { id, force } => {
                argv.push("delete".into());
                if *force {
                    argv.push("--force".into());
                }
                argv.push(id.clone());
            }
            Command::State { id } => argv.extend(["state".into(), id.clone()]),
        }
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_create_with_globals() {
        let g = Global::new().root("/run/berth/runc").log_format_json();
        let argv = Command::Create {
            id: "c1".into(),
            bundle: "/b".into(),
            pid_file: Some("/b/init.pid".into()),
            console_socket: None,
        }
        .argv(&g);
        assert_eq!(
            argv,
            [
                "--root",
                "/run/berth/runc",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/b/init.pid",
                "c1"
            ]
        );
    }

    #[test]
    fn renders_kill_and_delete() {
        let g = Global::new();
        let kill = Command::Kill {
            id: "c".into(),
            signal: 9,
            all: true,
        }
        .argv(&g);
        assert_eq!(kill, ["kill", "--all", "c", "9"]);
        let del = Command::Delete {
            id: "c".into(),
            force: true,
        }
        .argv(&g);
        assert_eq!(del, ["delete", "--force", "c"]);
    }
}
