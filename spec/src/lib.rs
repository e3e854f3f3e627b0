//! OCI runtime spec building (work in progress).
