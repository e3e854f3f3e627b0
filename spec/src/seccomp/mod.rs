//! Docker's default seccomp profile, built for a given capability set.
//!
//! The profile is an allow-list: anything not listed fails with `EPERM`.
//! [`syscalls`] holds the lists as data; [`default_profile`] walks them and
//! keeps the rules whose capability and architecture conditions hold, the
//! way Docker resolves its `includes`/`excludes` filters against the
//! container's bounding set.

mod syscalls;

use oci_spec::runtime::{
    Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use syscalls::{ALWAYS, ARCH_MAP, RULES, allow};

/// What a matching rule does.
#[derive(Clone, Copy)]
enum Action {
    /// Let the call through.
    Allow,
    /// Fail the call with this errno.
    Errno(u32),
}

/// A condition on one syscall argument.
#[derive(Clone, Copy)]
struct Arg {
    index: usize,
    value: u64,
    value_two: u64,
    op: LinuxSeccompOperator,
}

/// Capabilities and architectures a rule is conditioned on.
#[derive(Clone, Copy)]
struct Filter {
    caps: &'static [Capability],
    arches: &'static [&'static str],
}

impl Filter {
    /// An `includes` that always holds.
    const ANY: Self = Self {
        caps: &[],
        arches: &[],
    };
    /// An `excludes` that never holds.
    const NONE: Self = Self::ANY;
}

/// One entry of the profile.
#[derive(Clone, Copy)]
struct Rule {
    names: &'static [&'static str],
    action: Action,
    args: &'static [Arg],
    /// Kept only if the container holds all these caps and runs on one of
    /// these arches (an empty list does not restrict).
    includes: Filter,
    /// Dropped if the container holds any of these caps or runs on one of
    /// these arches.
    excludes: Filter,
}

impl Rule {
    /// Whether the rule applies to a container with `caps` on `arch`.
    fn applies(&self, caps: &[Capability], arch: &str) -> bool {
        let included = self.includes.caps.iter().all(|c| caps.contains(c))
            && (self.includes.arches.is_empty() || self.includes.arches.contains(&arch));
        let excluded = self.excludes.caps.iter().any(|c| caps.contains(c))
            || self.excludes.arches.contains(&arch);
        included && !excluded
    }

    /// The rule in OCI form.
    fn to_syscall(self) -> LinuxSyscall {
        let mut sc = LinuxSyscall::default();
        sc.set_names(self.names.iter().map(|n| n.to_string()).collect());
        match self.action {
            Action::Allow => sc.set_action(LinuxSeccompAction::ScmpActAllow),
            Action::Errno(errno) => {
                sc.set_action(LinuxSeccompAction::ScmpActErrno);
                sc.set_errno_ret(Some(errno))
            }
        };
        if !self.args.is_empty() {
            sc.set_args(Some(self.args.iter().copied().map(Arg::to_oci).collect()));
        }
        sc
    }
}

impl Arg {
    /// The condition in OCI form.
    fn to_oci(self) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(self.index)
            .value(self.value)
            .value_two(self.value_two)
            .op(self.op)
            .build()
            .expect("every field is set")
    }
}

/// Docker's default profile for a container whose bounding set is `caps`,
/// on the architecture this binary was built for.
pub fn default_profile(caps: &[Capability]) -> LinuxSeccomp {
    profile_for_arch(caps, std::env::consts::ARCH)
}

/// [`default_profile`] for an explicit architecture
/// (`std::env::consts::ARCH` naming).
fn profile_for_arch(caps: &[Capability], arch: &str) -> LinuxSeccomp {
    let syscalls = std::iter::once(allow(ALWAYS))
        .chain(RULES.iter().copied().filter(|r| r.applies(caps, arch)))
        .map(Rule::to_syscall)
        .collect();
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActErrno);
    seccomp.set_default_errno_ret(Some(libc::EPERM as u32));
    if let Some((_, arches)) = ARCH_MAP.iter().find(|(a, _)| *a == arch) {
        seccomp.set_architectures(Some(arches.to_vec()));
    }
    seccomp.set_syscalls(Some(syscalls));
    seccomp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::DEFAULT_CAPABILITIES;
    use oci_spec::runtime::Arch;

    /// Rules naming `name`, in order.
    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_action_is_eperm_on_x86_arches() {
        let p = profile_for_arch(&DEFAULT_CAPABILITIES, "x86_64");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let arm = profile_for_arch(&DEFAULT_CAPABILITIES, "aarch64");
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
    }

    #[test]
    fn default_caps_restrict_clone_and_deny_mount() {
        let p = profile_for_arch(&DEFAULT_CAPABILITIES, "x86_64");
        assert!(rules_for(&p, "mount").is_empty());
        assert!(rules_for(&p, "unshare").is_empty());
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let args = clone[0].args().as_ref().unwrap();
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), 0x7e02_0000);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
        assert!(!rules_for(&p, "arch_prctl").is_empty());
        assert!(rules_for(&p, "set_tls").is_empty());
        assert!(
            !rules_for(&p, "chroot").is_empty(),
            "SYS_CHROOT is a default cap"
        );
    }

    #[test]
    fn sys_admin_unlocks_mount_and_plain_clone() {
        let mut caps = DEFAULT_CAPABILITIES.to_vec();
        caps.push(Capability::SysAdmin);
        let p = profile_for_arch(&caps, "x86_64");
        for name in ["mount", "umount2", "unshare", "setns"] {
            assert!(!rules_for(&p, name).is_empty(), "{name}");
        }
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActAllow);
    }

    #[test]
    fn capability_conditional_syscalls() {
        let cases = [
            (Capability::SysPtrace, "kcmp"),
            (Capability::SysModule, "finit_module"),
            (Capability::SysBoot, "reboot"),
            (Capability::SysTime, "clock_settime"),
            (Capability::Syslog, "syslog"),
            (Capability::SysNice, "mbind"),
            (Capability::SysPacct, "acct"),
            (Capability::SysRawio, "iopl"),
        ];
        let base = profile_for_arch(&DEFAULT_CAPABILITIES, "x86_64");
        for (cap, name) in cases {
            assert!(rules_for(&base, name).is_empty(), "{name} without {cap}");
            let mut caps = DEFAULT_CAPABILITIES.to_vec();
            caps.push(cap);
            let p = profile_for_arch(&caps, "x86_64");
            assert!(!rules_for(&p, name).is_empty(), "{name} with {cap}");
        }
    }

    #[test]
    fn personality_values_and_s390_clone() {
        let p = profile_for_arch(&DEFAULT_CAPABILITIES, "x86_64");
        let values: Vec<u64> = rules_for(&p, "personality")
            .iter()
            .map(|s| s.args().as_ref().unwrap()[0].value())
            .collect();
        assert_eq!(values, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
        let s390 = profile_for_arch(&DEFAULT_CAPABILITIES, "s390x");
        let clone = rules_for(&s390, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
    }
}
