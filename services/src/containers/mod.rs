//! Containers: metadata records tying an id to an image, a snapshot, a runtime and an OCI
//! spec. Running them is the tasks service's job; a container without a task is just a record.
//!
//! Records keep containerd's `Container` message whole (spec and extensions are `Any`s the
//! daemon does not need to understand). Containers are roots for garbage collection: their
//! snapshot stays, and so does what their labels reference.

pub mod grpc;

use std::sync::Arc;

use base64::Engine as _;
use berth_proto::{
    errdefs::Error,
    events::{ContainerCreate, ContainerDelete, ContainerUpdate, container_create},
    filters::{Adaptor, Filter, label_field},
    labels,
    services::v1::Container,
};
use prost::Message as _;

use crate::{
    events::Exchange,
    gc::scheduler::Scheduler,
    identifiers,
    logs::LogDirs,
    metadata::{ContainerRecord, Key, Store, Timestamp},
    namespaces,
};

/// The container store.
pub struct Containers {
    store: Arc<Store>,
    exchange: Arc<Exchange>,
    gc: Scheduler,
    logs: Option<LogDirs>,
}

/// Encodes a container for the metadata store.
pub fn encode(c: &Container) -> ContainerRecord {
    ContainerRecord {
        proto: base64::engine::general_purpose::STANDARD.encode(c.encode_to_vec()),
    }
}

/// Decodes a stored container.
pub fn decode(r: &ContainerRecord) -> Result<Container, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&r.proto)
        .map_err(|e| Error::internal(format!("corrupt container record: {e}")))?;
    Container::decode(bytes.as_slice())
        .map_err(|e| Error::internal(format!("corrupt container record: {e}")))
}

/// Checks a container the way containerd's metadata store does.
pub fn validate(c: &Container) -> Result<(), Error> {
    identifiers::validate(&c.id).map_err(|e| e.context("container.ID"))?;
    labels::validate_all(&c.labels).map_err(|e| e.context("containers.Labels"))?;
    for k in c.extensions.keys() {
        if k.is_empty() {
            return Err(Error::invalid("extension keys must not be empty"));
        }
    }
    if c.runtime.as_ref().is_none_or(|r| r.name.is_empty()) {
        return Err(Error::invalid("container.Runtime.Name must be set"));
    }
    if c.spec.is_none() {
        return Err(Error::invalid("container.Spec must be set"));
    }
    if !c.snapshot_key.is_empty() && c.snapshotter.is_empty() {
        return Err(Error::invalid(
            "container.Snapshotter must be set if container.SnapshotKey is set",
        ));
    }
    Ok(())
}

struct ContainerFields<'a>(&'a Container);

impl Adaptor for ContainerFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let c = self.0;
        match path.first().map(String::as_str)? {
            "id" if path.len() == 1 => Some(c.id.clone()),
            "image" if path.len() == 1 => Some(c.image.clone()),
            "snapshotter" if path.len() == 1 => Some(c.snapshotter.clone()),
            "snapshotkey" | "snapshot_key" if path.len() == 1 => Some(c.snapshot_key.clone()),
            "sandbox" if path.len() == 1 => Some(c.sandbox.clone()),
            "runtime" => match path.get(1).map(String::as_str)? {
                "name" if path.len() == 2 => c.runtime.as_ref().map(|r| r.name.clone()),
                _ => None,
            },
            "labels" => label_field(&c.labels, &path[1..]),
            _ => None,
        }
    }
}

fn not_found(id: &str, ns: &str) -> Error {
    Error::not_found(format!("container {id:?} in namespace {ns:?}"))
}

impl Containers {
    /// Containers kept in `store`, announced on `exchange`, collected by `gc`.
    pub fn new(store: Arc<Store>, exchange: Arc<Exchange>, gc: Scheduler) -> Containers {
        Containers {
            store,
            exchange,
            gc,
            logs: None,
        }
    }

    /// Removes each deleted container's logs from `logs`.
    pub fn with_logs(mut self, logs: LogDirs) -> Containers {
        self.logs = Some(logs);
        self
    }

    /// The container `id` of `ns`.
    pub fn get(&self, ns: &str, id: &str) -> Result<Container, Error> {
        identifiers::validate(id).map_err(|e| e.context("container.ID"))?;
        let record: ContainerRecord = self
            .store
            .view()
            .get(&Key::object(ns, "containers", id))?
            .ok_or_else(|| not_found(id, ns))?;
        decode(&record)
    }

    /// The containers of `ns` matching `filter`.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<Container>, Error> {
        let mut out = Vec::new();
        for (_, r) in self
            .store
            .view()
            .scan::<ContainerRecord>(&Key::bucket(ns, "containers"))?
        {
            let c = decode(&r)?;
            if filter.matches(&ContainerFields(&c)) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Creates `c` in `ns`.
    pub fn create(&self, ns: &str, mut c: Container) -> Result<Container, Error> {
        validate(&c)?;
        let now = Some(Timestamp::now().to_proto());
        c.created_at = now;
        c.updated_at = now;
        self.store.update(|u| {
            let key = Key::object(ns, "containers", &c.id);
            if u.get::<ContainerRecord>(&key)?.is_some() {
                return Err(Error::already_exists(format!("container {:?}", c.id)));
            }
            namespaces::ensure(u, ns)?;
            u.put(&key, &encode(&c))
        })?;
        self.exchange.publish(
            ns,
            "/containers/create",
            &ContainerCreate {
                id: c.id.clone(),
                image: c.image.clone(),
                runtime: c.runtime.as_ref().map(|r| container_create::Runtime {
                    name: r.name.clone(),
                    options: r.options.clone(),
                }),
            },
        );
        Ok(c)
    }

    /// Updates `c` in `ns` by containerd's field paths (every mutable field when empty).
    pub fn update(&self, ns: &str, c: Container, paths: &[String]) -> Result<Container, Error> {
        let id = c.id.clone();
        let updated = self.store.update(|u| {
            let key = Key::object(ns, "containers", &id);
            let record: ContainerRecord = u.get(&key)?.ok_or_else(|| not_found(&id, ns))?;
            let mut current = decode(&record)?;
            if paths.is_empty() {
                if c.runtime.as_ref().map(|r| &r.name) != current.runtime.as_ref().map(|r| &r.name)
                {
                    return Err(Error::invalid("container.Runtime field is immutable"));
                }
                if c.snapshotter != current.snapshotter {
                    return Err(Error::invalid("container.Snapshotter field is immutable"));
                }
                current.labels = c.labels.clone();
                current.spec = c.spec.clone();
                current.extensions = c.extensions.clone();
                current.image = c.image.clone();
                current.snapshot_key = c.snapshot_key.clone();
            }
            for path in paths {
                if let Some(k) = path.strip_prefix("labels.") {
                    match c.labels.get(k) {
                        Some(v) if !v.is_empty() => {
                            current.labels.insert(k.to_string(), v.clone());
                        }
                        _ => {
                            current.labels.remove(k);
                        }
                    }
                    continue;
                }
                if let Some(k) = path.strip_prefix("extensions.") {
                    match c.extensions.get(k) {
                        Some(v) => current.extensions.insert(k.to_string(), v.clone()),
                        None => current.extensions.remove(k),
                    };
                    continue;
                }
                match path.as_str() {
                    "labels" => current.labels = c.labels.clone(),
                    "spec" => current.spec = c.spec.clone(),
                    "extensions" => current.extensions = c.extensions.clone(),
                    "image" => current.image = c.image.clone(),
                    "snapshotkey" => current.snapshot_key = c.snapshot_key.clone(),
                    _ => {
                        return Err(Error::invalid(format!(
                            "cannot update {path:?} field on {id:?}: invalid argument"
                        )));
                    }
                }
            }
            validate(&current)?;
            current.updated_at = Some(Timestamp::now().to_proto());
            u.put(&key, &encode(&current))?;
            Ok(current)
        })?;
        self.exchange.publish(
            ns,
            "/containers/update",
            &ContainerUpdate {
                id: updated.id.clone(),
                image: updated.image.clone(),
                labels: updated.labels.clone(),
                snapshot_key: updated.snapshot_key.clone(),
            },
        );
        Ok(updated)
    }

    /// Deletes `id` from `ns`; its snapshot becomes collectable unless held otherwise.
    pub fn delete(&self, ns: &str, id: &str) -> Result<(), Error> {
        self.store.update(|u| {
            let key = Key::object(ns, "containers", id);
            if u.get::<ContainerRecord>(&key)?.is_none() {
                return Err(not_found(id, ns));
            }
            u.delete(&key);
            Ok(())
        })?;
        if let Some(logs) = &self.logs
            && let Err(e) = logs.remove(ns, id)
        {
            tracing::warn!(namespace = ns, id, error = %e, "container logs left behind");
        }
        self.exchange.publish(
            ns,
            "/containers/delete",
            &ContainerDelete { id: id.to_string() },
        );
        self.gc.deleted();
        Ok(())
    }
}
