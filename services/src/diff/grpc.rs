//! `containerd.services.diff.v1.Diff`.

use std::sync::Arc;

use berth_proto::{
    digest::Digest,
    errdefs::Error,
    server::diff::v1::diff_server,
    services::v1::{ApplyRequest, ApplyResponse, DiffRequest, DiffResponse},
    types::{Descriptor, Mount as MountProto},
};
use berth_snapshotter::mount::Mount;
use tonic::{Request, Response, Status};

use super::{Differ, Layer, MEDIA_TAR};
use crate::{blocking, request::Scope};

/// The gRPC face of [`Differ`].
pub struct Service {
    differ: Arc<Differ>,
}

impl Service {
    /// Serves `differ`.
    pub fn new(differ: Arc<Differ>) -> Service {
        Service { differ }
    }
}

fn mounts(ms: Vec<MountProto>) -> Vec<Mount> {
    ms.into_iter()
        .map(|m| Mount {
            kind: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect()
}

#[tonic::async_trait]
impl diff_server::Diff for Service {
    async fn apply(&self, req: Request<ApplyRequest>) -> Result<Response<ApplyResponse>, Status> {
        let scope = Scope::of(&req)?;
        let r = req.into_inner();
        let desc = r
            .diff
            .ok_or_else(|| Error::invalid("apply request must carry a diff descriptor"))?;
        let layer = Layer {
            media_type: desc.media_type,
            digest: Digest::parse(&desc.digest)?,
        };
        let ms = mounts(r.mounts);
        let differ = self.differ.clone();
        let applied = blocking::run(move || differ.apply(&scope, &layer, &ms)).await?;
        Ok(Response::new(ApplyResponse {
            applied: Some(Descriptor {
                media_type: MEDIA_TAR.to_string(),
                digest: applied.diff_id.to_string(),
                size: applied.size as i64,
                annotations: Default::default(),
            }),
        }))
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let scope = Scope::of(&req)?;
        let r = req.into_inner();
        let (left, right) = (mounts(r.left), mounts(r.right));
        let differ = self.differ.clone();
        let (digest, size, media_type) = blocking::run(move || {
            differ.diff(&scope, &left, &right, &r.media_type, &r.r#ref, r.labels)
        })
        .await?;
        Ok(Response::new(DiffResponse {
            diff: Some(Descriptor {
                media_type,
                digest: digest.to_string(),
                size,
                annotations: Default::default(),
            }),
        }))
    }
}
