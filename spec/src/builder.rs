//! [`SpecBuilder`]: the options a caller may set, one method each.
//!
//! Setters only record; [`SpecBuilder::build`] (in `assemble.rs`) validates
//! everything and produces the spec, so a bad value surfaces as one
//! [`SpecError`](crate::SpecError) at the end of the chain.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::PosixRlimitType;

use crate::image::ImageProcess;
use crate::mounts::BindMount;
use crate::resources::Resources;

/// Builds the OCI runtime spec of one container, starting from Docker's
/// defaults.
///
/// ```
/// use berth_spec::SpecBuilder;
///
/// let spec = SpecBuilder::new("default", "web1")
///     .args(["/bin/echo", "hi"])
///     .user("1000:1000")
///     .memory(64 << 20)
///     .cap_add("NET_ADMIN")
///     .build()
///     .unwrap();
/// assert_eq!(spec.hostname().as_deref(), Some("web1"));
/// ```
#[derive(Clone, Debug)]
pub struct SpecBuilder {
    pub(crate) namespace: String,
    pub(crate) id: String,
    pub(crate) image: ImageProcess,
    pub(crate) rootfs_dir: Option<PathBuf>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) terminal: bool,
    pub(crate) hostname: Option<String>,
    pub(crate) host_network: bool,
    pub(crate) readonly_rootfs: bool,
    pub(crate) no_new_privileges: bool,
    pub(crate) privileged: bool,
    pub(crate) seccomp_unconfined: bool,
    pub(crate) cap_add: Vec<String>,
    pub(crate) cap_drop: Vec<String>,
    pub(crate) mounts: Vec<BindMount>,
    pub(crate) annotations: HashMap<String, String>,
    pub(crate) oom_score_adj: Option<i32>,
    pub(crate) resources: Resources,
    pub(crate) ulimits: Vec<(PosixRlimitType, u64, u64)>,
}

impl SpecBuilder {
    /// Starts a spec for container `id` in containerd namespace `namespace`
    /// (both become the cgroups path `/<namespace>/<id>`).
    pub fn new(namespace: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            id: id.into(),
            image: ImageProcess::default(),
            rootfs_dir: None,
            entrypoint: None,
            args: None,
            env: Vec::new(),
            cwd: None,
            user: None,
            terminal: false,
            hostname: None,
            host_network: false,
            readonly_rootfs: false,
            no_new_privileges: false,
            privileged: false,
            seccomp_unconfined: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            mounts: Vec::new(),
            annotations: HashMap::new(),
            oom_score_adj: None,
            resources: Resources::default(),
            ulimits: Vec::new(),
        }
    }

    /// Takes entrypoint, cmd, env, working dir and user from an image config.
    pub fn image_config(mut self, config: &ImageConfiguration) -> Self {
        self.image = ImageProcess::from(config);
        self
    }

    /// Host path of the container's root filesystem, where user and group
    /// names are looked up (`etc/passwd`, `etc/group`). The spec's own
    /// `root.path` stays the bundle-relative `rootfs`.
    pub fn rootfs_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.rootfs_dir = Some(path.into());
        self
    }

    /// Replaces the image's entrypoint; unless [`args`](Self::args) is also
    /// given, the image's cmd is dropped too (Docker's `--entrypoint`).
    pub fn entrypoint<I, S>(mut self, entrypoint: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// The command, replacing the image's cmd (an empty list keeps it).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets one environment variable, overriding the image's.
    pub fn env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.env
            .push(format!("{}={}", key.as_ref(), value.as_ref()));
        self
    }

    /// Adds `KEY=value` entries (a bare `KEY` unsets it), overriding the image's.
    pub fn envs<I, S>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env.extend(entries.into_iter().map(Into::into));
        self
    }

    /// Working directory (absolute), overriding the image's.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// `user[:group]` to run as, overriding the image's.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Allocates a terminal for the process (and sets `TERM=xterm`).
    pub fn terminal(mut self, terminal: bool) -> Self {
        self.terminal = terminal;
        self
    }

    /// Hostname (default: the first 12 characters of the id).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Shares the host's network namespace.
    pub fn host_network(mut self) -> Self {
        self.host_network = true;
        self
    }

    /// Mounts the root filesystem read-only.
    pub fn readonly_rootfs(mut self) -> Self {
        self.readonly_rootfs = true;
        self
    }

    /// Sets `no_new_privileges`, so setuid binaries cannot gain privileges.
    pub fn no_new_privileges(mut self) -> Self {
        self.no_new_privileges = true;
        self
    }

    /// Docker's `--privileged`: every capability, no seccomp, no masked or
    /// read-only paths, all devices allowed, `/sys` read-write.
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Runs without a seccomp filter.
    pub fn seccomp_unconfined(mut self) -> Self {
        self.seccomp_unconfined = true;
        self
    }

    /// Adds a capability (any case, `CAP_` optional, or `ALL`).
    pub fn cap_add(mut self, cap: impl Into<String>) -> Self {
        self.cap_add.push(cap.into());
        self
    }

    /// Drops a capability (any case, `CAP_` optional, or `ALL`).
    pub fn cap_drop(mut self, cap: impl Into<String>) -> Self {
        self.cap_drop.push(cap.into());
        self
    }

    /// Adds a bind mount; it replaces a default mount at the same destination.
    pub fn mount(mut self, mount: BindMount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Adds several bind mounts.
    pub fn mounts(mut self, mounts: impl IntoIterator<Item = BindMount>) -> Self {
        self.mounts.extend(mounts);
        self
    }

    /// Sets an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// OOM score adjustment (-1000..=1000), raised at build time to this
    /// process's own value, which an unprivileged caller cannot go below.
    pub fn oom_score_adj(mut self, adj: i32) -> Self {
        self.oom_score_adj = Some(adj);
        self
    }

    /// Memory limit in bytes (at least 6 MiB). Swap is left to the runtime
    /// unless [`memory_swap`](Self::memory_swap) is given.
    pub fn memory(mut self, bytes: i64) -> Self {
        self.resources.memory = Some(bytes);
        self
    }

    /// Memory-plus-swap limit in bytes (`-1`: unlimited swap); Docker's
    /// `--memory-swap`, which defaults there to twice the memory limit.
    pub fn memory_swap(mut self, bytes: i64) -> Self {
        self.resources.memory_swap = Some(bytes);
        self
    }

    /// Relative CPU weight (2..=262144).
    pub fn cpu_shares(mut self, shares: u64) -> Self {
        self.resources.cpu_shares = Some(shares);
        self
    }

    /// CPU time as a number of CPUs: quota = `cpus` × 100000 µs per 100000 µs.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.resources.cpus = Some(cpus);
        self
    }

    /// Maximum number of tasks (`-1`: unlimited).
    pub fn pids_limit(mut self, limit: i64) -> Self {
        self.resources.pids_limit = Some(limit);
        self
    }

    /// An rlimit (Docker's `--ulimit`), replacing the default for that type;
    /// clamped to this process's own hard limit at build time.
    pub fn ulimit(mut self, typ: PosixRlimitType, soft: u64, hard: u64) -> Self {
        self.ulimits.retain(|(t, _, _)| *t != typ);
        self.ulimits.push((typ, soft, hard));
        self
    }
}
