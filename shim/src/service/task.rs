//! containerd's `Task` methods: validate, find, call, publish, map errors.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim_protos::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::topics::*;
use containerd_shim_protos::ttrpc::{self, r#async::TtrpcContext};

use super::{Service, lock, to_completion};
use crate::cgroups;
use crate::container::{Container, CreateConfig};
use crate::error::Error;
use crate::pipes::StdioPaths;
use crate::process::Exit;
use crate::runtime;

type Reply<T> = ttrpc::Result<T>;

fn exit_fields(
    exit: Option<Exit>,
) -> (
    u32,
    Option<containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp>,
) {
    match exit {
        Some(e) => (e.status, Some(e.timestamp())),
        None => (0, None),
    }
}

#[async_trait]
impl Task for Service {
    async fn state(&self, _: &TtrpcContext, req: StateRequest) -> Reply<StateResponse> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let (exit_status, exited_at) = exit_fields(p.exit());
        Ok(StateResponse {
            id: req.id,
            bundle: c.bundle.display().to_string(),
            pid: p.pid(),
            status: p.status().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status,
            exited_at: exited_at.into(),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    async fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> Reply<CreateTaskResponse> {
        self.trimmer.touch();
        if !req.checkpoint.is_empty() {
            return Err(
                Error::Unimplemented("restore from a checkpoint is not supported".into()).into(),
            );
        }
        if self.containers().contains_key(&req.id) {
            return Err(
                Error::AlreadyExists(format!("container {}: already exists", req.id)).into(),
            );
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let cfg = CreateConfig {
            id: req.id.clone(),
            bundle: PathBuf::from(&req.bundle),
            namespace: self.namespace.clone(),
            options: runtime::parse_options(req.options.as_ref())?,
            stdio,
            rootfs: req.rootfs.clone(),
        };
        let (containers, publisher, id) = (
            self.containers.clone(),
            self.publisher.clone(),
            req.id.clone(),
        );
        let pid = to_completion(async move {
            let c = Container::create(cfg, publisher).await?;
            let pid = c.init.pid();
            lock(&containers).insert(id, c);
            Ok(pid)
        })
        .await?;
        let event = TaskCreate {
            container_id: req.id,
            bundle: req.bundle,
            rootfs: req.rootfs,
            io: Some(TaskIO {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            checkpoint: req.checkpoint,
            pid,
            ..Default::default()
        };
        self.publisher.publish(TASK_CREATE_EVENT_TOPIC, &event);
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start(&self, _: &TtrpcContext, req: StartRequest) -> Reply<StartResponse> {
        let c = self.container(&req.id)?;
        let pid = if req.exec_id.is_empty() {
            let pid = to_completion(async move { c.start_init().await }).await?;
            let event = TaskStart {
                container_id: req.id,
                pid,
                ..Default::default()
            };
            self.publisher.publish(TASK_START_EVENT_TOPIC, &event);
            pid
        } else {
            let pid = c.start_exec(&req.exec_id).await?;
            let event = TaskExecStarted {
                container_id: req.id,
                exec_id: req.exec_id,
                pid,
                ..Default::default()
            };
            self.publisher
                .publish(TASK_EXEC_STARTED_EVENT_TOPIC, &event);
            pid
        };
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> Reply<DeleteResponse> {
        let c = self.container(&req.id)?;
        let (pid, exit) = if req.exec_id.is_empty() {
            let (pid, exit) = c.delete_init().await?;
            self.containers().remove(&req.id);
            let (exit_status, exited_at) = exit_fields(exit);
            let event = TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status,
                exited_at: exited_at.into(),
                id: req.id,
                ..Default::default()
            };
            self.publisher.publish(TASK_DELETE_EVENT_TOPIC, &event);
            (pid, exit)
        } else {
            c.delete_exec(&req.exec_id).await?
        };
        let (exit_status, exited_at) = exit_fields(exit);
        Ok(DeleteResponse {
            pid,
            exit_status,
            exited_at: exited_at.into(),
            ..Default::default()
        })
    }

    async fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> Reply<PidsResponse> {
        let c = self.container(&req.id)?;
        Ok(PidsResponse {
            processes: c.pids().await?,
            ..Default::default()
        })
    }

    async fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> Reply<Empty> {
        self.container(&req.id)?.pause().await?;
        let event = TaskPaused {
            container_id: req.id,
            ..Default::default()
        };
        self.publisher.publish(TASK_PAUSED_EVENT_TOPIC, &event);
        Ok(Empty::new())
    }

    async fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> Reply<Empty> {
        self.container(&req.id)?.resume().await?;
        let event = TaskResumed {
            container_id: req.id,
            ..Default::default()
        };
        self.publisher.publish(TASK_RESUMED_EVENT_TOPIC, &event);
        Ok(Empty::new())
    }

    async fn checkpoint(&self, _: &TtrpcContext, req: CheckpointTaskRequest) -> Reply<Empty> {
        let c = self.container(&req.id)?;
        c.checkpoint(&req.path, req.options.as_ref()).await?;
        let event = TaskCheckpointed {
            container_id: req.id,
            checkpoint: req.path,
            ..Default::default()
        };
        self.publisher
            .publish(TASK_CHECKPOINTED_EVENT_TOPIC, &event);
        Ok(Empty::new())
    }

    async fn kill(&self, _: &TtrpcContext, req: KillRequest) -> Reply<Empty> {
        let c = self.container(&req.id)?;
        c.kill(&req.exec_id, req.signal, req.all).await?;
        Ok(Empty::new())
    }

    async fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> Reply<Empty> {
        let c = self.container(&req.id)?;
        let spec_any = req
            .spec
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("exec without a process spec".into()))?;
        let mut spec: oci_spec::runtime::Process = serde_json::from_slice(&spec_any.value)
            .map_err(|e| Error::InvalidArgument(format!("process spec: {e}")))?;
        // The request decides whether the process gets a terminal, as in containerd's shim:
        // clients reuse the container's process spec and ask for a TTY separately.
        spec.set_terminal(Some(req.terminal));
        let stdio = StdioPaths {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            terminal: req.terminal,
        };
        c.add_exec(&req.exec_id, stdio, spec)?;
        let event = TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
            ..Default::default()
        };
        self.publisher.publish(TASK_EXEC_ADDED_EVENT_TOPIC, &event);
        Ok(Empty::new())
    }

    async fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> Reply<Empty> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        if let Some(pty) = p.pty() {
            crate::console::resize(&pty, req.width, req.height)?;
        }
        Ok(Empty::new())
    }

    async fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> Reply<Empty> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        if req.stdin
            && let Some(tasks) = p.tasks()
        {
            tasks.close_input();
        }
        Ok(Empty::new())
    }

    async fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> Reply<Empty> {
        let c = self.container(&req.id)?;
        let resources = req
            .resources
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("update without resources".into()))?;
        c.update(&resources.value).await?;
        Ok(Empty::new())
    }

    async fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> Reply<WaitResponse> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        let exit = p.wait().await;
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: Some(exit.timestamp()).into(),
            ..Default::default()
        })
    }

    async fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> Reply<StatsResponse> {
        let c = self.container(&req.id)?;
        let pid = c.init.pid();
        if pid == 0 || c.init.exit().is_some() {
            return Err(Error::NotFound("container is not running".into()).into());
        }
        Ok(StatsResponse {
            stats: Some(cgroups::metrics(pid)?).into(),
            ..Default::default()
        })
    }

    async fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> Reply<ConnectResponse> {
        let task_pid = self.container(&req.id).map(|c| c.init.pid()).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            ..Default::default()
        })
    }

    async fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> Reply<Empty> {
        if self.containers().is_empty() {
            // Withdraw the socket before answering: a task created for the same id right
            // after this reply must get a new shim, not this one on its way out.
            let _ = std::fs::remove_file(&self.socket);
            let notify = self.shutdown.clone();
            // Answer first; the server stops right after.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                notify.notify_one();
            });
        }
        Ok(Empty::new())
    }
}
