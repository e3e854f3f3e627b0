//! Garbage collection on containerd's model: mark from roots, sweep the rest.
//!
//! Roots are images (their targets and label references), containers (their snapshots), leases that have not expired (and
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
    metadata::{
        ContainerRecord, ContentRecord, ImageRecord, Key, LeaseRecord, NamespaceRecord,
        SnapshotRecord, Store, Update,
    },
    snapshots::Snapshotters,
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
    /// Snapshots removed.
    pub snapshots: usize,
    /// The earliest expiry among the leases left, to schedule the next collection.
    pub next_expiry: Option<SystemTime>,
}

/// Mark-and-sweep over the metadata store, the blob store and the snapshotters.
pub struct Collector {
    store: Arc<Store>,
    blobs: Arc<LocalStore>,
    /// Held for reading while a blob moves into place and gets its record, and for writing
    /// while the collector removes unrecorded blobs, so neither sees the other half-done.
    gate: Arc<RwLock<()>>,
    snapshotters: Snapshotters,
    /// Held for reading by snapshot mutations, for writing while snapshots are marked and swept.
    snapshot_gate: Arc<RwLock<()>>,
    /// Whether snapshot directories have been cleaned since start-up.
    cleaned: std::sync::atomic::AtomicBool,
}

impl Collector {
    /// A collector over `store`, `blobs` and `snapshotters`, sharing the content commit `gate`
    /// and the `snapshot_gate` with the services that write them.
    pub fn new(
        store: Arc<Store>,
        blobs: Arc<LocalStore>,
        gate: Arc<RwLock<()>>,
        snapshotters: Snapshotters,
        snapshot_gate: Arc<RwLock<()>>,
    ) -> Collector {
        Collector {
            store,
            blobs,
            gate,
            snapshotters,
            snapshot_gate,
            cleaned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs one full collection.
    pub fn collect(&self) -> Result<Stats, Error> {
        let started = Instant::now();
        let names: Vec<String> = self.snapshotters.keys().cloned().collect();
        let mut stats = {
            let _snapshots = self
                .snapshot_gate
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let (mut stats, doomed) = self
                .store
                .update(|u| sweep_metadata(u, &names, SystemTime::now()))?;
            for (name, key) in doomed {
                let Some(sn) = self.snapshotters.get(&name) else {
                    continue;
                };
                match sn.remove(&key) {
                    Ok(()) => stats.snapshots += 1,
                    Err(err) => tracing::warn!(snapshotter = %name, key, %err, "removing snapshot"),
                }
            }
            // Directories left by these removals, or by a crash before this daemon started,
            // go too: after removals, and once at the first collection.
            let first = !self
                .cleaned
                .swap(true, std::sync::atomic::Ordering::Relaxed);
            if first || stats.snapshots > 0 {
                for (name, sn) in &self.snapshotters {
                    if let Err(err) = sn.cleanup() {
                        tracing::warn!(snapshotter = %name, %err, "snapshot cleanup");
                    }
                }
            }
            stats
        };
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
    /// (snapshotter, namespaced key)
    snapshots: HashSet<(String, String)>,
}

/// Snapshots to remove, as (snapshotter, namespaced key), children before parents.
type Doomed = Vec<(String, String)>;

/// Marks from the roots of every namespace, deletes unmarked records, and returns the
/// unmarked snapshots of `snapshotters` for the caller to remove.
fn sweep_metadata(
    u: &mut Update<'_>,
    snapshotters: &[String],
    now: SystemTime,
) -> Result<(Stats, Doomed), Error> {
    let mut stats = Stats::default();
    let mut doomed: Vec<(usize, String, String)> = Vec::new();
    let mut all_snapshots: Vec<(String, std::collections::HashMap<String, SnapshotRecord>)> =
        Vec::new();
    for name in snapshotters {
        let records = u.scan::<SnapshotRecord>(&Key::snapshots(name))?;
        all_snapshots.push((name.clone(), records.into_iter().collect()));
    }
    for (ns, _) in u.scan::<NamespaceRecord>(&Key::namespaces())? {
        let prefix = format!("{ns}/");
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
                let reference = if resource.kind == "content" {
                    Reference::Content(resource.id.clone())
                } else if let Some(name) = resource.kind.strip_prefix("snapshots/") {
                    Reference::Snapshot {
                        snapshotter: name.to_string(),
                        key: resource.id.clone(),
                    }
                } else {
                    continue;
                };
                if flat {
                    match reference {
                        Reference::Content(d) => {
                            marks.content.insert(d);
                        }
                        Reference::Snapshot { snapshotter, key } => {
                            marks
                                .snapshots
                                .insert((snapshotter, format!("{prefix}{key}")));
                        }
                    }
                } else {
                    queue.push(reference);
                }
            }
        }
        for (_, record) in u.scan::<ContainerRecord>(&Key::bucket(&ns, "containers"))? {
            let container = crate::containers::decode(&record)?;
            if !container.snapshot_key.is_empty() {
                queue.push(Reference::Snapshot {
                    snapshotter: container.snapshotter.clone(),
                    key: container.snapshot_key.clone(),
                });
            }
            queue.extend(labels::references(&container.labels));
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

        for (name, records) in &all_snapshots {
            for (key, record) in records {
                if key.starts_with(&prefix) && labels::is_root(&record.labels) {
                    queue.push(Reference::Snapshot {
                        snapshotter: name.clone(),
                        key: key[prefix.len()..].to_string(),
                    });
                }
            }
        }

        let records: std::collections::HashMap<&str, &ContentRecord> =
            content.iter().map(|(d, r)| (d.as_str(), r)).collect();
        while let Some(reference) = queue.pop() {
            match reference {
                Reference::Content(digest) => {
                    if marks.content.insert(digest.clone())
                        && let Some(record) = records.get(digest.as_str())
                    {
                        queue.extend(labels::references(&record.labels));
                    }
                }
                Reference::Snapshot { snapshotter, key } => {
                    let nkey = format!("{prefix}{key}");
                    let record = all_snapshots
                        .iter()
                        .find(|(n, _)| *n == snapshotter)
                        .and_then(|(_, r)| r.get(&nkey));
                    if marks.snapshots.insert((snapshotter.clone(), nkey))
                        && let Some(record) = record
                    {
                        if let Some(parent) = record.parent.strip_prefix(&prefix) {
                            queue.push(Reference::Snapshot {
                                snapshotter: snapshotter.clone(),
                                key: parent.to_string(),
                            });
                        }
                        queue.extend(labels::references(&record.labels));
                    }
                }
            }
        }
        for (name, records) in &all_snapshots {
            for (key, record) in records {
                if key.starts_with(&prefix)
                    && !marks.snapshots.contains(&(name.clone(), key.clone()))
                {
                    doomed.push((depth(records, record), name.clone(), key.clone()));
                }
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
    // Deepest first, so children go before their parents.
    doomed.sort_by_key(|d| std::cmp::Reverse(d.0));
    Ok((stats, doomed.into_iter().map(|(_, n, k)| (n, k)).collect()))
}

/// How many ancestors `record` has among `records`.
fn depth(
    records: &std::collections::HashMap<String, SnapshotRecord>,
    record: &SnapshotRecord,
) -> usize {
    let mut depth = 0;
    let mut parent = &record.parent;
    while let Some(p) = records.get(parent) {
        depth += 1;
        if depth > records.len() {
            break;
        }
        parent = &p.parent;
    }
    depth
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
        let (stats, _) = store
            .update(|u| sweep_metadata(u, &[], SystemTime::now()))
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
        let (stats, _) = store
            .update(|u| sweep_metadata(u, &[], SystemTime::now()))
            .unwrap();
        assert!(stats.next_expiry.is_some());
    }
}
