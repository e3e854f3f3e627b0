//! Reconnecting to shims after berthd starts again.
//!
//! Every bundle left in the state dir names a task berthd created before it stopped. If its
//! shim still answers for the task, the task is live again (an exit that happened meanwhile
//! is kept by the shim and reported through `State`/`Wait`); otherwise the manager cleans up
//! as after a shim that died.
//!
//! A shim that answers but does not know the task yet was in the middle of `Create` when
//! berthd died (runc can take a while). Cleaning up at once would remove the bundle under the
//! running `runc create` and leave the shim serving nothing forever, so the task is held as
//! being created while the shim gets [`CREATE_SETTLE`] to finish; then it is either live or
//! shut down and cleaned up after.

use std::{path::PathBuf, sync::Arc, time::Duration};

use berth_proto::errdefs::{Error, Kind};
use containerd_shim_protos::{
    api::{ShutdownRequest, StateRequest, StateResponse},
    protobuf::well_known_types::empty::Empty,
};

use super::{Manager, Slot, Task, bundle::Bundle, client::Connection, lock, log};

/// How long a live shim may take to finish a `Create` that berthd did not see the end of.
pub(super) const CREATE_SETTLE: Duration = Duration::from_secs(10);

/// How often such a shim is asked whether the task exists now.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// What restoring one bundle needs to register its task or clean up after it.
struct Found {
    bundle: Bundle,
    binary: Option<PathBuf>,
    log: Option<log::Copier>,
}

impl Manager {
    /// Restores every bundle's task, concurrently.
    pub(super) async fn restore(self: &Arc<Self>) {
        let found = super::bundle::list(&self.settings.state);
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
        let bundle = Bundle::at(&self.settings.state, &self.settings.root, ns, id);
        let log = log::copy(&bundle.log(), ns, id)
            .inspect_err(|e| tracing::warn!(namespace = ns, id, error = %e, "shim log"))
            .ok();
        let binary = bundle.read_binary();
        let found = Found {
            bundle,
            binary,
            log,
        };
        let connected = async {
            let bootstrap = found.bundle.read_bootstrap()?;
            self.connect(&bootstrap).await
        }
        .await;
        let shim = match connected {
            Ok(shim) => shim,
            Err(e) => return self.gone(found, &e).await,
        };
        match task_state(&shim, ns, id).await {
            Ok(()) => self.register(found, shim),
            Err(e) if e.kind == Kind::NotFound => {
                tracing::info!(
                    namespace = ns,
                    id,
                    "shim is still creating the task; waiting for it"
                );
                lock(&self.tasks).insert((ns.to_string(), id.to_string()), Slot::Creating);
                let m = self.clone();
                tokio::spawn(async move { m.settle(found, shim).await });
            }
            Err(e) => self.gone(found, &e).await,
        }
    }

    /// Waits for a live shim to finish creating its task: registers the task once the shim
    /// knows it, or shuts the shim down and cleans up when it does not within
    /// [`CREATE_SETTLE`] (its `Create` failed) or dies meanwhile.
    async fn settle(self: Arc<Self>, found: Found, shim: Arc<Connection>) {
        let (ns, id) = (found.bundle.namespace.clone(), found.bundle.id.clone());
        let deadline = tokio::time::Instant::now() + CREATE_SETTLE;
        let outcome = loop {
            tokio::time::sleep(SETTLE_POLL).await;
            match task_state(&shim, &ns, &id).await {
                Err(e) if e.kind == Kind::NotFound && tokio::time::Instant::now() < deadline => {}
                other => break other,
            }
        };
        let key = (ns.clone(), id.clone());
        match outcome {
            Ok(()) => self.register(found, shim),
            Err(e) => {
                let req = ShutdownRequest {
                    id: id.clone(),
                    ..Default::default()
                };
                let _: Result<Empty, Error> = shim.call(&ns, "Shutdown", &req).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), shim.closed()).await;
                self.gone(found, &e).await;
                let mut tasks = lock(&self.tasks);
                if matches!(tasks.get(&key), Some(Slot::Creating)) {
                    tasks.remove(&key);
                }
            }
        }
    }

    /// Registers the live task of `found`, served by `shim`.
    fn register(&self, found: Found, shim: Arc<Connection>) {
        let task = Task {
            id: found.bundle.id.clone(),
            namespace: found.bundle.namespace.clone(),
            binary: found.binary,
            bundle: found.bundle,
            shim,
            _log: found.log,
        };
        tracing::info!(namespace = %task.namespace, id = %task.id, "task reconnected");
        lock(&self.tasks).insert(
            (task.namespace.clone(), task.id.clone()),
            Slot::Ready(Arc::new(task)),
        );
    }

    /// Cleans up after the task of `found`, whose shim is gone (`why`).
    async fn gone(&self, found: Found, why: &Error) {
        let b = &found.bundle;
        tracing::warn!(namespace = %b.namespace, id = %b.id, error = %why, "shim gone; cleaning up");
        self.cleanup_dead(b, found.binary.as_deref()).await;
        drop(found.log);
    }
}

/// Asks `shim` for the state of task `id`: Ok when it knows the task.
async fn task_state(shim: &Connection, ns: &str, id: &str) -> Result<(), Error> {
    let req = StateRequest {
        id: id.to_string(),
        ..Default::default()
    };
    let _: StateResponse = shim.call(ns, "State", &req).await?;
    Ok(())
}
