//! `containerd.services.containers.v1.Containers`.

use std::{pin::Pin, sync::Arc};

use berth_proto::{
    errdefs::Error,
    filters::Filter,
    server::containers::v1::containers_server,
    services::v1::{
        CreateContainerRequest, CreateContainerResponse, DeleteContainerRequest,
        GetContainerRequest, GetContainerResponse, ListContainerMessage, ListContainersRequest,
        ListContainersResponse, UpdateContainerRequest, UpdateContainerResponse,
    },
};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::Containers;
use crate::{request, runtime::Manager};

/// The gRPC face of [`Containers`].
pub struct Service {
    containers: Arc<Containers>,
    runtime: Arc<Manager>,
}

impl Service {
    /// Serves `containers`; a container whose task `runtime` still runs cannot be deleted.
    pub fn new(containers: Arc<Containers>, runtime: Arc<Manager>) -> Service {
        Service {
            containers,
            runtime,
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl containers_server::Containers for Service {
    async fn get(
        &self,
        req: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let ns = request::namespace(&req)?;
        let c = self.containers.get(&ns, &req.into_inner().id)?;
        Ok(Response::new(GetContainerResponse { container: Some(c) }))
    }

    async fn list(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let containers = self.containers.list(&ns, &filter)?;
        Ok(Response::new(ListContainersResponse { containers }))
    }

    type ListStreamStream = BoxStream<ListContainerMessage>;

    async fn list_stream(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<Self::ListStreamStream>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let messages: Vec<Result<ListContainerMessage, Status>> = self
            .containers
            .list(&ns, &filter)?
            .into_iter()
            .map(|c| Ok(ListContainerMessage { container: Some(c) }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn create(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let ns = request::namespace(&req)?;
        let c = req
            .into_inner()
            .container
            .ok_or_else(|| Error::invalid("container must be provided"))?;
        let c = self.containers.create(&ns, c)?;
        Ok(Response::new(CreateContainerResponse {
            container: Some(c),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let c = r
            .container
            .ok_or_else(|| Error::invalid("container must be provided"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let c = self.containers.update(&ns, c, &paths)?;
        Ok(Response::new(UpdateContainerResponse {
            container: Some(c),
        }))
    }

    async fn delete(&self, req: Request<DeleteContainerRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let id = req.into_inner().id;
        if self.runtime.exists(&ns, &id).await {
            return Err(Error::precondition(format!(
                "cannot delete running task {id}: failed precondition"
            ))
            .into());
        }
        self.containers.delete(&ns, &id)?;
        Ok(Response::new(()))
    }
}
