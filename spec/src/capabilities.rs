//! Capability names, the full set, and Docker's `--cap-add`/`--cap-drop` rules.

use oci_spec::runtime::Capability;

use crate::SpecError;

/// Every capability with its Linux number (the table index) and its name
/// without the `CAP_` prefix.
const TABLE: [(Capability, &str); 41] = [
    (Capability::Chown, "CHOWN"),
    (Capability::DacOverride, "DAC_OVERRIDE"),
    (Capability::DacReadSearch, "DAC_READ_SEARCH"),
    (Capability::Fowner, "FOWNER"),
    (Capability::Fsetid, "FSETID"),
    (Capability::Kill, "KILL"),
    (Capability::Setgid, "SETGID"),
    (Capability::Setuid, "SETUID"),
    (Capability::Setpcap, "SETPCAP"),
    (Capability::LinuxImmutable, "LINUX_IMMUTABLE"),
    (Capability::NetBindService, "NET_BIND_SERVICE"),
    (Capability::NetBroadcast, "NET_BROADCAST"),
    (Capability::NetAdmin, "NET_ADMIN"),
    (Capability::NetRaw, "NET_RAW"),
    (Capability::IpcLock, "IPC_LOCK"),
    (Capability::IpcOwner, "IPC_OWNER"),
    (Capability::SysModule, "SYS_MODULE"),
    (Capability::SysRawio, "SYS_RAWIO"),
    (Capability::SysChroot, "SYS_CHROOT"),
    (Capability::SysPtrace, "SYS_PTRACE"),
    (Capability::SysPacct, "SYS_PACCT"),
    (Capability::SysAdmin, "SYS_ADMIN"),
    (Capability::SysBoot, "SYS_BOOT"),
    (Capability::SysNice, "SYS_NICE"),
    (Capability::SysResource, "SYS_RESOURCE"),
    (Capability::SysTime, "SYS_TIME"),
    (Capability::SysTtyConfig, "SYS_TTY_CONFIG"),
    (Capability::Mknod, "MKNOD"),
    (Capability::Lease, "LEASE"),
    (Capability::AuditWrite, "AUDIT_WRITE"),
    (Capability::AuditControl, "AUDIT_CONTROL"),
    (Capability::Setfcap, "SETFCAP"),
    (Capability::MacOverride, "MAC_OVERRIDE"),
    (Capability::MacAdmin, "MAC_ADMIN"),
    (Capability::Syslog, "SYSLOG"),
    (Capability::WakeAlarm, "WAKE_ALARM"),
    (Capability::BlockSuspend, "BLOCK_SUSPEND"),
    (Capability::AuditRead, "AUDIT_READ"),
    (Capability::Perfmon, "PERFMON"),
    (Capability::Bpf, "BPF"),
    (Capability::CheckpointRestore, "CHECKPOINT_RESTORE"),
];

/// Where the kernel reports its highest capability number.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// Where this process's bounding set (`CapBnd:`) is reported.
const SELF_STATUS: &str = "/proc/self/status";

/// The Linux number of `cap` (its bit in `/proc/<pid>/status` masks).
pub fn number(cap: Capability) -> u32 {
    TABLE
        .iter()
        .position(|(c, _)| *c == cap)
        .and_then(|i| u32::try_from(i).ok())
        .expect("every Capability variant is in the table")
}

/// Parses one capability name: any case, with or without `CAP_`.
///
/// `ALL` is not a single capability: it is only meaningful to
/// `SpecBuilder::cap_add` and `SpecBuilder::cap_drop`.
pub fn parse(name: &str) -> Result<Capability, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    TABLE
        .iter()
        .find(|(_, n)| *n == bare)
        .map(|(c, _)| *c)
        .ok_or_else(|| SpecError::UnknownCapability(name.to_string()))
}

/// Every capability a container started from this process can hold, in
/// number order: those the running kernel knows (Docker's `--privileged`
/// set) that are also in this process's own bounding set, since runc cannot
/// grant more than it has.
pub fn all() -> Vec<Capability> {
    let last = std::fs::read_to_string(CAP_LAST_CAP)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(TABLE.len() - 1);
    let own = own_bounding_mask();
    TABLE
        .iter()
        .take(last + 1)
        .map(|(c, _)| *c)
        .filter(|c| own & (1 << number(*c)) != 0)
        .collect()
}

/// This process's bounding set as a bit mask (all bits when unreadable).
fn own_bounding_mask() -> u64 {
    std::fs::read_to_string(SELF_STATUS)
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("CapBnd:"))?;
            u64::from_str_radix(line["CapBnd:".len()..].trim(), 16).ok()
        })
        .unwrap_or(u64::MAX)
}

/// Applies Docker's add/drop rules to `base`, returning a set in number order.
///
/// Names are case-insensitive, `CAP_` optional. `ALL` in `add` starts from
/// every capability minus `drop`; otherwise `ALL` in `drop` keeps only `add`;
/// otherwise `base` minus `drop` plus `add`.
pub fn tweak(
    base: &[Capability],
    add: &[String],
    drop: &[String],
) -> Result<Vec<Capability>, SpecError> {
    let (add_all, add) = parse_list(add)?;
    let (drop_all, drop) = parse_list(drop)?;
    let own = own_bounding_mask();
    if let Some(missing) = add.iter().find(|c| own & (1 << number(**c)) == 0) {
        return Err(SpecError::UnavailableCapability(format!("{missing}")));
    }
    let mut caps: Vec<Capability> = if add_all {
        all().into_iter().filter(|c| !drop.contains(c)).collect()
    } else if drop_all {
        add
    } else {
        base.iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    caps.sort_by_key(|c| number(*c));
    caps.dedup();
    Ok(caps)
}

/// Parses a name list, reporting separately whether it held `ALL`.
fn parse_list(names: &[String]) -> Result<(bool, Vec<Capability>), SpecError> {
    let mut all = false;
    let mut caps = Vec::with_capacity(names.len());
    for name in names {
        if name.trim().eq_ignore_ascii_case("ALL") {
            all = true;
        } else {
            caps.push(parse(name)?);
        }
    }
    Ok((all, caps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::DEFAULT_CAPABILITIES;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn table_matches_oci_spec_names() {
        for (cap, name) in TABLE {
            assert_eq!(serde_json::to_value(cap).unwrap(), format!("CAP_{name}"));
        }
    }

    #[test]
    fn parse_accepts_any_case_and_prefix() {
        assert_eq!(parse("net_admin").unwrap(), Capability::NetAdmin);
        assert_eq!(parse("CAP_SYS_ADMIN").unwrap(), Capability::SysAdmin);
        assert_eq!(parse("cap_Kill").unwrap(), Capability::Kill);
        let err = parse("CAP_FLY").unwrap_err();
        assert!(err.to_string().contains("CAP_FLY"), "{err}");
    }

    #[test]
    fn docker_default_mask() {
        let mask: u64 = DEFAULT_CAPABILITIES
            .iter()
            .map(|c| 1u64 << number(*c))
            .sum();
        assert_eq!(mask, 0xa80425fb);
    }

    #[test]
    fn add_and_drop() {
        let caps = tweak(
            &DEFAULT_CAPABILITIES,
            &names(&["sys_admin"]),
            &names(&["CAP_NET_RAW"]),
        )
        .unwrap();
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(!caps.contains(&Capability::NetRaw));
        assert_eq!(caps.len(), DEFAULT_CAPABILITIES.len());
    }

    #[test]
    fn drop_all_keeps_only_added() {
        let caps = tweak(&DEFAULT_CAPABILITIES, &names(&["chown"]), &names(&["all"])).unwrap();
        assert_eq!(caps, vec![Capability::Chown]);
    }

    #[test]
    fn add_all_minus_drops() {
        let caps = tweak(&DEFAULT_CAPABILITIES, &names(&["ALL"]), &names(&["MKNOD"])).unwrap();
        assert_eq!(caps.len(), all().len() - 1);
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(!caps.contains(&Capability::Mknod));
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert!(matches!(
            tweak(&DEFAULT_CAPABILITIES, &names(&["bogus"]), &[]),
            Err(SpecError::UnknownCapability(n)) if n == "bogus"
        ));
    }

    #[test]
    fn all_follows_the_kernel_and_own_bounding_set() {
        let all = all();
        assert_eq!(all[0], Capability::Chown);
        let own = own_bounding_mask();
        assert!(all.iter().all(|c| own & (1 << number(*c)) != 0));
        let kernel_knows = std::fs::read_to_string(CAP_LAST_CAP).unwrap();
        let expected = (0..=kernel_knows.trim().parse::<u32>().unwrap())
            .filter(|n| own & (1 << n) != 0)
            .count();
        assert_eq!(all.len(), expected);
    }

    #[test]
    fn adding_a_capability_this_process_lacks_is_an_error() {
        let own = own_bounding_mask();
        if let Some((cap, name)) = TABLE.iter().find(|(c, _)| own & (1 << number(*c)) == 0) {
            let err = tweak(&DEFAULT_CAPABILITIES, &names(&[name]), &[]).unwrap_err();
            assert!(
                matches!(err, SpecError::UnavailableCapability(_)),
                "{cap}: {err}"
            );
        }
    }
}
