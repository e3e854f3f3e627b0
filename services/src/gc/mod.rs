//! Garbage collection on containerd's model: mark from roots, sweep the rest.
//!
//! Roots are images (their targets and label references), leases that have not expired (and
//! the resources they list), objects labelled `containerd.io/gc.root`, and unfinished ingests. From each marked object the collector
//! follows `containerd.io/gc.ref.content.*` and `containerd.io/gc.ref.snapshot.*` labels,
//! except below a lease labelled `containerd.io/gc.flat`. Unmarked content records and expired
//! leases are deleted in one atomic metadata update; then every blob on disk that no namespace
//! records any more is removed, and so are the ingests of namespaces that no longer exist.
//!
//! The [`scheduler`] decides when to collect: shortly after deletions, at start-up, when a
//! lease expires, and at once when a client asks for a synchronous delete.

pub mod labels;
pub mod scheduler;

use std::{
    collections::{BTreeSet, HashSet},
    sync::{Arc, RwLock},
    time::{Instant, SystemTime},
};

use berth_proto::errdefs::Error;

use crate::{
    content::store::LocalStore,
    metadata::{ContentRecord, ImageRecord, Key, LeaseRecord, NamespaceRecord, Store, Update},
};
use labels::Reference;

/// What one collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Content records removed from namespaces.
    pub content_records: usize,
    /// Blobs removed from disk.
    pub blobs: usize,
    /// Expired leases removed.
    pub leases: usize,
    /// Ingests of vanished namespaces removed.
    pub ingests: usize,
    /// The earliest expiry among the leases left, to schedule the next collection.
    pub next_expiry: Option<SystemTime>,
}

/// Mark-and-sweep over the metadata store and the blob store.
pub struct Collector {
    store: Arc<Store>,
    blobs: Arc<LocalStore>,
    /// Held for reading while a blob moves into place and gets its record, and for writing
    /// while the collector removes unrecorded blobs, so neither sees the other half-done.
    gate: Arc<RwLock<()>>,
}

impl Collector {
    /// A collector over `store` and `blobs`, sharing the commit `gate` with the content store.
    pub fn new(store: Arc<Store>, blobs: Arc<LocalStore>, gate: Arc<RwLock<()>>) -> Collector {
        Collector { store, blobs, gate }
    }

    /// Runs one full collection.
    pub fn collect(&self) -> Result<Stats, Error> {
        let started = Instant::now();
        let mut stats = self
            .store
            .update(|u| sweep_metadata(u, SystemTime::now()))?;
        stats.blobs = self.sweep_blobs()?;
        stats.ingests = self.sweep_ingests()?;
        tracing::debug!(?stats, elapsed = ?started.elapsed(), "garbage collection done");
        Ok(stats)
    }

    fn sweep_blobs(&self) -> Result<usize, Error> {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let view = self.store.view();
        let mut recorded = HashSet::new();
        for (ns, _) in view.scan::<NamespaceRecord>(&Key::namespaces())? {
            for (digest, _) in view.scan::<ContentRecord>(&Key::bucket(&ns, "content"))? {
                recorded.insert(digest);
            }
        }
        let mut removed = 0;
        for blob in self.blobs.walk()? {
            if !recorded.contains(&blob.digest.to_string()) {
                match self.blobs.delete(&blob.digest) {
                    Ok(()) => removed += 1,
                    Err(err) => tracing::warn!(digest = %blob.digest, %err, "removing blob"),
                }
            }
        }
        Ok(removed)
    }

    fn sweep_ingests(&self) -> Result<usize, Error> {
        let view = self.store.view();
        let live: HashSet<String> = view
            .scan::<NamespaceRecord>(&Key::namespaces())?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut removed = 0;
        for status in self.blobs.list_all_statuses()? {
            if !live.contains(&status.namespace)
                && self
                    .blobs
                    .abort(&status.namespace, &status.reference)
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// One namespace's objects, marked.
#[derive(Default)]
struct Marks {
    content: HashSet<String>,
}

/// Marks from the roots of every namespace and deletes what is unmarked.
fn sweep_metadata(u: &mut Update<'_>, now: SystemTime) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    for (ns, _) in u.scan::<NamespaceRecord>(&Key::namespaces())? {
        let content: Vec<(String, ContentRecord)> = u.scan(&Key::bucket(&ns, "content"))?;
        let leases: Vec<(String, LeaseRecord)> = u.scan(&Key::bucket(&ns, "leases"))?;
        let mut marks = Marks::default();
        let mut queue: Vec<Reference> = Vec::new();

        for (id, lease) in &leases {
            match labels::expiry(&lease.labels) {
                Some(at) if at <= now => {
                    u.delete(&Key::object(&ns, "leases", id));
                    stats.leases += 1;
                    continue;
                }
                Some(at) => {
                    stats.next_expiry = Some(stats.next_expiry.map_or(at, |n| n.min(at)));
                }
                None => {}
            }
            let flat = lease.labels.contains_key(labels::FLAT);
            for resource in &lease.resources {
                if resource.kind == "content" {
                    if flat {
                        marks.content.insert(resource.id.clone());
                    } else {
                        queue.push(Reference::Content(resource.id.clone()));
                    }
                }
            }
        }
        for (_, image) in u.scan::<ImageRecord>(&Key::bucket(&ns, "images"))? {
            queue.push(Reference::Content(image.target.digest.clone()));
            queue.extend(labels::references(&image.labels));
        }
        for (digest, record) in &content {
            if labels::is_root(&record.labels) {
                queue.push(Reference::Content(digest.clone()));
            }
        }

        let records: std::collections::HashMap<&str, &ContentRecord> =
            content.iter().map(|(d, r)| (d.as_str(), r)).collect();
        while let Some(reference) = queue.pop() {
            // Snapshot references are followed by the snapshotters' own collection.
            if let Reference::Content(digest) = reference
                && marks.content.insert(digest.clone())
                && let Some(record) = records.get(digest.as_str())
            {
                queue.extend(labels::references(&record.labels));
            }
        }

        let doomed: BTreeSet<&String> = content
            .iter()
            .map(|(d, _)| d)
            .filter(|d| !marks.content.contains(*d))
            .collect();
        for digest in doomed {
            u.delete(&Key::object(&ns, "content", digest));
            stats.content_records += 1;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{LeaseResource, Timestamp};

    fn record(labels: &[(&str, &str)]) -> ContentRecord {
        ContentRecord {
            size: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn lease(labels: &[(&str, &str)], content: &[&str]) -> LeaseRecord {
        LeaseRecord {
            created_at: Timestamp::now(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resources: content
                .iter()
                .map(|d| LeaseResource {
                    kind: "content".into(),
                    id: d.to_string(),
                })
                .collect(),
        }
    }

    fn remaining(store: &Store, ns: &str) -> Vec<String> {
        store
            .view()
            .scan::<ContentRecord>(&Key::bucket(ns, "content"))
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect()
    }

    #[test]
    fn keeps_roots_leased_and_referenced_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .update(|u| {
                u.put(&Key::namespace("n"), &NamespaceRecord::default())?;
                let c = |d: &str| Key::object("n", "content", d);
                u.put(
                    &c("root"),
                    &record(&[
                        (labels::ROOT, "x"),
                        ("containerd.io/gc.ref.content.0", "child"),
                    ]),
                )?;
                u.put(
                    &c("child"),
                    &record(&[("containerd.io/gc.ref.content.0", "grandchild")]),
                )?;
                u.put(&c("grandchild"), &record(&[]))?;
                u.put(
                    &c("leased"),
                    &record(&[("containerd.io/gc.ref.content.0", "leasedchild")]),
                )?;
                u.put(&c("leasedchild"), &record(&[]))?;
                u.put(
                    &c("flat"),
                    &record(&[("containerd.io/gc.ref.content.0", "flatchild")]),
                )?;
                u.put(&c("flatchild"), &record(&[]))?;
                u.put(&c("orphan"), &record(&[]))?;
                u.put(&c("expiredonly"), &record(&[]))?;
                u.put(&Key::object("n", "leases", "l"), &lease(&[], &["leased"]))?;
                u.put(
                    &Key::object("n", "leases", "f"),
                    &lease(&[(labels::FLAT, "")], &["flat"]),
                )?;
                u.put(
                    &Key::object("n", "leases", "old"),
                    &lease(
                        &[(labels::EXPIRE, "2000-01-01T00:00:00Z")],
                        &["expiredonly"],
                    ),
                )
            })
            .unwrap();
        let stats = store
            .update(|u| sweep_metadata(u, SystemTime::now()))
            .unwrap();
        let mut left = remaining(&store, "n");
        left.sort();
        assert_eq!(
            left,
            [
                "child",
                "flat",
                "grandchild",
                "leased",
                "leasedchild",
                "root"
            ]
        );
        assert_eq!(stats.content_records, 3);
        assert_eq!(stats.leases, 1);
        let leases: Vec<(String, LeaseRecord)> =
            store.view().scan(&Key::bucket("n", "leases")).unwrap();
        assert_eq!(leases.len(), 2);
    }

    #[test]
    fn reports_next_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .update(|u| {
                u.put(&Key::namespace("n"), &NamespaceRecord::default())?;
                u.put(
                    &Key::object("n", "leases", "later"),
                    &lease(&[(labels::EXPIRE, "2100-01-01T00:00:00Z")], &[]),
                )
            })
            .unwrap();
        let stats = store
            .update(|u| sweep_metadata(u, SystemTime::now()))
            .unwrap();
        assert!(stats.next_expiry.is_some());
    }
}
