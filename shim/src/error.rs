//! The shim's error vocabulary and its mapping onto ttrpc status codes.
//!
//! containerd branches on the status code (NotFound, FailedPrecondition, …), so every
//! failure names its class here and [`From<Error> for ttrpc::Error`] is the only place that
//! turns a class into a code.

use containerd_shim_protos::ttrpc::{self, Code};

/// A task operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container or process does not exist (or has already finished).
    #[error("{0}")]
    NotFound(String),
    /// The container or process already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The process is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation is not supported by this shim.
    #[error("{0}")]
    Unimplemented(String),
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// runc refused or failed.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// An [`Error::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The ttrpc status code containerd maps back to its error class.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Io { .. } | Error::Runtime(_) => Code::UNKNOWN,
        }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

/// Result of a task operation.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_codes() {
        let e: ttrpc::Error = Error::NotFound("container not created".into()).into();
        match e {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.code(), Code::NOT_FOUND);
                assert_eq!(s.message(), "container not created");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            Error::FailedPrecondition(String::new()).code(),
            Code::FAILED_PRECONDITION
        );
    }
}
