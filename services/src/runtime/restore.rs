//! Reconnecting to shims after berthd starts again.
//!
//! Every bundle left in the state dir names a task berthd created before it stopped. If its
//! shim still answers for the task, the task is live again (an exit that happened meanwhile
//! is kept by the shim and reported through `State`/`Wait`); otherwise the manager cleans up
//! as after a shim that died.

use std::sync::Arc;

use berth_proto::errdefs::Error;
use containerd_shim_protos::api::{StateRequest, StateResponse};

use super::{Manager, Slot, Task, bundle, lock, log};

impl Manager {
    /// Restores every bundle's task, concurrently.
    pub(super) async fn restore(self: &Arc<Self>) {
        let found = bundle::list(&self.settings.state);
        if found.is_empty() {
            return;
        }
        tracing::info!(bundles = found.len(), "reconnecting to shims");
        let restores = found.into_iter().map(|(ns, id)| {
            let m = self.clone();
            async move { m.restore_one(&ns, &id).await }
        });
        futures::future::join_all(restores).await;
    }

    async fn restore_one(self: &Arc<Self>, ns: &str, id: &str) {
        let bundle = bundle::Bundle::at(&self.settings.state, &self.settings.root, ns, id);
        let log = log::copy(&bundle.log(), ns, id)
            .inspect_err(|e| tracing::warn!(namespace = ns, id, error = %e, "shim log"))
            .ok();
        let binary = bundle.read_binary();
        let connected = async {
            let bootstrap = bundle.read_bootstrap()?;
            let shim = self.connect(&bootstrap).await?;
            let req = StateRequest {
                id: id.to_string(),
                ..Default::default()
            };
            let _: StateResponse = shim.call(ns, "State", &req).await?;
            Ok::<_, Error>(shim)
        }
        .await;
        match connected {
            Ok(shim) => {
                let task = Task {
                    id: id.to_string(),
                    namespace: ns.to_string(),
                    bundle,
                    binary,
                    shim,
                    _log: log,
                };
                tracing::info!(namespace = ns, id, "task reconnected");
                lock(&self.tasks).insert(
                    (ns.to_string(), id.to_string()),
                    Slot::Ready(Arc::new(task)),
                );
            }
            Err(e) => {
                tracing::warn!(namespace = ns, id, error = %e, "shim gone; cleaning up");
                self.cleanup_dead(&bundle, binary.as_deref()).await;
                drop(log);
            }
        }
    }
}
