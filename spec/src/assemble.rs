//! [`SpecBuilder::build`]: validates the recorded options and assembles the
//! spec, section by section.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, Linux, LinuxCapabilities, PosixRlimit, PosixRlimitType, Process, Root, Spec, User,
    VERSION,
};

use crate::builder::SpecBuilder;
use crate::defaults::{self, DEFAULT_CAPABILITIES, DEFAULT_NOFILE};
use crate::user::{ResolvedUser, resolve};
use crate::{SpecError, capabilities, env, image, limits, mounts, seccomp};

/// The bundle-relative root filesystem path containerd uses.
pub const ROOTFS: &str = "rootfs";

/// containerd's limit on identifier length.
const MAX_ID_LEN: usize = 76;

/// Linux's `HOST_NAME_MAX`.
const MAX_HOSTNAME_LEN: usize = 64;

/// Length of Docker's default hostname (a short container id).
const DEFAULT_HOSTNAME_LEN: usize = 12;

impl SpecBuilder {
    /// Validates every option and produces the spec.
    ///
    /// Reads the rootfs's `/etc/passwd` and `/etc/group` (see
    /// [`rootfs_dir`](Self::rootfs_dir)), this process's rlimits and
    /// `/proc/self/oom_score_adj`.
    pub fn build(self) -> Result<Spec, SpecError> {
        check_identifier("namespace", &self.namespace)?;
        check_identifier("id", &self.id)?;
        let hostname = self
            .hostname
            .clone()
            .unwrap_or_else(|| self.id.chars().take(DEFAULT_HOSTNAME_LEN).collect());
        if hostname.is_empty() || hostname.len() > MAX_HOSTNAME_LEN {
            return Err(SpecError::invalid(
                "hostname",
                format!("{hostname:?} must be 1 to {MAX_HOSTNAME_LEN} bytes"),
            ));
        }
        let user_str = self.user.as_deref().or(self.image.user.as_deref());
        let user = resolve(user_str.unwrap_or(""), self.rootfs_dir.as_deref())?;
        let caps = if self.privileged {
            capabilities::all()
        } else {
            capabilities::tweak(&DEFAULT_CAPABILITIES, &self.cap_add, &self.cap_drop)?
        };

        let mut spec = Spec::default();
        spec.set_version(VERSION.to_string());
        spec.set_hostname(Some(hostname.clone()));
        spec.set_process(Some(self.process(&hostname, &user, &caps)?));
        let mut root = Root::default();
        root.set_path(ROOTFS.into());
        root.set_readonly(Some(self.readonly_rootfs));
        spec.set_root(Some(root));
        spec.set_mounts(Some(mounts::merge(
            defaults::mounts(self.privileged),
            &self.mounts,
        )?));
        spec.set_annotations((!self.annotations.is_empty()).then(|| self.annotations.clone()));
        spec.set_linux(Some(self.linux(&caps)?));
        Ok(spec)
    }

    /// The `process` section.
    fn process(
        &self,
        hostname: &str,
        user: &ResolvedUser,
        caps: &[Capability],
    ) -> Result<Process, SpecError> {
        let args = image::args(
            &self.image,
            self.entrypoint.as_deref(),
            self.args.as_deref(),
        );
        if args.is_empty() {
            return Err(SpecError::NoCommand);
        }
        for entry in &self.env {
            if entry.starts_with('=') || entry.is_empty() || entry.contains('\0') {
                return Err(SpecError::invalid("env", format!("bad entry {entry:?}")));
            }
        }
        let cwd = self
            .cwd
            .as_deref()
            .or(self.image.working_dir.as_deref())
            .unwrap_or("/");
        if !cwd.starts_with('/') {
            return Err(SpecError::invalid(
                "cwd",
                format!("{cwd:?} must be an absolute path"),
            ));
        }

        let mut process = Process::default();
        process.set_terminal(Some(self.terminal));
        process.set_args(Some(args));
        process.set_env(Some(env::process_env(
            &self.image.env,
            &self.env,
            hostname,
            self.terminal,
        )));
        process.set_cwd(cwd.into());
        let mut oci_user = User::default();
        oci_user.set_uid(user.uid);
        oci_user.set_gid(user.gid);
        oci_user.set_additional_gids(Some(user.additional_gids.clone()));
        process.set_user(oci_user);
        process.set_capabilities(Some(capability_sets(caps, user.uid)));
        process.set_rlimits(Some(self.rlimits()?));
        process.set_no_new_privileges(Some(self.no_new_privileges));
        let oom = match self.oom_score_adj {
            Some(adj) => Some(limits::clamp_oom_score_adj(
                adj,
                limits::own_oom_score_adj()?,
            )?),
            None => None,
        };
        process.set_oom_score_adj(oom);
        Ok(process)
    }

    /// Default `RLIMIT_NOFILE` plus the caller's ulimits, each clamped to
    /// this process's hard limit.
    fn rlimits(&self) -> Result<Vec<PosixRlimit>, SpecError> {
        let mut wanted = vec![(
            PosixRlimitType::RlimitNofile,
            DEFAULT_NOFILE,
            DEFAULT_NOFILE,
        )];
        for &(typ, soft, hard) in &self.ulimits {
            if soft > hard {
                return Err(SpecError::invalid(
                    "ulimit",
                    format!("{typ}: soft limit {soft} is above hard limit {hard}"),
                ));
            }
            wanted.retain(|(t, _, _)| *t != typ);
            wanted.push((typ, soft, hard));
        }
        Ok(wanted
            .into_iter()
            .map(|(typ, soft, hard)| limits::clamp_to_own_limit(typ, soft, hard))
            .collect())
    }

    /// The `linux` section.
    fn linux(&self, caps: &[Capability]) -> Result<Linux, SpecError> {
        let mut linux = Linux::default();
        linux.set_namespaces(Some(defaults::namespaces(self.host_network)));
        linux.set_resources(Some(self.resources.to_oci(self.privileged)?));
        linux.set_cgroups_path(Some(format!("/{}/{}", self.namespace, self.id).into()));
        let confined = !self.privileged;
        let paths = |list: &[&str]| confined.then(|| list.iter().map(|p| p.to_string()).collect());
        linux.set_masked_paths(paths(&defaults::MASKED_PATHS));
        linux.set_readonly_paths(paths(&defaults::READONLY_PATHS));
        linux.set_seccomp(
            (confined && !self.seccomp_unconfined).then(|| seccomp::default_profile(caps)),
        );
        Ok(linux)
    }
}

/// Capability sets as current Docker sets them: all three of bounding,
/// effective and permitted for root; only bounding for other users (whose
/// effective set `execve` would clear anyway). Never inheritable or ambient.
fn capability_sets(caps: &[Capability], uid: u32) -> LinuxCapabilities {
    let set: HashSet<Capability> = caps.iter().copied().collect();
    let mut sets = LinuxCapabilities::default();
    sets.set_bounding(Some(set.clone()));
    let (effective, permitted) = if uid == 0 {
        (Some(set.clone()), Some(set))
    } else {
        (None, None)
    };
    sets.set_effective(effective);
    sets.set_permitted(permitted);
    sets.set_inheritable(None);
    sets.set_ambient(None);
    sets
}

/// Checks a containerd identifier: alphanumerics separated by single `.`,
/// `_` or `-`, at most 76 characters. Keeps ids out of path tricks in the
/// cgroups path.
fn check_identifier(what: &'static str, id: &str) -> Result<(), SpecError> {
    let bad = |reason: &str| Err(SpecError::invalid(what, format!("{id:?}: {reason}")));
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return bad("must be 1 to 76 characters");
    }
    let mut prev_sep = true;
    for c in id.chars() {
        let sep = matches!(c, '.' | '_' | '-');
        if !(c.is_ascii_alphanumeric() || sep) || (sep && prev_sep) {
            return bad("use letters and digits joined by single '.', '_' or '-'");
        }
        prev_sep = sep;
    }
    if prev_sep {
        return bad("must end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["default", "k8s.io", "moby", "a", "web-1_x.y"] {
            assert!(check_identifier("id", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "-a",
            "a-",
            "a..b",
            "a b",
            &"x".repeat(77),
        ] {
            assert!(check_identifier("id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_root_gets_only_a_bounding_set() {
        let root = capability_sets(&DEFAULT_CAPABILITIES, 0);
        assert_eq!(root.effective().as_ref().unwrap().len(), 14);
        assert_eq!(root.permitted(), root.bounding());
        let user = capability_sets(&DEFAULT_CAPABILITIES, 1000);
        assert_eq!(user.bounding().as_ref().unwrap().len(), 14);
        assert!(user.effective().is_none() && user.permitted().is_none());
        assert!(user.inheritable().is_none() && user.ambient().is_none());
    }
}
