//! Docker's defaults for a container: capabilities, masked and read-only
//! paths, the standard mounts, the device cgroup allow-list and namespaces.

use oci_spec::runtime::{
    Capability, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType, Mount,
};

/// `PATH` given to a process whose image sets none (Docker's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `RLIMIT_NOFILE` wanted by default (containerd's daemon limit), before
/// clamping to the caller's own hard limit.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Size of the `/dev/shm` tmpfs: Docker's 64 MiB.
pub const SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Docker's default capability set (mask `0xa80425fb`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from unprivileged containers (a null device or empty tmpfs
/// is mounted over them).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in unprivileged containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Namespaces a container gets by default; `network` is left out for
/// host networking.
pub const DEFAULT_NAMESPACES: [LinuxNamespaceType; 5] = [
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
];

/// Character devices (major, minor; `None` = any) every container may use.
const ALLOWED_CHAR_DEVICES: [(i64, Option<i64>); 9] = [
    (1, Some(3)), // null
    (1, Some(5)), // zero
    (1, Some(7)), // full
    (1, Some(8)), // random
    (1, Some(9)), // urandom
    (5, Some(0)), // tty
    (5, Some(1)), // console
    (5, Some(2)), // ptmx
    (136, None),  // pts/*
];

/// The namespaces to create, without `network` when `host_network`.
pub fn namespaces(host_network: bool) -> Vec<LinuxNamespace> {
    DEFAULT_NAMESPACES
        .iter()
        .filter(|t| !(host_network && **t == LinuxNamespaceType::Network))
        .map(|t| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(*t);
            ns
        })
        .collect()
}

/// Docker's standard mounts; `/sys` and its cgroup mount are read-only
/// unless `privileged`.
pub fn mounts(privileged: bool) -> Vec<Mount> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_size = format!("size={}k", SHM_SIZE / 1024);
    [
        ("/proc", "proc", "proc", vec!["nosuid", "noexec", "nodev"]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            vec!["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            vec![
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            vec!["nosuid", "noexec", "nodev", sys_mode],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            vec!["nosuid", "noexec", "nodev", sys_mode],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            vec!["nosuid", "noexec", "nodev"],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            vec!["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ]
    .into_iter()
    .map(|(destination, typ, source, options)| {
        let mut m = Mount::default();
        m.set_destination(destination.into());
        m.set_typ(Some(typ.to_string()));
        m.set_source(Some(source.into()));
        m.set_options(Some(options.into_iter().map(String::from).collect()));
        m
    })
    .collect()
}

/// The device cgroup rules: deny all, then allow the standard character
/// devices and `mknod` of any device; a privileged container may use all.
pub fn device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    if privileged {
        return vec![device_rule(true, None, None, None, "rwm")];
    }
    let mut rules = vec![device_rule(false, None, None, None, "rwm")];
    rules.extend(
        [LinuxDeviceType::C, LinuxDeviceType::B]
            .into_iter()
            .map(|t| device_rule(true, Some(t), None, None, "m")),
    );
    rules.extend(ALLOWED_CHAR_DEVICES.iter().map(|(major, minor)| {
        device_rule(true, Some(LinuxDeviceType::C), Some(*major), *minor, "rwm")
    }));
    rules
}

/// One device cgroup rule; `None` type means all devices (`a`).
fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ.or(Some(LinuxDeviceType::A)));
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_string()));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_network_drops_the_network_namespace() {
        assert_eq!(namespaces(false).len(), 5);
        let host = namespaces(true);
        assert_eq!(host.len(), 4);
        assert!(host.iter().all(|n| n.typ() != LinuxNamespaceType::Network));
    }

    #[test]
    fn sys_is_read_only_unless_privileged() {
        let opts = |privileged: bool, dest: &str| {
            mounts(privileged)
                .into_iter()
                .find(|m| m.destination().to_str() == Some(dest))
                .and_then(|m| m.options().clone())
                .unwrap()
        };
        assert!(opts(false, "/sys").contains(&"ro".to_string()));
        assert!(opts(true, "/sys").contains(&"rw".to_string()));
        assert!(opts(false, "/dev/shm").contains(&"size=65536k".to_string()));
    }

    #[test]
    fn device_rules_render_like_docker() {
        let rules: Vec<String> = device_rules(false).iter().map(|r| r.to_string()).collect();
        assert_eq!(rules[0], "a *:* rwm");
        assert!(!device_rules(false)[0].allow());
        assert!(rules.contains(&"c *:* m".to_string()));
        assert!(rules.contains(&"b *:* m".to_string()));
        assert!(rules.contains(&"c 1:3 rwm".to_string()));
        assert!(rules.contains(&"c 136:* rwm".to_string()));
        let privileged = device_rules(true);
        assert_eq!(privileged.len(), 1);
        assert!(privileged[0].allow());
    }
}
