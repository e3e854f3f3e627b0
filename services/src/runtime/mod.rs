//! The runtime manager: shim v2 client.
//!
//! A task is a container brought to life by a shim, a separate process that outlives berthd.
//! The manager owns the path from a container to its shim:
//!
//! 1. [`binary`] turns the container's runtime name into a shim binary and runs its `start`
//!    verb in a fresh [`bundle`]; the shim prints where it listens;
//! 2. [`client`] keeps one ttrpc connection per shim (shared by every task the shim runs) and
//!    sends task API requests under the service name that shim speaks (v2 or v3);
//! 3. [`events`] serves the ttrpc endpoint shims publish `/tasks/*` events to;
//! 4. [`log`] copies each shim's log FIFO into berthd's log.
//!
//! Lifecycle of a task: `create` (bundle, shim start, `Create`) → the tasks service drives it
//! (`Start`, `Kill`, `Exec`, …) → `delete` (`Delete`, `Shutdown`, bundle removed). berthd never
//! kills shims when it stops; on start it reconnects to every bundle's shim ([`restore`]). A
//! shim whose connection closes while it still has tasks is dead: the manager runs its
//! `delete` verb (kill, unmount, runc state), removes the bundle and publishes `/tasks/exit`
//! and `/tasks/delete` itself, as containerd does.

pub mod binary;
pub mod bundle;
pub mod client;
mod create;
mod delete;
pub mod events;
pub mod log;
mod restore;
pub mod task;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex, Weak},
};

use berth_proto::errdefs::{Error, Kind};
use tokio::sync::watch;

pub use create::CreateOpts;
pub use delete::Exit;
pub use task::Task;

use self::{binary::Addresses, client::Connection};
use crate::events::Exchange;

/// Where the manager keeps things and how it finds shims.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bundles: `<state>/io.containerd.runtime.v2.task`.
    pub state: PathBuf,
    /// Work dirs: `<root>/io.containerd.runtime.v2.task`.
    pub root: PathBuf,
    /// runc's state dir for this daemon (`Options.root` of runc shims).
    pub runc_root: PathBuf,
    /// Where shims reach the daemon.
    pub addresses: Addresses,
    /// Runtime name → shim binary overrides.
    pub shims: BTreeMap<String, PathBuf>,
}

type Key = (String, String);

enum Slot {
    /// Reserved while its shim starts.
    Creating,
    Ready(Arc<Task>),
}

/// The runtime manager.
pub struct Manager {
    settings: Settings,
    exchange: Arc<Exchange>,
    tasks: Mutex<HashMap<Key, Slot>>,
    connections: Mutex<HashMap<String, Weak<Connection>>>,
    ready: watch::Receiver<bool>,
    events: Mutex<Option<containerd_shim_protos::ttrpc::r#async::Server>>,
}

fn task_not_found(id: &str) -> Error {
    Error::new(Kind::NotFound, format!("task {id} not found"))
}

impl Manager {
    /// Starts the manager: binds the shims' events socket, then, in the background, serves it
    /// and reconnects to the shims of existing bundles. Requests wait until that is done.
    pub fn start(settings: Settings, exchange: Arc<Exchange>) -> Result<Arc<Manager>, Error> {
        for dir in [&settings.state, &settings.root, &settings.runc_root] {
            std::fs::create_dir_all(dir).map_err(|e| {
                berth_proto::errdefs::io_error(format!("create {}", dir.display()), e)
            })?;
        }
        let listener = events::bind(&settings.addresses.ttrpc)?;
        let (done, ready) = watch::channel(false);
        let manager = Arc::new(Manager {
            settings,
            exchange,
            tasks: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            ready,
            events: Mutex::new(None),
        });
        let m = manager.clone();
        tokio::spawn(async move {
            match events::serve(listener, m.exchange.clone()).await {
                Ok(server) => *lock(&m.events) = Some(server),
                Err(e) => tracing::error!(error = %e, "shim events endpoint"),
            }
            m.restore().await;
            done.send_replace(true);
        });
        Ok(manager)
    }

    async fn ready(&self) {
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// The task of container `id` in `ns`.
    pub async fn get(&self, ns: &str, id: &str) -> Result<Arc<Task>, Error> {
        self.ready().await;
        match lock(&self.tasks).get(&(ns.to_string(), id.to_string())) {
            Some(Slot::Ready(t)) => Ok(t.clone()),
            _ => Err(task_not_found(id)),
        }
    }

    /// Whether container `id` of `ns` has a task (or one being created).
    pub async fn exists(&self, ns: &str, id: &str) -> bool {
        self.ready().await;
        lock(&self.tasks).contains_key(&(ns.to_string(), id.to_string()))
    }

    /// Every task of `ns`.
    pub async fn list(&self, ns: &str) -> Vec<Arc<Task>> {
        self.ready().await;
        lock(&self.tasks)
            .iter()
            .filter_map(|((n, _), slot)| match slot {
                Slot::Ready(t) if n == ns => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// The connection to the shim at `bootstrap`'s address: the live one shared with other
    /// tasks, or a new one watched for closing.
    async fn connect(
        self: &Arc<Self>,
        bootstrap: &binary::Bootstrap,
    ) -> Result<Arc<Connection>, Error> {
        if let Some(conn) = lock(&self.connections)
            .get(&bootstrap.address)
            .and_then(Weak::upgrade)
        {
            return Ok(conn);
        }
        let conn = Arc::new(Connection::connect(&bootstrap.address, bootstrap.protocol).await?);
        lock(&self.connections).insert(bootstrap.address.clone(), Arc::downgrade(&conn));
        let (manager, weak, closed) = (Arc::downgrade(self), Arc::downgrade(&conn), conn.closed());
        tokio::spawn(async move {
            closed.await;
            if let Some(m) = manager.upgrade() {
                m.shim_closed(weak).await;
            }
        });
        Ok(conn)
    }

    /// Removes `task` from the registry if it is still the one registered.
    fn forget(&self, task: &Arc<Task>) {
        let key = (task.namespace.clone(), task.id.clone());
        let mut tasks = lock(&self.tasks);
        if matches!(tasks.get(&key), Some(Slot::Ready(t)) if Arc::ptr_eq(t, task)) {
            tasks.remove(&key);
        }
    }
}

/// Locks `m`, recovering from a panicked holder (the maps stay consistent per operation).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
