//! `containerd.services.namespaces.v1.Namespaces`.

use std::sync::Arc;

use berth_proto::{
    errdefs::Error,
    filters::{Adaptor, Filter, label_field},
    server::namespaces::v1::namespaces_server,
    services::v1::{
        CreateNamespaceRequest, CreateNamespaceResponse, DeleteNamespaceRequest,
        GetNamespaceRequest, GetNamespaceResponse, ListNamespacesRequest, ListNamespacesResponse,
        Namespace, UpdateNamespaceRequest, UpdateNamespaceResponse,
    },
};
use tonic::{Request, Response, Status};

use super::{LabelUpdate, Namespaces};
use crate::metadata::NamespaceRecord;

/// The gRPC face of [`Namespaces`].
pub struct Service {
    namespaces: Arc<Namespaces>,
}

impl Service {
    /// Serves `namespaces`.
    pub fn new(namespaces: Arc<Namespaces>) -> Service {
        Service { namespaces }
    }
}

/// Filter fields of a namespace: `name`, `labels.<key>`.
struct NamespaceFields<'a>(&'a str, &'a NamespaceRecord);

impl Adaptor for NamespaceFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "name" if path.len() == 1 => Some(self.0.to_string()),
            "labels" => label_field(&self.1.labels, &path[1..]),
            _ => None,
        }
    }
}

fn to_proto(name: String, record: NamespaceRecord) -> Namespace {
    Namespace {
        name,
        labels: record.labels,
    }
}

#[tonic::async_trait]
impl namespaces_server::Namespaces for Service {
    async fn get(
        &self,
        req: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let name = req.into_inner().name;
        let record = self.namespaces.get(&name)?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(to_proto(name, record)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let filter = req.into_inner().filter;
        let filter = if filter.is_empty() {
            Filter::always()
        } else {
            Filter::parse(&filter)?
        };
        let namespaces = self
            .namespaces
            .list()?
            .into_iter()
            .filter(|(n, r)| filter.matches(&NamespaceFields(n, r)))
            .map(|(n, r)| to_proto(n, r))
            .collect();
        Ok(Response::new(ListNamespacesResponse { namespaces }))
    }

    async fn create(
        &self,
        req: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let ns = req
            .into_inner()
            .namespace
            .ok_or_else(|| Error::invalid("namespace must be provided"))?;
        self.namespaces.create(&ns.name, ns.labels.clone())?;
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(ns),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let req = req.into_inner();
        let ns = req
            .namespace
            .ok_or_else(|| Error::invalid("namespace must be provided"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let change = if paths.is_empty() {
            LabelUpdate::ReplaceAll(ns.labels.clone())
        } else {
            let mut keys = Vec::new();
            for path in paths {
                let Some(key) = path.strip_prefix("labels.") else {
                    return Err(Error::invalid(format!("cannot update {path:?} field")).into());
                };
                let value = ns.labels.get(key).cloned().unwrap_or_default();
                keys.push((key.to_string(), value));
            }
            LabelUpdate::Keys(keys)
        };
        let record = self.namespaces.update(&ns.name, change)?;
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(to_proto(ns.name, record)),
        }))
    }

    async fn delete(&self, req: Request<DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        self.namespaces.delete(&req.into_inner().name)?;
        Ok(Response::new(()))
    }
}
