//! Creating a task: bundle, shim start, `Create`; on any failure, nothing is left behind.

use std::sync::Arc;

use berth_proto::errdefs::Error;
use containerd_shim_protos::{
    api::{CreateTaskRequest, CreateTaskResponse, DeleteRequest, DeleteResponse, ShutdownRequest},
    protobuf::{Message as _, well_known_types::any::Any, well_known_types::empty::Empty},
};

use super::{Manager, Slot, Task, binary, bundle::Bundle, lock, log};

/// What a task is created from.
pub struct CreateOpts {
    /// Runtime name (`io.containerd.runc.v2`) or shim binary path.
    pub runtime: String,
    /// The OCI spec, JSON.
    pub spec: Vec<u8>,
    /// Runtime options, passed to the shim's `start` and in `Create`.
    pub options: Option<Any>,
    /// The shim request; the manager fills in `id`, `bundle` and `options`.
    pub request: CreateTaskRequest,
}

impl Manager {
    /// Creates the task of container `id` in `ns`; returns it with its pid.
    pub async fn create(
        self: &Arc<Self>,
        ns: &str,
        id: &str,
        opts: CreateOpts,
    ) -> Result<(Arc<Task>, u32), Error> {
        self.ready().await;
        let key = (ns.to_string(), id.to_string());
        {
            let mut tasks = lock(&self.tasks);
            if tasks.contains_key(&key) {
                return Err(Error::already_exists(format!("task {id}")));
            }
            tasks.insert(key.clone(), Slot::Creating);
        }
        let created = self.create_task(ns, id, opts).await;
        let mut tasks = lock(&self.tasks);
        match &created {
            Ok((task, _)) => tasks.insert(key, Slot::Ready(task.clone())),
            Err(_) => tasks.remove(&key),
        };
        created
    }

    async fn create_task(
        self: &Arc<Self>,
        ns: &str,
        id: &str,
        mut opts: CreateOpts,
    ) -> Result<(Arc<Task>, u32), Error> {
        let binary = binary::resolve(&opts.runtime, &self.settings.shims)?;
        let bundle = Bundle::at(&self.settings.state, &self.settings.root, ns, id);
        bundle.create(&opts.spec)?;
        let log = match log::copy(&bundle.log(), ns, id) {
            Ok(log) => log,
            Err(e) => {
                remove(&bundle);
                return Err(e);
            }
        };
        let invocation = self.invocation(&binary, &bundle);
        let stdin = match &opts.options {
            Some(any) => Some(
                any.write_to_bytes()
                    .map_err(|e| Error::internal(format!("encode runtime options: {e}")))?,
            ),
            None => None,
        };
        let started = async {
            let bootstrap = invocation
                .start(stdin)
                .await
                .map_err(|e| e.context("failed to start shim"))?;
            bundle.write_shim(&bootstrap, &binary)?;
            self.connect(&bootstrap).await
        }
        .await;
        let shim = match started {
            Ok(shim) => shim,
            Err(e) => {
                cleanup(&invocation).await;
                remove(&bundle);
                return Err(e);
            }
        };
        opts.request.id = id.to_string();
        opts.request.bundle = bundle.path.display().to_string();
        opts.request.options = opts.options.into();
        let created: Result<CreateTaskResponse, Error> =
            shim.call(ns, "Create", &opts.request).await;
        let pid = match created {
            Ok(r) => r.pid,
            Err(e) => {
                let delete = DeleteRequest {
                    id: id.to_string(),
                    ..Default::default()
                };
                let _: Result<DeleteResponse, Error> = shim.call(ns, "Delete", &delete).await;
                let shutdown = ShutdownRequest {
                    id: id.to_string(),
                    ..Default::default()
                };
                let _: Result<Empty, Error> = shim.call(ns, "Shutdown", &shutdown).await;
                cleanup(&invocation).await;
                remove(&bundle);
                return Err(e.context("failed to create shim task"));
            }
        };
        tracing::debug!(namespace = ns, id, pid, "task created");
        let task = Task {
            id: id.to_string(),
            namespace: ns.to_string(),
            bundle,
            binary: Some(binary.clone()),
            shim,
            _log: Some(log),
        };
        Ok((Arc::new(task), pid))
    }
}

/// Runs the shim's `delete` verb, logging a failure.
pub(super) async fn cleanup(invocation: &binary::Invocation<'_>) -> Option<DeleteResponse> {
    match invocation.delete().await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(id = invocation.id, error = %e, "shim cleanup");
            None
        }
    }
}

/// Removes a bundle, logging a failure.
pub(super) fn remove(bundle: &Bundle) {
    if let Err(e) = bundle.delete() {
        tracing::warn!(bundle = %bundle.path.display(), error = %e, "removing bundle");
    }
}
