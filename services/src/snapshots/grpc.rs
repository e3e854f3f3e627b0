//! `containerd.services.snapshots.v1.Snapshots`: validate, convert, call [`Snapshots`] on a
//! blocking thread (snapshot operations touch the filesystem), map errors.

use std::{pin::Pin, sync::Arc};

use berth_proto::{
    errdefs::Error,
    filters::Filter,
    server::snapshots::v1::snapshots_server,
    services::v1::snapshots::{
        CleanupRequest, CommitSnapshotRequest, Info as InfoProto, ListSnapshotsRequest,
        ListSnapshotsResponse, MountsRequest, MountsResponse, PrepareSnapshotRequest,
        PrepareSnapshotResponse, RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse,
        UpdateSnapshotRequest, UpdateSnapshotResponse, UsageRequest, UsageResponse,
        ViewSnapshotRequest, ViewSnapshotResponse,
    },
    types::Mount as MountProto,
};
use berth_snapshotter::{
    mount::Mount,
    snapshots::{Info, Kind},
};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::Snapshots;
use crate::{
    metadata::Timestamp,
    request::{self, Scope},
};

/// Infos per `List` response, as containerd batches them.
const LIST_BATCH: usize = 100;

/// The gRPC face of [`Snapshots`].
pub struct Service {
    snapshots: Arc<Snapshots>,
}

impl Service {
    /// Serves `snapshots`.
    pub fn new(snapshots: Arc<Snapshots>) -> Service {
        Service { snapshots }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Snapshots) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Status> {
        let snapshots = self.snapshots.clone();
        crate::blocking::run(move || f(&snapshots))
            .await
            .map_err(Status::from)
    }
}

/// A mount in containerd's wire shape.
pub fn mount_to_proto(m: Mount) -> MountProto {
    MountProto {
        r#type: m.kind,
        source: m.source,
        target: String::new(),
        options: m.options,
    }
}

fn mounts(ms: Vec<Mount>) -> Vec<MountProto> {
    ms.into_iter().map(mount_to_proto).collect()
}

fn info_to_proto(i: Info) -> InfoProto {
    InfoProto {
        name: i.name,
        parent: i.parent,
        kind: i.kind.as_i32(),
        created_at: Some(Timestamp::from(i.created_at).to_proto()),
        updated_at: Some(Timestamp::from(i.updated_at).to_proto()),
        labels: i.labels,
    }
}

fn info_from_proto(i: InfoProto) -> Info {
    let time = |t: Option<prost_types::Timestamp>| {
        t.map(|t| {
            std::time::UNIX_EPOCH
                + std::time::Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
        })
        .unwrap_or(std::time::UNIX_EPOCH)
    };
    Info {
        kind: Kind::from_i32(i.kind).unwrap_or(Kind::Active),
        name: i.name,
        parent: i.parent,
        labels: i.labels,
        created_at: time(i.created_at),
        updated_at: time(i.updated_at),
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl snapshots_server::Snapshots for Service {
    async fn prepare(
        &self,
        req: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let scope = Scope::of(&req)?;
        let r = req.into_inner();
        let ms = self
            .run(move |s| s.prepare(&scope, &r.snapshotter, &r.key, &r.parent, r.labels))
            .await?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts(ms),
        }))
    }

    async fn view(
        &self,
        req: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let scope = Scope::of(&req)?;
        let r = req.into_inner();
        let ms = self
            .run(move |s| s.view(&scope, &r.snapshotter, &r.key, &r.parent, r.labels))
            .await?;
        Ok(Response::new(ViewSnapshotResponse { mounts: mounts(ms) }))
    }

    async fn mounts(
        &self,
        req: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let ms = self
            .run(move |s| s.mounts(&ns, &r.snapshotter, &r.key))
            .await?;
        Ok(Response::new(MountsResponse { mounts: mounts(ms) }))
    }

    async fn commit(&self, req: Request<CommitSnapshotRequest>) -> Result<Response<()>, Status> {
        let scope = Scope::of(&req)?;
        let r = req.into_inner();
        self.run(move |s| s.commit(&scope, &r.snapshotter, &r.name, &r.key, r.labels))
            .await?;
        Ok(Response::new(()))
    }

    async fn remove(&self, req: Request<RemoveSnapshotRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        self.run(move |s| s.remove(&ns, &r.snapshotter, &r.key))
            .await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let info = self
            .run(move |s| s.stat(&ns, &r.snapshotter, &r.key))
            .await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let info = r
            .info
            .ok_or_else(|| Error::invalid("update request must carry info"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = info_from_proto(info);
        let updated = self
            .run(move |s| s.update(&ns, &r.snapshotter, info, &paths))
            .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_to_proto(updated)),
        }))
    }

    type ListStream = BoxStream<ListSnapshotsResponse>;

    async fn list(
        &self,
        req: Request<ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let filter = Filter::parse_all(&r.filters)?;
        let infos = self
            .run(move |s| s.list(&ns, &r.snapshotter, &filter))
            .await?;
        let batches: Vec<Result<ListSnapshotsResponse, Status>> = infos
            .chunks(LIST_BATCH)
            .map(|c| {
                Ok(ListSnapshotsResponse {
                    info: c.iter().cloned().map(info_to_proto).collect(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn usage(&self, req: Request<UsageRequest>) -> Result<Response<UsageResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let u = self
            .run(move |s| s.usage(&ns, &r.snapshotter, &r.key))
            .await?;
        Ok(Response::new(UsageResponse {
            size: u.size,
            inodes: u.inodes,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        self.run(move |s| s.cleanup(&r.snapshotter)).await?;
        Ok(Response::new(()))
    }
}
