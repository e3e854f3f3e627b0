//! containerd's error classes and their one mapping to and from gRPC status codes.
//!
//! Clients branch on these codes (`ctr` retries on `Unavailable`, treats `AlreadyExists` as
//! success when re-pulling, …), so every Berth crate reports failures as a [`Kind`] plus a
//! message, and only this module turns that into a [`tonic::Status`].

use std::fmt;

/// The classes of failure containerd distinguishes (`errdefs/errors.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Something unexpected; maps to `Unknown`.
    Unknown,
    /// The request is malformed or names something invalid.
    InvalidArgument,
    /// The object does not exist.
    NotFound,
    /// The object already exists.
    AlreadyExists,
    /// The object is not in the state the operation needs.
    FailedPrecondition,
    /// The object or resource is busy or locked; try again later.
    Unavailable,
    /// The operation is not supported by this implementation.
    NotImplemented,
    /// The operation was cancelled.
    Cancelled,
    /// A deadline passed.
    DeadlineExceeded,
    /// A read or write went beyond the end of an object.
    OutOfRange,
    /// Data was lost or corrupted.
    DataLoss,
    /// The caller may not do this.
    PermissionDenied,
    /// A limit was reached (disk space, size).
    ResourceExhausted,
    /// An internal invariant failed.
    Internal,
}

impl Kind {
    /// The gRPC code containerd uses for this class.
    pub fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Kind::Unknown => Code::Unknown,
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::NotFound => Code::NotFound,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::Unavailable => Code::Unavailable,
            Kind::NotImplemented => Code::Unimplemented,
            Kind::Cancelled => Code::Cancelled,
            Kind::DeadlineExceeded => Code::DeadlineExceeded,
            Kind::OutOfRange => Code::OutOfRange,
            Kind::DataLoss => Code::DataLoss,
            Kind::PermissionDenied => Code::PermissionDenied,
            Kind::ResourceExhausted => Code::ResourceExhausted,
            Kind::Internal => Code::Internal,
        }
    }

    /// The class a gRPC code stands for (the inverse of [`Kind::code`]).
    pub fn from_code(code: tonic::Code) -> Kind {
        use tonic::Code;
        match code {
            Code::InvalidArgument => Kind::InvalidArgument,
            Code::NotFound => Kind::NotFound,
            Code::AlreadyExists => Kind::AlreadyExists,
            Code::FailedPrecondition => Kind::FailedPrecondition,
            Code::Unavailable => Kind::Unavailable,
            Code::Unimplemented => Kind::NotImplemented,
            Code::Cancelled => Kind::Cancelled,
            Code::DeadlineExceeded => Kind::DeadlineExceeded,
            Code::OutOfRange => Kind::OutOfRange,
            Code::DataLoss => Kind::DataLoss,
            Code::PermissionDenied => Kind::PermissionDenied,
            Code::ResourceExhausted => Kind::ResourceExhausted,
            Code::Internal => Kind::Internal,
            _ => Kind::Unknown,
        }
    }

    /// containerd's short description, used as the message suffix (`…: not found`).
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Unknown => "unknown",
            Kind::InvalidArgument => "invalid argument",
            Kind::NotFound => "not found",
            Kind::AlreadyExists => "already exists",
            Kind::FailedPrecondition => "failed precondition",
            Kind::Unavailable => "unavailable",
            Kind::NotImplemented => "not implemented",
            Kind::Cancelled => "cancelled",
            Kind::DeadlineExceeded => "deadline exceeded",
            Kind::OutOfRange => "out of range",
            Kind::DataLoss => "data loss",
            Kind::PermissionDenied => "permission denied",
            Kind::ResourceExhausted => "resource exhausted",
            Kind::Internal => "internal",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failure with its class and a message for people; the currency between Berth's crates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The class clients branch on.
    pub kind: Kind,
    /// What went wrong, with context.
    pub message: String,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// `"<what>: not found"`, containerd's phrasing.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::new(Kind::NotFound, format!("{what}: {}", Kind::NotFound))
    }

    /// `"<what>: already exists"`.
    pub fn already_exists(what: impl fmt::Display) -> Self {
        Error::new(
            Kind::AlreadyExists,
            format!("{what}: {}", Kind::AlreadyExists),
        )
    }

    /// An invalid-argument error with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Kind::InvalidArgument, message)
    }

    /// A failed-precondition error with `message`.
    pub fn precondition(message: impl Into<String>) -> Self {
        Error::new(Kind::FailedPrecondition, message)
    }

    /// An internal error with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Kind::Internal, message)
    }

    /// Prefixes the message with context, keeping the class.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error::new(self.kind, format!("{context}: {}", self.message))
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        tonic::Status::new(err.kind.code(), err.message)
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::new(Kind::from_code(status.code()), status.message().to_string())
    }
}

/// The class of an I/O error: `ENOENT` is NotFound, `EEXIST` AlreadyExists, `ENOSPC`
/// ResourceExhausted, anything else Unknown.
pub fn io_kind(err: &std::io::Error) -> Kind {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => Kind::NotFound,
        ErrorKind::AlreadyExists => Kind::AlreadyExists,
        ErrorKind::PermissionDenied => Kind::PermissionDenied,
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Kind::ResourceExhausted,
        ErrorKind::InvalidInput => Kind::InvalidArgument,
        _ => Kind::Unknown,
    }
}

/// Wraps an I/O error with context, keeping its class.
pub fn io_error(context: impl fmt::Display, err: std::io::Error) -> Error {
    Error::new(io_kind(&err), format!("{context}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_grpc_codes() {
        for kind in [
            Kind::InvalidArgument,
            Kind::NotFound,
            Kind::AlreadyExists,
            Kind::FailedPrecondition,
            Kind::Unavailable,
            Kind::NotImplemented,
            Kind::OutOfRange,
            Kind::DataLoss,
            Kind::ResourceExhausted,
        ] {
            let status: tonic::Status = Error::new(kind, "x").into();
            assert_eq!(Error::from(status).kind, kind);
        }
    }

    #[test]
    fn messages_follow_containerd_phrasing() {
        assert_eq!(
            Error::not_found("content digest sha256:ab").message,
            "content digest sha256:ab: not found"
        );
        let e = Error::invalid("bad").context("filters");
        assert_eq!(e.kind, Kind::InvalidArgument);
        assert_eq!(e.message, "filters: bad");
    }
}
