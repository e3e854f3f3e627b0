//! `containerd.services.leases.v1.Leases`.

use std::sync::Arc;

use berth_proto::{
    errdefs::Error,
    filters::Filter,
    server::leases::v1::leases_server,
    services::v1::{
        AddResourceRequest, CreateRequest, CreateResponse, DeleteRequest, DeleteResourceRequest,
        Lease, ListRequest, ListResourcesRequest, ListResourcesResponse, ListResponse, Resource,
    },
};
use tonic::{Request, Response, Status};

use super::Leases;
use crate::{
    metadata::{LeaseRecord, LeaseResource},
    request,
};

/// The gRPC face of [`Leases`].
pub struct Service {
    leases: Arc<Leases>,
}

impl Service {
    /// Serves `leases`.
    pub fn new(leases: Arc<Leases>) -> Service {
        Service { leases }
    }
}

fn to_proto(id: String, record: LeaseRecord) -> Lease {
    Lease {
        id,
        created_at: Some(record.created_at.to_proto()),
        labels: record.labels,
    }
}

fn resource(r: Option<Resource>) -> Result<LeaseResource, Error> {
    let r = r.ok_or_else(|| Error::invalid("resource must be provided"))?;
    Ok(LeaseResource {
        kind: r.r#type,
        id: r.id,
    })
}

#[tonic::async_trait]
impl leases_server::Leases for Service {
    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        let record = self.leases.create(&ns, &req.id, req.labels)?;
        Ok(Response::new(CreateResponse {
            lease: Some(to_proto(req.id, record)),
        }))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        self.leases.delete(&ns, &req.id, req.sync).await?;
        Ok(Response::new(()))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let leases = self
            .leases
            .list(&ns, &filter)?
            .into_iter()
            .map(|(id, r)| to_proto(id, r))
            .collect();
        Ok(Response::new(ListResponse { leases }))
    }

    async fn add_resource(&self, req: Request<AddResourceRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        self.leases
            .add_resource(&ns, &req.id, resource(req.resource)?)?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        req: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        self.leases
            .delete_resource(&ns, &req.id, resource(req.resource)?)?;
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        req: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let ns = request::namespace(&req)?;
        let resources = self
            .leases
            .list_resources(&ns, &req.into_inner().id)?
            .into_iter()
            .map(|r| Resource {
                id: r.id,
                r#type: r.kind,
            })
            .collect();
        Ok(Response::new(ListResourcesResponse { resources }))
    }
}
