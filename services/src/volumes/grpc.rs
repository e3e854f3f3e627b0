//! `berth.volumes.v1.Volumes`.
//!
//! Volumes are global, so the namespace header is optional here. It only shapes `used_by`:
//! containers of the request's namespace appear by id, those of other namespaces as
//! `<namespace>/<id>` (ids never contain `/`); without the header every user is shown that way.

use std::sync::Arc;

use berth_proto::{
    berth::volumes::v1::{
        CreateVolumeRequest, GetVolumeRequest, ListVolumesRequest, ListVolumesResponse,
        PruneVolumesRequest, PruneVolumesResponse, RemoveVolumeRequest, RemoveVolumeResponse,
        Volume as ApiVolume, volumes_server,
    },
    errdefs::Error,
    filters::Filter,
};
use tonic::{Request, Response, Status};

use super::{Volume, Volumes, users::ContainerRef};
use crate::{blocking, request};

/// The gRPC face of [`Volumes`].
pub struct Service {
    volumes: Arc<Volumes>,
}

impl Service {
    /// Serves `volumes`.
    pub fn new(volumes: Arc<Volumes>) -> Service {
        Service { volumes }
    }
}

/// The request's namespace when it names one (validated), else `None`.
fn viewer<T>(req: &Request<T>) -> Result<Option<String>, Error> {
    if req.metadata().get(request::NAMESPACE_HEADER).is_none() {
        return Ok(None);
    }
    request::namespace(req).map(Some)
}

fn user(c: &ContainerRef, viewer: Option<&str>) -> String {
    if viewer == Some(c.namespace.as_str()) {
        c.id.clone()
    } else {
        format!("{}/{}", c.namespace, c.id)
    }
}

/// A volume as the API shows it to a client in namespace `viewer`.
fn to_api(v: Volume, viewer: Option<&str>) -> ApiVolume {
    ApiVolume {
        used_by: v.used_by.iter().map(|c| user(c, viewer)).collect(),
        name: v.name,
        mountpoint: v.mountpoint.display().to_string(),
        labels: v.labels,
        created_at: Some(v.created_at.to_proto()),
        size: v.size.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
        anonymous: v.anonymous,
    }
}

#[tonic::async_trait]
impl volumes_server::Volumes for Service {
    async fn create(
        &self,
        req: Request<CreateVolumeRequest>,
    ) -> Result<Response<ApiVolume>, Status> {
        let viewer = viewer(&req)?;
        let r = req.into_inner();
        let volumes = self.volumes.clone();
        let v = blocking::run(move || volumes.create(&r.name, r.labels, r.anonymous)).await?;
        Ok(Response::new(to_api(v, viewer.as_deref())))
    }

    async fn get(&self, req: Request<GetVolumeRequest>) -> Result<Response<ApiVolume>, Status> {
        let viewer = viewer(&req)?;
        let r = req.into_inner();
        let volumes = self.volumes.clone();
        let v = blocking::run(move || volumes.get(&r.name, r.with_size)).await?;
        Ok(Response::new(to_api(v, viewer.as_deref())))
    }

    async fn list(
        &self,
        req: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        let viewer = viewer(&req)?;
        let r = req.into_inner();
        let filter = Filter::parse_all(&r.filters)?;
        let volumes = self.volumes.clone();
        let listed = blocking::run(move || volumes.list(&filter, r.with_size)).await?;
        Ok(Response::new(ListVolumesResponse {
            volumes: listed
                .into_iter()
                .map(|v| to_api(v, viewer.as_deref()))
                .collect(),
        }))
    }

    async fn remove(
        &self,
        req: Request<RemoveVolumeRequest>,
    ) -> Result<Response<RemoveVolumeResponse>, Status> {
        let r = req.into_inner();
        let volumes = self.volumes.clone();
        blocking::run(move || volumes.remove(&r.name, r.force)).await?;
        Ok(Response::new(RemoveVolumeResponse {}))
    }

    async fn prune(
        &self,
        req: Request<PruneVolumesRequest>,
    ) -> Result<Response<PruneVolumesResponse>, Status> {
        let all = req.into_inner().all;
        let volumes = self.volumes.clone();
        let pruned = blocking::run(move || volumes.prune(all)).await?;
        Ok(Response::new(PruneVolumesResponse {
            removed: pruned.removed,
            space_reclaimed: pruned.space_reclaimed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_outside_the_viewers_namespace_are_qualified() {
        let c = ContainerRef {
            namespace: "moby".into(),
            id: "c1".into(),
        };
        assert_eq!(user(&c, Some("moby")), "c1");
        assert_eq!(user(&c, Some("default")), "moby/c1");
        assert_eq!(user(&c, None), "moby/c1");
    }
}
