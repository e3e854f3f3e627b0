//! # berth-spec: the OCI runtime spec of a Berth container
//!
//! Every front door of Berth — `berthctl run`, the Docker facade, the CRI
//! adapter — ends up handing runc a `config.json`. This crate is the one
//! place that writes it, so that a container gets the same safe defaults
//! whichever client asked for it.
//!
//! [`SpecBuilder::new`] starts from what Docker gives a container: its 14
//! default capabilities, masked and read-only `/proc` and `/sys` paths, the
//! standard `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`
//! and cgroup mounts, a deny-by-default device cgroup, private pid, ipc,
//! uts, mount and network namespaces, and Docker's default seccomp profile.
//! Options then layer on top: the image config (entrypoint, cmd, env,
//! working dir, user — merged by Docker's rules), resources, capabilities,
//! bind mounts, `--privileged` and so on. [`SpecBuilder::build`] validates
//! everything at once and returns an [`oci_spec::runtime::Spec`].
//!
//! Three things depend on the machine rather than the request, and are
//! resolved at build time:
//!
//! - **Users.** Names in `user[:group]` are looked up in the container's
//!   own `/etc/passwd` and `/etc/group`, opened with `openat2` and
//!   `RESOLVE_IN_ROOT` so an image's symlinks cannot point the lookup at the
//!   host's files.
//! - **Limits.** rlimits are clamped to the calling process's own hard
//!   limits, and `oom_score_adj` is never set below the caller's own value:
//!   without `CAP_SYS_RESOURCE`, runc would fail with `EPERM` otherwise.
//! - **Seccomp and capabilities.** The profile's conditional rules (e.g.
//!   `mount` with `CAP_SYS_ADMIN`, `clone` without namespace flags
//!   otherwise) follow the final capability set; the architecture list
//!   follows the build target.
//!
//! [`to_json`] and [`SPEC_TYPE_URL`] give the spec the form containerd
//! stores it in: JSON bytes inside an `Any`.
#![deny(missing_docs)]

mod assemble;
mod builder;
mod capabilities;
mod defaults;
mod env;
mod error;
mod image;
mod json;
mod limits;
mod mounts;
mod resources;
mod seccomp;
mod user;

pub use assemble::ROOTFS;
pub use builder::SpecBuilder;
pub use capabilities::{all as all_capabilities, parse as parse_capability};
pub use defaults::{
    DEFAULT_CAPABILITIES, DEFAULT_NOFILE, DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS,
};
pub use error::SpecError;
pub use image::ImageProcess;
pub use json::{SPEC_TYPE_URL, from_json, to_json};
pub use limits::{clamp_oom_score_adj, clamp_to_own_limit, own_hard_limit, own_oom_score_adj};
pub use mounts::BindMount;
pub use seccomp::default_profile as default_seccomp_profile;
pub use user::{ResolvedUser, resolve as resolve_user};
