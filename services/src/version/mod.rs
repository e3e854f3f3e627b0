//! `containerd.services.version.v1.Version`.
//!
//! Clients gate features on the containerd version they talk to, so berthd reports the
//! containerd API level it implements with its own version as build metadata
//! (`1.7.0+berth.0.1.0`); the revision names Berth.

use berth_proto::{server::version::v1::version_server, services::v1::VersionResponse};
use tonic::{Request, Response, Status};

/// The version berthd reports: the containerd release whose API it implements, with Berth's
/// own version as semver build metadata.
pub const VERSION: &str = concat!("1.7.0+berth.", env!("CARGO_PKG_VERSION"));

/// The version service.
pub struct Service;

#[tonic::async_trait]
impl version_server::Version for Service {
    async fn version(&self, _req: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: VERSION.to_string(),
            revision: format!("berth-{}", env!("CARGO_PKG_VERSION")),
        }))
    }
}
