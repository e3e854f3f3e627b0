//! Snapshots as clients see them: containerd's `snapshots` service per snapshotter name,
//! namespaced.
//!
//! Each snapshotter (`overlayfs`, `native`) keeps its records in the metadata store
//! ([`meta`]); client keys are stored as `<namespace>/<key>` (namespaces never contain `/`),
//! so a namespace sees only its own snapshots and the same key in two namespaces are two
//! snapshots. Prepare, view and commit under a `containerd-lease` add the snapshot to the
//! lease; every change is announced (`/snapshot/prepare`, `/snapshot/commit`,
//! `/snapshot/remove`). Mutations hold the snapshot gate for reading, so the collector, which
//! holds it for writing, never removes a snapshot that is being created or referenced.

pub mod grpc;
pub mod meta;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use berth_proto::{
    errdefs::{Error, Kind},
    events::{SnapshotCommit, SnapshotPrepare, SnapshotRemove},
    filters::{Adaptor, Filter, label_field},
};
use berth_snapshotter::{
    mount::Mount,
    snapshots::{Info, Snapshotter, Usage},
};

use crate::{
    events::Exchange,
    gc::scheduler::Scheduler,
    leases,
    metadata::{LeaseResource, Store},
    namespaces,
    request::Scope,
};

/// The loaded snapshotters, by name.
pub type Snapshotters = HashMap<String, Arc<dyn Snapshotter>>;

/// Namespaced access to every snapshotter.
pub struct Snapshots {
    snapshotters: Snapshotters,
    store: Arc<Store>,
    exchange: Arc<Exchange>,
    gc: Scheduler,
    gate: Arc<RwLock<()>>,
}

/// The key a snapshotter stores for `key` in namespace `ns`.
pub fn namespaced(ns: &str, key: &str) -> String {
    format!("{ns}/{key}")
}

fn strip(ns: &str, mut info: Info) -> Info {
    let prefix = format!("{ns}/");
    if let Some(n) = info.name.strip_prefix(&prefix) {
        info.name = n.to_string();
    }
    if let Some(p) = info.parent.strip_prefix(&prefix) {
        info.parent = p.to_string();
    }
    info
}

fn check_key(what: &str, key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

struct InfoFields<'a>(&'a Info);

impl Adaptor for InfoFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "name" if path.len() == 1 => Some(self.0.name.clone()),
            "parent" if path.len() == 1 => Some(self.0.parent.clone()),
            "kind" if path.len() == 1 => Some(self.0.kind.as_str().to_string()),
            "labels" => label_field(&self.0.labels, &path[1..]),
            _ => None,
        }
    }
}

impl Snapshots {
    /// Serves `snapshotters`, recording leases in `store`.
    pub fn new(
        snapshotters: Snapshotters,
        store: Arc<Store>,
        exchange: Arc<Exchange>,
        gc: Scheduler,
        gate: Arc<RwLock<()>>,
    ) -> Snapshots {
        Snapshots {
            snapshotters,
            store,
            exchange,
            gc,
            gate,
        }
    }

    /// The snapshotter called `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Snapshotter>, Error> {
        if name.is_empty() {
            return Err(Error::invalid("snapshotter argument missing"));
        }
        self.snapshotters.get(name).ok_or_else(|| {
            Error::new(
                Kind::NotFound,
                format!("snapshotter not loaded: {name}: not found"),
            )
        })
    }

    fn hold(&self, scope: &Scope, snapshotter: &str, key: &str) -> Result<(), Error> {
        self.store.update(|u| {
            namespaces::ensure(u, &scope.namespace)?;
            if let Some(lease) = &scope.lease {
                leases::add_to_lease(
                    u,
                    &scope.namespace,
                    lease,
                    LeaseResource {
                        kind: format!("snapshots/{snapshotter}"),
                        id: key.to_string(),
                    },
                )?;
            }
            Ok(())
        })
    }

    /// Creates an active snapshot `key` on `parent` and returns its mounts.
    pub fn prepare(
        &self,
        scope: &Scope,
        snapshotter: &str,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        self.create(scope, snapshotter, key, parent, labels, false)
    }

    /// Creates a read-only view `key` of `parent` and returns its mounts.
    pub fn view(
        &self,
        scope: &Scope,
        snapshotter: &str,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Error> {
        self.create(scope, snapshotter, key, parent, labels, true)
    }

    fn create(
        &self,
        scope: &Scope,
        snapshotter: &str,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
        view: bool,
    ) -> Result<Vec<Mount>, Error> {
        check_key("key", key)?;
        let sn = self.get(snapshotter)?;
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        self.hold(scope, snapshotter, key)?;
        let ns = &scope.namespace;
        let nparent = if parent.is_empty() {
            String::new()
        } else {
            namespaced(ns, parent)
        };
        let nkey = namespaced(ns, key);
        let mounts = if view {
            sn.view(&nkey, &nparent, labels)?
        } else {
            sn.prepare(&nkey, &nparent, labels)?
        };
        self.exchange.publish(
            ns,
            "/snapshot/prepare",
            &SnapshotPrepare {
                key: key.to_string(),
                parent: parent.to_string(),
                snapshotter: snapshotter.to_string(),
            },
        );
        Ok(mounts)
    }

    /// The mounts of active or view snapshot `key`.
    pub fn mounts(&self, ns: &str, snapshotter: &str, key: &str) -> Result<Vec<Mount>, Error> {
        check_key("key", key)?;
        self.get(snapshotter)?.mounts(&namespaced(ns, key))
    }

    /// Commits active snapshot `key` as `name`.
    pub fn commit(
        &self,
        scope: &Scope,
        snapshotter: &str,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), Error> {
        check_key("name", name)?;
        check_key("key", key)?;
        let sn = self.get(snapshotter)?;
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        self.hold(scope, snapshotter, name)?;
        let ns = &scope.namespace;
        sn.commit(&namespaced(ns, name), &namespaced(ns, key), labels)?;
        if let Some(lease) = &scope.lease {
            let resource = LeaseResource {
                kind: format!("snapshots/{snapshotter}"),
                id: key.to_string(),
            };
            self.store
                .update(|u| leases::remove_from_lease(u, ns, lease, &resource))?;
        }
        self.exchange.publish(
            ns,
            "/snapshot/commit",
            &SnapshotCommit {
                key: key.to_string(),
                name: name.to_string(),
                snapshotter: snapshotter.to_string(),
            },
        );
        Ok(())
    }

    /// Removes snapshot `key` (it must have no children).
    pub fn remove(&self, ns: &str, snapshotter: &str, key: &str) -> Result<(), Error> {
        check_key("key", key)?;
        let sn = self.get(snapshotter)?;
        {
            let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
            sn.remove(&namespaced(ns, key))?;
        }
        self.exchange.publish(
            ns,
            "/snapshot/remove",
            &SnapshotRemove {
                key: key.to_string(),
                snapshotter: snapshotter.to_string(),
            },
        );
        self.gc.deleted();
        Ok(())
    }

    /// The record of `key`, as the namespace names it.
    pub fn stat(&self, ns: &str, snapshotter: &str, key: &str) -> Result<Info, Error> {
        check_key("key", key)?;
        Ok(strip(
            ns,
            self.get(snapshotter)?.stat(&namespaced(ns, key))?,
        ))
    }

    /// Changes the labels of `info.name` by containerd's field paths.
    pub fn update(
        &self,
        ns: &str,
        snapshotter: &str,
        mut info: Info,
        paths: &[String],
    ) -> Result<Info, Error> {
        check_key("name", &info.name)?;
        info.name = namespaced(ns, &info.name);
        if !info.parent.is_empty() {
            info.parent = namespaced(ns, &info.parent);
        }
        Ok(strip(ns, self.get(snapshotter)?.update(info, paths)?))
    }

    /// The namespace's snapshots matching `filter`.
    pub fn list(&self, ns: &str, snapshotter: &str, filter: &Filter) -> Result<Vec<Info>, Error> {
        let prefix = format!("{ns}/");
        let mut out = Vec::new();
        self.get(snapshotter)?.walk(&mut |info| {
            if info.name.starts_with(&prefix) {
                let info = strip(ns, info.clone());
                if filter.matches(&InfoFields(&info)) {
                    out.push(info);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Disk usage of `key` alone.
    pub fn usage(&self, ns: &str, snapshotter: &str, key: &str) -> Result<Usage, Error> {
        check_key("key", key)?;
        self.get(snapshotter)?.usage(&namespaced(ns, key))
    }

    /// Removes directories no snapshot owns any more.
    pub fn cleanup(&self, snapshotter: &str) -> Result<(), Error> {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.get(snapshotter)?.cleanup()
    }
}
