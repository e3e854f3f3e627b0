//! The one error type of this crate.

use std::path::PathBuf;

/// Why a spec could not be built or (de)serialized.
///
/// Every variant except [`SpecError::Io`] and [`SpecError::Json`] is a problem
/// with the caller's input (containerd's `InvalidArgument`).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A capability name that Linux does not know.
    #[error("unknown capability {0:?} (expected e.g. \"NET_ADMIN\", \"CAP_SYS_TIME\" or \"ALL\")")]
    UnknownCapability(String),

    /// A capability this process lacks, so runc could not grant it.
    #[error(
        "capability CAP_{0} is not in this process's bounding set, so containers cannot get it"
    )]
    UnavailableCapability(String),

    /// A user string that is not `user[:group]`.
    #[error("invalid user {user:?}: {reason}")]
    InvalidUser {
        /// The user string as given.
        user: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A user name absent from the rootfs's `/etc/passwd`.
    #[error("no user named {name:?} in the container's /etc/passwd")]
    UnknownUser {
        /// The name looked up.
        name: String,
    },

    /// A group name absent from the rootfs's `/etc/group`.
    #[error("no group named {name:?} in the container's /etc/group")]
    UnknownGroup {
        /// The name looked up.
        name: String,
    },

    /// A user or group name was given but no rootfs to look it up in.
    #[error("cannot resolve {name:?}: names need the container rootfs, and none was given")]
    NoRootfs {
        /// The name that needed a lookup.
        name: String,
    },

    /// An option value outside its allowed range.
    #[error("invalid {option}: {reason}")]
    InvalidValue {
        /// The option, e.g. `memory`.
        option: &'static str,
        /// What is wrong with the value.
        reason: String,
    },

    /// A mount destination that is relative or climbs with `..`.
    #[error("invalid mount destination {destination:?}: {reason}")]
    InvalidMount {
        /// The destination as given.
        destination: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Neither the image nor the caller gave a command to run.
    #[error("no command: the image has no entrypoint or cmd and none was given")]
    NoCommand,

    /// Reading a file (e.g. the rootfs's `/etc/passwd`) failed.
    #[error("{what} {path:?}: {source}")]
    Io {
        /// What was being done, e.g. `reading`.
        what: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Encoding or decoding the spec as JSON failed.
    #[error("spec JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl SpecError {
    /// Shorthand for [`SpecError::InvalidValue`].
    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            option,
            reason: reason.into(),
        }
    }
}
