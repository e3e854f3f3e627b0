//! `containerd.services.tasks.v1.Tasks`.

use std::sync::Arc;

use berth_proto::{
    Empty,
    errdefs::Error,
    filters::Filter,
    server::tasks::v1::tasks_server,
    services::v1::{
        CheckpointTaskRequest, CheckpointTaskResponse, CloseIoRequest, CreateTaskRequest,
        CreateTaskResponse, DeleteProcessRequest, DeleteResponse, DeleteTaskRequest,
        ExecProcessRequest, GetRequest, GetResponse, KillRequest, ListPidsRequest,
        ListPidsResponse, ListTasksRequest, ListTasksResponse, MetricsRequest, MetricsResponse,
        PauseTaskRequest, ResizePtyRequest, ResumeTaskRequest, StartRequest, StartResponse,
        UpdateTaskRequest, WaitRequest, WaitResponse,
    },
    types::v1::ProcessInfo,
};
use containerd_shim_protos::{api, protobuf::well_known_types::empty::Empty as ShimEmpty};
use tonic::{Request, Response, Status};

use super::{Tasks, convert};
use crate::request;

/// The gRPC face of [`Tasks`].
pub struct Service {
    tasks: Arc<Tasks>,
}

impl Service {
    /// Serves `tasks`.
    pub fn new(tasks: Arc<Tasks>) -> Service {
        Service { tasks }
    }

    /// Sends `req` as `method` to the shim of container `id`, expecting no answer.
    async fn forward<Req: containerd_shim_protos::protobuf::Message>(
        &self,
        ns: &str,
        id: &str,
        method: &str,
        req: Req,
    ) -> Result<Response<Empty>, Status> {
        let task = self.tasks.task(ns, id).await?;
        let _: ShimEmpty = task.call(method, &req).await?;
        Ok(Response::new(()))
    }
}

#[tonic::async_trait]
impl tasks_server::Tasks for Service {
    async fn create(
        &self,
        req: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let ns = request::namespace(&req)?;
        Ok(Response::new(
            self.tasks.create(&ns, req.into_inner()).await?,
        ))
    }

    async fn start(&self, req: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let task = self.tasks.task(&ns, &r.container_id).await?;
        let started: api::StartResponse = task
            .call(
                "Start",
                &api::StartRequest {
                    id: r.container_id,
                    exec_id: r.exec_id,
                    ..Default::default()
                },
            )
            .await?;
        Ok(Response::new(StartResponse { pid: started.pid }))
    }

    async fn delete(
        &self,
        req: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = request::namespace(&req)?;
        let id = req.into_inner().container_id;
        let exit = self.tasks.delete(&ns, &id).await?;
        Ok(Response::new(DeleteResponse {
            id,
            pid: exit.pid,
            exit_status: exit.status,
            exited_at: exit.at,
        }))
    }

    async fn delete_process(
        &self,
        req: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        if r.exec_id.is_empty() {
            return Err(Error::invalid("exec id must be provided").into());
        }
        let task = self.tasks.task(&ns, &r.container_id).await?;
        let deleted: api::DeleteResponse = task
            .call(
                "Delete",
                &api::DeleteRequest {
                    id: r.container_id,
                    exec_id: r.exec_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        Ok(Response::new(DeleteResponse {
            id: r.exec_id,
            pid: deleted.pid,
            exit_status: deleted.exit_status,
            exited_at: convert::time_from_shim(deleted.exited_at),
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let process = self.tasks.get(&ns, &r.container_id, &r.exec_id).await?;
        Ok(Response::new(GetResponse {
            process: Some(process),
        }))
    }

    async fn list(
        &self,
        req: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let ns = request::namespace(&req)?;
        Ok(Response::new(ListTasksResponse {
            tasks: self.tasks.list(&ns).await,
        }))
    }

    async fn kill(&self, req: Request<KillRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let shim = api::KillRequest {
            id: r.container_id.clone(),
            exec_id: r.exec_id,
            signal: r.signal,
            all: r.all,
            ..Default::default()
        };
        self.forward(&ns, &r.container_id, "Kill", shim).await
    }

    async fn exec(&self, req: Request<ExecProcessRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        if r.exec_id.is_empty() {
            return Err(Error::invalid("exec id must not be empty").into());
        }
        let task = self.tasks.task(&ns, &r.container_id).await?;
        self.tasks.check_exec(&task).await?;
        let shim = api::ExecProcessRequest {
            id: r.container_id,
            exec_id: r.exec_id,
            terminal: r.terminal,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            spec: convert::any_field(r.spec.as_ref()),
            ..Default::default()
        };
        let _: ShimEmpty = task.call("Exec", &shim).await?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, req: Request<ResizePtyRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let shim = api::ResizePtyRequest {
            id: r.container_id.clone(),
            exec_id: r.exec_id,
            width: r.width,
            height: r.height,
            ..Default::default()
        };
        self.forward(&ns, &r.container_id, "ResizePty", shim).await
    }

    async fn close_i_o(&self, req: Request<CloseIoRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let shim = api::CloseIORequest {
            id: r.container_id.clone(),
            exec_id: r.exec_id,
            stdin: r.stdin,
            ..Default::default()
        };
        self.forward(&ns, &r.container_id, "CloseIO", shim).await
    }

    async fn pause(&self, req: Request<PauseTaskRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let id = req.into_inner().container_id;
        let shim = api::PauseRequest {
            id: id.clone(),
            ..Default::default()
        };
        self.forward(&ns, &id, "Pause", shim).await
    }

    async fn resume(&self, req: Request<ResumeTaskRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let id = req.into_inner().container_id;
        let shim = api::ResumeRequest {
            id: id.clone(),
            ..Default::default()
        };
        self.forward(&ns, &id, "Resume", shim).await
    }

    async fn list_pids(
        &self,
        req: Request<ListPidsRequest>,
    ) -> Result<Response<ListPidsResponse>, Status> {
        let ns = request::namespace(&req)?;
        let id = req.into_inner().container_id;
        let task = self.tasks.task(&ns, &id).await?;
        let pids: api::PidsResponse = task
            .call(
                "Pids",
                &api::PidsRequest {
                    id,
                    ..Default::default()
                },
            )
            .await?;
        let processes = pids
            .processes
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: convert::any_from_shim(p.info),
            })
            .collect();
        Ok(Response::new(ListPidsResponse { processes }))
    }

    async fn checkpoint(
        &self,
        req: Request<CheckpointTaskRequest>,
    ) -> Result<Response<CheckpointTaskResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        self.tasks.checkpoint(&ns, &r.container_id).await?;
        Ok(Response::new(CheckpointTaskResponse::default()))
    }

    async fn update(&self, req: Request<UpdateTaskRequest>) -> Result<Response<Empty>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let shim = api::UpdateTaskRequest {
            id: r.container_id.clone(),
            resources: convert::any_field(r.resources.as_ref()),
            annotations: r.annotations,
            ..Default::default()
        };
        self.forward(&ns, &r.container_id, "Update", shim).await
    }

    async fn metrics(
        &self,
        req: Request<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        Ok(Response::new(MetricsResponse {
            metrics: self.tasks.metrics(&ns, &filter).await?,
        }))
    }

    async fn wait(&self, req: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let task = self.tasks.task(&ns, &r.container_id).await?;
        let waited: api::WaitResponse = task
            .call(
                "Wait",
                &api::WaitRequest {
                    id: r.container_id,
                    exec_id: r.exec_id,
                    ..Default::default()
                },
            )
            .await?;
        Ok(Response::new(WaitResponse {
            exit_status: waited.exit_status,
            exited_at: convert::time_from_shim(waited.exited_at),
        }))
    }
}
