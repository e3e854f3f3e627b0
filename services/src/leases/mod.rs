//! Leases: client-held sets of resources that garbage collection must not touch.
//!
//! A lease is created with an id and labels (`containerd.io/gc.expire` makes it expire,
//! `containerd.io/gc.flat` keeps it from protecting what its resources reference). Resources
//! are `content` (a digest), `ingests` (a ref) and `snapshots/<snapshotter>` (a key). Requests
//! that carry a `containerd-lease` header add what they create to that lease.

pub mod grpc;

use std::{collections::HashMap, sync::Arc};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
    filters::{Adaptor, Filter, label_field},
    labels,
};

use crate::{
    gc::{self, scheduler::Scheduler},
    metadata::{Key, LeaseRecord, LeaseResource, Store, Timestamp, Update},
    namespaces,
};

/// The lease manager.
pub struct Leases {
    store: Arc<Store>,
    gc: Scheduler,
}

/// Checks a resource's type and id the way containerd does.
pub fn validate_resource(resource: &LeaseResource) -> Result<(), Error> {
    if resource.id.is_empty() {
        return Err(Error::invalid("resource id must not be empty"));
    }
    match resource.kind.as_str() {
        "content" => Digest::parse(&resource.id).map(|_| ()),
        "ingests" => Ok(()),
        kind => match kind.strip_prefix("snapshots/") {
            Some(snapshotter) if !snapshotter.is_empty() && !snapshotter.contains('/') => Ok(()),
            Some(_) => Err(Error::invalid(format!(
                "invalid snapshot resource type {kind}"
            ))),
            None if kind == "snapshots" => Err(Error::invalid(format!(
                "invalid snapshot resource type {kind}: snapshotter name required"
            ))),
            None => Err(Error::new(
                Kind::NotImplemented,
                format!("resource type {kind} not supported yet: not implemented"),
            )),
        },
    }
}

/// Adds `resource` to lease `id` inside `u`; NotFound if the lease does not exist.
pub fn add_to_lease(
    u: &mut Update<'_>,
    ns: &str,
    id: &str,
    resource: LeaseResource,
) -> Result<(), Error> {
    let key = Key::object(ns, "leases", id);
    let mut lease: LeaseRecord = u
        .get(&key)?
        .ok_or_else(|| Error::not_found(format!("lease {id:?}")))?;
    if lease.resources.insert(resource) {
        u.put(&key, &lease)?;
    }
    Ok(())
}

/// Removes `resource` from lease `id` inside `u`, if both exist.
pub fn remove_from_lease(
    u: &mut Update<'_>,
    ns: &str,
    id: &str,
    resource: &LeaseResource,
) -> Result<(), Error> {
    let key = Key::object(ns, "leases", id);
    if let Some(mut lease) = u.get::<LeaseRecord>(&key)?
        && lease.resources.remove(resource)
    {
        u.put(&key, &lease)?;
    }
    Ok(())
}

struct LeaseFields<'a>(&'a str, &'a LeaseRecord);

impl Adaptor for LeaseFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "id" if path.len() == 1 => Some(self.0.to_string()),
            "labels" => label_field(&self.1.labels, &path[1..]),
            _ => None,
        }
    }
}

impl Leases {
    /// Leases kept in `store`; deletions are reported to `gc`.
    pub fn new(store: Arc<Store>, gc: Scheduler) -> Leases {
        Leases { store, gc }
    }

    /// Creates lease `id` in `ns`.
    pub fn create(
        &self,
        ns: &str,
        id: &str,
        labels: HashMap<String, String>,
    ) -> Result<LeaseRecord, Error> {
        // containerd accepts any non-empty id (its Go client makes ids like `123-Ab_-`); only
        // NUL is refused here, because it separates metadata key parts.
        if id.is_empty() {
            return Err(Error::invalid("lease id must be provided"));
        }
        if id.contains('\0') {
            return Err(Error::invalid(format!("lease id {id:?} contains NUL")));
        }
        labels::validate_all(&labels)?;
        let record = LeaseRecord {
            created_at: Timestamp::now(),
            labels,
            resources: Default::default(),
        };
        self.store.update(|u| {
            let key = Key::object(ns, "leases", id);
            if u.get::<LeaseRecord>(&key)?.is_some() {
                return Err(Error::already_exists(format!("lease {id:?}")));
            }
            namespaces::ensure(u, ns)?;
            u.put(&key, &record)
        })?;
        if let Some(at) = gc::labels::expiry(&record.labels) {
            self.gc.expires_at(at);
        }
        Ok(record)
    }

    /// Deletes lease `id`; with `sync`, waits for the collection that follows.
    pub async fn delete(&self, ns: &str, id: &str, sync: bool) -> Result<(), Error> {
        self.store.update(|u| {
            let key = Key::object(ns, "leases", id);
            if u.get::<LeaseRecord>(&key)?.is_none() {
                return Err(Error::not_found(format!("lease {id:?}")));
            }
            u.delete(&key);
            Ok(())
        })?;
        if sync {
            self.gc.collect_now().await?;
        } else {
            self.gc.deleted();
        }
        Ok(())
    }

    /// The leases of `ns` matching `filter`.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<(String, LeaseRecord)>, Error> {
        Ok(self
            .store
            .view()
            .scan::<LeaseRecord>(&Key::bucket(ns, "leases"))?
            .into_iter()
            .filter(|(id, l)| filter.matches(&LeaseFields(id, l)))
            .collect())
    }

    /// Adds a resource to lease `id`.
    pub fn add_resource(&self, ns: &str, id: &str, resource: LeaseResource) -> Result<(), Error> {
        validate_resource(&resource)?;
        self.store
            .update(|u| add_to_lease(u, ns, id, resource.clone()))
    }

    /// Removes a resource from lease `id`; the resource may then be collected.
    pub fn delete_resource(
        &self,
        ns: &str,
        id: &str,
        resource: LeaseResource,
    ) -> Result<(), Error> {
        validate_resource(&resource)?;
        self.store.update(|u| {
            if u.get::<LeaseRecord>(&Key::object(ns, "leases", id))?
                .is_none()
            {
                return Err(Error::not_found(format!("lease {id:?}")));
            }
            remove_from_lease(u, ns, id, &resource)
        })?;
        self.gc.deleted();
        Ok(())
    }

    /// The resources of lease `id`.
    pub fn list_resources(&self, ns: &str, id: &str) -> Result<Vec<LeaseResource>, Error> {
        let lease: LeaseRecord = self
            .store
            .view()
            .get(&Key::object(ns, "leases", id))?
            .ok_or_else(|| Error::not_found(format!("lease {id:?}")))?;
        Ok(lease.resources.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(kind: &str, id: &str) -> LeaseResource {
        LeaseResource {
            kind: kind.into(),
            id: id.into(),
        }
    }

    #[test]
    fn resources_are_validated_like_containerd() {
        let digest = format!("sha256:{}", "a".repeat(64));
        validate_resource(&res("content", &digest)).unwrap();
        validate_resource(&res("ingests", "ref")).unwrap();
        validate_resource(&res("snapshots/overlayfs", "key")).unwrap();
        assert_eq!(
            validate_resource(&res("content", "x")).unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(
            validate_resource(&res("snapshots", "k")).unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(
            validate_resource(&res("images", "k")).unwrap_err().kind,
            Kind::NotImplemented
        );
        assert_eq!(
            validate_resource(&res("content", "")).unwrap_err().kind,
            Kind::InvalidArgument
        );
    }
}
