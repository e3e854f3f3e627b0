//! Namespaces: the tenancy boundary of every object berthd keeps.
//!
//! A namespace comes into being when it is created explicitly or when anything is first
//! written into it (as in containerd). It can be deleted only when it holds no images, blobs,
//! containers or snapshots; its leases and unfinished ingests go with it.

pub mod grpc;

use std::{collections::HashMap, sync::Arc};

use berth_proto::{
    errdefs::Error,
    events::{NamespaceCreate, NamespaceDelete, NamespaceUpdate},
    labels,
};

use crate::{
    events::Exchange,
    identifiers,
    metadata::{Key, NamespaceRecord, Store, Update},
};

/// The buckets whose contents keep a namespace alive, with the names containerd reports.
/// (Snapshots, kept per snapshotter as `<ns>/<key>`, are checked by [`has_snapshots`].)
pub const BLOCKING_BUCKETS: &[(&str, &str)] = &[
    ("images", "images"),
    ("content", "blobs"),
    ("containers", "containers"),
];

/// Whether any snapshotter holds a snapshot of namespace `ns`.
fn has_snapshots(u: &Update<'_>, ns: &str) -> Result<bool, Error> {
    let prefix = format!("{ns}/");
    for (snapshotter, _) in u.scan::<serde_json::Value>(&Key::snapshotters())? {
        let records = u.scan::<serde_json::Value>(&Key::snapshots(&snapshotter))?;
        if records.iter().any(|(key, _)| key.starts_with(&prefix)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates the record of `ns` inside `u` if it does not exist yet; true when it was created.
pub fn ensure(u: &mut Update<'_>, ns: &str) -> Result<bool, Error> {
    let key = Key::namespace(ns);
    if u.get::<NamespaceRecord>(&key)?.is_some() {
        return Ok(false);
    }
    u.put(&key, &NamespaceRecord::default())?;
    Ok(true)
}

/// The namespace store.
pub struct Namespaces {
    store: Arc<Store>,
    exchange: Arc<Exchange>,
}

/// A label change requested by an update.
pub enum LabelUpdate {
    /// Replace every label with these.
    ReplaceAll(HashMap<String, String>),
    /// Set (or, with an empty value, remove) each of these keys.
    Keys(Vec<(String, String)>),
}

impl Namespaces {
    /// Namespaces kept in `store`, announced on `exchange`.
    pub fn new(store: Arc<Store>, exchange: Arc<Exchange>) -> Namespaces {
        Namespaces { store, exchange }
    }

    /// Creates `name`; AlreadyExists if it exists.
    pub fn create(&self, name: &str, labels: HashMap<String, String>) -> Result<(), Error> {
        identifiers::validate(name).map_err(|e| e.context("namespace"))?;
        labels::validate_all(&labels)?;
        self.store.update(|u| {
            let key = Key::namespace(name);
            if u.get::<NamespaceRecord>(&key)?.is_some() {
                return Err(Error::already_exists(format!("namespace {name:?}")));
            }
            u.put(
                &key,
                &NamespaceRecord {
                    labels: labels.clone(),
                },
            )
        })?;
        self.exchange.publish(
            name,
            "/namespaces/create",
            &NamespaceCreate {
                name: name.to_string(),
                labels,
            },
        );
        Ok(())
    }

    /// The labels of `name`; NotFound if it does not exist.
    pub fn get(&self, name: &str) -> Result<NamespaceRecord, Error> {
        identifiers::validate(name).map_err(|e| e.context("namespace"))?;
        self.store
            .view()
            .get(&Key::namespace(name))?
            .ok_or_else(|| Error::not_found(format!("namespace {name:?}")))
    }

    /// Every namespace with its labels, by name.
    pub fn list(&self) -> Result<Vec<(String, NamespaceRecord)>, Error> {
        self.store.view().scan(&Key::namespaces())
    }

    /// Applies `change` to the labels of `name` (creating it if needed, as containerd does).
    pub fn update(&self, name: &str, change: LabelUpdate) -> Result<NamespaceRecord, Error> {
        identifiers::validate(name).map_err(|e| e.context("namespace"))?;
        let record = self.store.update(|u| {
            let key = Key::namespace(name);
            let mut record: NamespaceRecord = u.get(&key)?.unwrap_or_default();
            match &change {
                LabelUpdate::ReplaceAll(labels) => {
                    labels::validate_all(labels)?;
                    record.labels = labels.clone();
                }
                LabelUpdate::Keys(keys) => {
                    for (k, v) in keys {
                        if v.is_empty() {
                            record.labels.remove(k);
                        } else {
                            labels::validate(k, v)?;
                            record.labels.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            u.put(&key, &record)?;
            Ok(record)
        })?;
        self.exchange.publish(
            name,
            "/namespaces/update",
            &NamespaceUpdate {
                name: name.to_string(),
                labels: record.labels.clone(),
            },
        );
        Ok(record)
    }

    /// Deletes `name` if it holds nothing that keeps it alive; its leases go with it, and the
    /// garbage collector removes its unfinished ingests.
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        identifiers::validate(name).map_err(|e| e.context("namespace"))?;
        self.store.update(|u| {
            if u.get::<NamespaceRecord>(&Key::namespace(name))?.is_none() {
                return Err(Error::not_found(format!("namespace {name:?}")));
            }
            let mut remaining = Vec::new();
            for (bucket, shown) in BLOCKING_BUCKETS {
                if u.any_under(&Key::bucket(name, bucket))? {
                    remaining.push(*shown);
                }
            }
            if has_snapshots(u, name)? {
                remaining.push("snapshots");
            }
            if !remaining.is_empty() {
                return Err(Error::precondition(format!(
                    "namespace {name:?} must be empty, but it still has {}: failed precondition",
                    remaining.join(", ")
                )));
            }
            u.delete(&Key::namespace(name));
            u.delete_under(&Key::namespace_objects(name))
        })?;
        self.exchange.publish(
            name,
            "/namespaces/delete",
            &NamespaceDelete {
                name: name.to_string(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ContentRecord;
    use berth_proto::errdefs::Kind;

    fn namespaces() -> (tempfile::TempDir, Arc<Store>, Namespaces) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let ns = Namespaces::new(store.clone(), Arc::new(Exchange::new()));
        (dir, store, ns)
    }

    #[test]
    fn create_get_update_delete() {
        let (_d, _s, ns) = namespaces();
        ns.create("a", HashMap::from([("k".into(), "v".into())]))
            .unwrap();
        assert_eq!(
            ns.create("a", HashMap::new()).unwrap_err().kind,
            Kind::AlreadyExists
        );
        assert_eq!(ns.get("a").unwrap().labels["k"], "v");
        let r = ns
            .update(
                "a",
                LabelUpdate::Keys(vec![("k".into(), String::new()), ("x".into(), "y".into())]),
            )
            .unwrap();
        assert_eq!(r.labels, HashMap::from([("x".into(), "y".into())]));
        ns.delete("a").unwrap();
        assert_eq!(ns.get("a").unwrap_err().kind, Kind::NotFound);
        assert_eq!(ns.delete("a").unwrap_err().kind, Kind::NotFound);
    }

    #[test]
    fn delete_refuses_namespace_with_blobs() {
        let (_d, store, ns) = namespaces();
        ns.create("full", HashMap::new()).unwrap();
        store
            .update(|u| {
                u.put(
                    &Key::object("full", "content", "sha256:00"),
                    &ContentRecord {
                        size: 1,
                        created_at: Default::default(),
                        updated_at: Default::default(),
                        labels: HashMap::new(),
                    },
                )
            })
            .unwrap();
        let err = ns.delete("full").unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        assert!(err.message.contains("still has blobs"), "{}", err.message);
    }

    #[test]
    fn delete_refuses_namespace_with_snapshots() {
        let (_d, store, ns) = namespaces();
        ns.create("snappy", HashMap::new()).unwrap();
        ns.create("snap", HashMap::new()).unwrap();
        store
            .update(|u| {
                u.put(
                    &Key::snapshot("overlayfs", "snappy/k"),
                    &serde_json::json!({}),
                )
            })
            .unwrap();
        let err = ns.delete("snappy").unwrap_err();
        assert!(
            err.message.contains("still has snapshots"),
            "{}",
            err.message
        );
        // A namespace whose name is a prefix of another's is not confused with it.
        ns.delete("snap").unwrap();
    }

    #[test]
    fn invalid_names_are_rejected() {
        let (_d, _s, ns) = namespaces();
        assert_eq!(
            ns.create("../x", HashMap::new()).unwrap_err().kind,
            Kind::InvalidArgument
        );
        let big = HashMap::from([("k".into(), "v".repeat(5000))]);
        assert_eq!(
            ns.create("ok", big).unwrap_err().kind,
            Kind::InvalidArgument
        );
    }
}
