//! Tasks: containers brought to life. `containerd.services.tasks.v1.Tasks` over the runtime
//! manager ([`crate::runtime`]).
//!
//! A task is created from a container record: its runtime name picks the shim, its spec
//! becomes the bundle's `config.json`, and its root filesystem is the request's mounts or,
//! when there are none, the mounts of the container's snapshot. Everything after that
//! (start, kill, exec, pause, …) is the shim's job; this layer finds the task, translates the
//! request and maps the shim's answer. `/tasks/*` events come from the shims themselves.
//!
//! Logs: a container labelled `berth.io/log-driver=json-file` whose task is created without
//! stdout and stderr gets a log file in their place ([`crate::logs`]).
//!
//! Runtime options: each daemon keeps runc's state in its own directory, so the options of
//! runc shims (`containerd.runc.v1.Options`) are always sent with `root` set, unless the
//! client chose one.

pub mod convert;
pub mod grpc;
pub mod legacy;

use std::{path::PathBuf, sync::Arc};

use berth_proto::{
    errdefs::{Error, Kind},
    filters::{Adaptor, Filter},
    services::v1::{CreateTaskRequest, CreateTaskResponse},
    types::{Metric, v1::Process},
};
use containerd_shim_protos::{
    api::{self, StateRequest, StateResponse, StatsRequest, StatsResponse},
    protobuf::{Message as _, well_known_types::any::Any},
    shim::oci::Options,
    types::task::Status,
};

use crate::{
    containers::Containers,
    logs::{self, LogDirs},
    metadata::Timestamp,
    runtime::{CreateOpts, Manager, Task},
    snapshots::Snapshots,
};

/// The type URL of runc shims' options.
pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";

/// The tasks service's logic.
pub struct Tasks {
    runtime: Arc<Manager>,
    containers: Arc<Containers>,
    snapshots: Arc<Snapshots>,
    runc_root: PathBuf,
    logs: Option<LogDirs>,
}

impl Tasks {
    /// Tasks of `containers`, rooted in `snapshots`, run by `runtime`, with runc state kept
    /// under `runc_root`.
    pub fn new(
        runtime: Arc<Manager>,
        containers: Arc<Containers>,
        snapshots: Arc<Snapshots>,
        runc_root: PathBuf,
    ) -> Tasks {
        Tasks {
            runtime,
            containers,
            snapshots,
            runc_root,
            logs: None,
        }
    }

    /// Gives tasks of containers with the json-file log driver (and no stdout or stderr of
    /// their own) log files in `logs`.
    pub fn with_logs(mut self, logs: LogDirs) -> Tasks {
        self.logs = Some(logs);
        self
    }

    /// The task of container `id` in `ns`.
    pub async fn task(&self, ns: &str, id: &str) -> Result<Arc<Task>, Error> {
        self.runtime.get(ns, id).await
    }

    /// Creates the task of `req.container_id`.
    pub async fn create(
        &self,
        ns: &str,
        req: CreateTaskRequest,
    ) -> Result<CreateTaskResponse, Error> {
        let c = self.containers.get(ns, &req.container_id)?;
        if req.checkpoint.is_some() {
            return Err(Error::new(
                Kind::NotImplemented,
                "restoring a task from a checkpoint is not supported",
            ));
        }
        let runtime = match (&req.runtime_path, &c.runtime) {
            (p, _) if !p.is_empty() => p.clone(),
            (_, Some(r)) => r.name.clone(),
            (_, None) => return Err(Error::invalid("container.Runtime.Name must be set")),
        };
        let spec = c
            .spec
            .as_ref()
            .map(|s| s.value.clone())
            .ok_or_else(|| Error::invalid("container.Spec must be set"))?;
        match serde_json::from_slice::<serde_json::Value>(&spec) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Err(Error::invalid("invalid container spec: not a JSON object")),
            Err(e) => return Err(Error::invalid(format!("invalid container spec: {e}"))),
        }
        let options = req
            .options
            .as_ref()
            .or(c.runtime.as_ref().and_then(|r| r.options.as_ref()));
        let (runtime, options) = legacy::translate(runtime, options)?;
        let options = self.runtime_options(options.as_ref())?;
        let rootfs = if !req.rootfs.is_empty() {
            convert::mounts_to_shim(&req.rootfs)
        } else if !c.snapshot_key.is_empty() {
            convert::snapshot_mounts_to_shim(self.snapshots.mounts(
                ns,
                &c.snapshotter,
                &c.snapshot_key,
            )?)
        } else {
            Vec::new()
        };
        let (mut stdout, mut stderr) = (req.stdout, req.stderr);
        // A logging container's output goes to its log. Without stdio berthd names the log
        // in its place; a client following it in the foreground through FIFOs gets them
        // served by Berth's shim from the same copy (terminals keep their FIFO alone).
        let fifos = (!req.terminal && logs::writes_json(&runtime))
            .then(|| logs::foreground_fifos(&stdout, &stderr))
            .flatten();
        if let Some(dirs) = &self.logs
            && ((stdout.is_empty() && stderr.is_empty()) || fifos.is_some())
            && let Some(stdio) = dirs.stdio(ns, &c.id, &c.labels, &runtime, req.terminal)?
        {
            let stdio = match fifos {
                Some((out, err)) => stdio.teed(&out, &err),
                None => stdio,
            };
            (stdout, stderr) = (stdio.stdout, stdio.stderr);
        }
        let request = api::CreateTaskRequest {
            rootfs,
            terminal: req.terminal,
            stdin: req.stdin,
            stdout,
            stderr,
            ..Default::default()
        };
        let opts = CreateOpts {
            runtime,
            spec,
            options,
            request,
        };
        let (_, pid) = self.runtime.create(ns, &c.id, opts).await?;
        Ok(CreateTaskResponse {
            container_id: c.id,
            pid,
        })
    }

    /// The options for a shim: the client's, with runc's `root` filled in when they are runc
    /// options (or when there are none).
    fn runtime_options(&self, given: Option<&prost_types::Any>) -> Result<Option<Any>, Error> {
        let root = self.runc_root.display().to_string();
        let mut opts = match given {
            None => Options::new(),
            Some(any) if any.type_url.trim_start_matches('/').ends_with(RUNC_OPTIONS) => {
                Options::parse_from_bytes(&any.value)
                    .map_err(|e| Error::invalid(format!("invalid runc options: {e}")))?
            }
            Some(other) => return Ok(Some(convert::any_to_shim(other))),
        };
        if opts.root.is_empty() {
            opts.root = root;
        }
        let mut any = Any::new();
        any.type_url = given.map_or(RUNC_OPTIONS.to_string(), |a| a.type_url.clone());
        any.value = opts
            .write_to_bytes()
            .map_err(|e| Error::internal(format!("encode runc options: {e}")))?;
        Ok(Some(any))
    }

    /// The state of process `exec_id` (the init process when empty) of `task`.
    pub async fn state(&self, task: &Task, exec_id: &str) -> Result<StateResponse, Error> {
        let req = StateRequest {
            id: task.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        task.call("State", &req).await
    }

    /// Process `exec_id` (the init process when empty) of container `id`.
    pub async fn get(&self, ns: &str, id: &str, exec_id: &str) -> Result<Process, Error> {
        let task = self.task(ns, id).await?;
        Ok(convert::process(id, self.state(&task, exec_id).await?))
    }

    /// The init processes of every task in `ns`, asked of their shims concurrently.
    pub async fn list(&self, ns: &str) -> Vec<Process> {
        let tasks = self.runtime.list(ns).await;
        let states = tasks.iter().map(|t| async move {
            match self.state(t, "").await {
                Ok(s) => Some(convert::process(&t.id, s)),
                Err(e) => {
                    tracing::debug!(id = %t.id, error = %e, "task state");
                    None
                }
            }
        });
        futures::future::join_all(states)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Refuses an exec into a task whose init process has stopped, as containerd does.
    pub async fn check_exec(&self, task: &Task) -> Result<(), Error> {
        let state = self.state(task, "").await?;
        if state.status.value() == Status::STOPPED as i32 {
            return Err(Error::precondition(format!(
                "cannot exec in a stopped state: task {} is stopped",
                task.id
            )));
        }
        Ok(())
    }

    /// Deletes the task of container `id` (refused while it runs).
    pub async fn delete(&self, ns: &str, id: &str) -> Result<crate::runtime::Exit, Error> {
        self.containers.get(ns, id)?;
        self.runtime
            .delete(ns, id)
            .await
            .map_err(|e| e.context("failed to delete task"))
    }

    /// Checkpoints the task of `id`: not supported. Checkpoint images would have to be
    /// stored in the content store, which Berth does not do yet, and a checkpoint that is
    /// taken only to be thrown away would still pause (or stop) the container; so the task is
    /// looked up (NotFound as usual) and left alone.
    pub async fn checkpoint(&self, ns: &str, id: &str) -> Result<(), Error> {
        self.task(ns, id).await?;
        Err(Error::new(
            Kind::NotImplemented,
            "checkpointing tasks is not supported by berthd (no checkpoint images in the \
             content store yet)",
        ))
    }

    /// Statistics of the tasks of `ns` matching `filter` (`id`, `namespace`).
    pub async fn metrics(&self, ns: &str, filter: &Filter) -> Result<Vec<Metric>, Error> {
        let tasks: Vec<Arc<Task>> = self
            .runtime
            .list(ns)
            .await
            .into_iter()
            .filter(|t| filter.matches(&TaskFields(t)))
            .collect();
        let stats = tasks.iter().map(|t| async move {
            let req = StatsRequest {
                id: t.id.clone(),
                ..Default::default()
            };
            let r: Result<StatsResponse, Error> = t.call("Stats", &req).await;
            match r {
                Ok(r) => Ok(Some(Metric {
                    timestamp: Some(Timestamp::now().to_proto()),
                    id: t.id.clone(),
                    data: convert::any_from_shim(r.stats),
                })),
                Err(e) if matches!(e.kind, Kind::NotFound | Kind::Unavailable) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let mut out = Vec::new();
        for m in futures::future::join_all(stats).await {
            out.extend(m?);
        }
        Ok(out)
    }
}

struct TaskFields<'a>(&'a Task);

impl Adaptor for TaskFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [f] if f == "id" => Some(self.0.id.clone()),
            [f] if f == "namespace" => Some(self.0.namespace.clone()),
            _ => None,
        }
    }
}
