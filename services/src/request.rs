//! What containerd clients send in request headers: the namespace (`containerd-namespace`)
//! and an optional lease (`containerd-lease`).

use berth_proto::errdefs::{Error, Kind};

use crate::identifiers;

/// The gRPC header naming the request's namespace.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The gRPC header naming the lease that should hold what the request creates.
pub const LEASE_HEADER: &str = "containerd-lease";

/// The validated namespace of a request; FailedPrecondition when absent, as containerd says.
pub fn namespace<T>(req: &tonic::Request<T>) -> Result<String, Error> {
    let ns = header(req, NAMESPACE_HEADER).ok_or_else(|| {
        Error::new(
            Kind::FailedPrecondition,
            "namespace is required: failed precondition",
        )
    })?;
    identifiers::validate(&ns).map_err(|e| e.context("namespace"))?;
    Ok(ns)
}

/// The lease a request runs under, if any.
pub fn lease<T>(req: &tonic::Request<T>) -> Option<String> {
    header(req, LEASE_HEADER).filter(|l| !l.is_empty())
}

fn header<T>(req: &tonic::Request<T>, name: &str) -> Option<String> {
    req.metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The namespace and lease of a request, taken before its body is consumed.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The request's namespace.
    pub namespace: String,
    /// The lease that holds what the request creates.
    pub lease: Option<String>,
}

impl Scope {
    /// Reads both headers.
    pub fn of<T>(req: &tonic::Request<T>) -> Result<Scope, Error> {
        Ok(Scope {
            namespace: namespace(req)?,
            lease: lease(req),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_required_and_validated() {
        let req = tonic::Request::new(());
        assert_eq!(namespace(&req).unwrap_err().kind, Kind::FailedPrecondition);
        let mut req = tonic::Request::new(());
        req.metadata_mut()
            .insert(NAMESPACE_HEADER, "../etc".parse().unwrap());
        assert_eq!(namespace(&req).unwrap_err().kind, Kind::InvalidArgument);
        let mut req = tonic::Request::new(());
        req.metadata_mut()
            .insert(NAMESPACE_HEADER, "default".parse().unwrap());
        req.metadata_mut()
            .insert(LEASE_HEADER, "l1".parse().unwrap());
        let scope = Scope::of(&req).unwrap();
        assert_eq!(scope.namespace, "default");
        assert_eq!(scope.lease.as_deref(), Some("l1"));
    }
}
