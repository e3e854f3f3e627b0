//! The content store as clients see it: blobs shared on disk, visible per namespace.
//!
//! [`store`] keeps the bytes (`blobs/sha256/<hex>`) and the unfinished ingests; this module
//! adds the per-namespace records (size, timestamps, labels) in the metadata store, lease
//! bookkeeping, events and garbage collection. A blob enters a namespace when a writer in that
//! namespace commits it — if the bytes are already on disk (another namespace has them) the
//! writer is satisfied at once and the commit only adds the record. Deleting removes the
//! record; the collector removes the bytes once no namespace records them.

pub mod grpc;
pub mod ingest;
pub mod store;

use std::{
    collections::HashMap,
    fs::File,
    sync::{Arc, RwLock},
    time::SystemTime,
};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
    events::{ContentCreate, ContentDelete},
    filters::{Adaptor, Filter, label_field},
    labels,
};

use crate::{
    events::Exchange,
    gc::scheduler::Scheduler,
    leases,
    metadata::{ContentRecord, Key, LeaseResource, NamespaceRecord, Store, Timestamp},
    namespaces,
    request::Scope,
};
use ingest::IngestWriter;
use store::{IngestStatus, LocalStore};

/// Namespaced content: records in the metadata store over a shared [`LocalStore`].
pub struct Content {
    store: Arc<Store>,
    blobs: Arc<LocalStore>,
    exchange: Arc<Exchange>,
    gc: Scheduler,
    gate: Arc<RwLock<()>>,
}

/// How a label update applies (containerd's field-mask rules).
pub enum LabelUpdate {
    /// No paths, or `labels`: replace the whole set.
    ReplaceAll(HashMap<String, String>),
    /// `labels.<key>` paths: set each key, or remove it when the value is empty.
    Keys(Vec<(String, String)>),
}

struct ContentFields<'a>(&'a str, &'a ContentRecord);

impl Adaptor for ContentFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "digest" if path.len() == 1 => Some(self.0.to_string()),
            "size" if path.len() == 1 => Some(self.1.size.to_string()),
            "labels" => label_field(&self.1.labels, &path[1..]),
            _ => None,
        }
    }
}

struct StatusFields<'a>(&'a IngestStatus);

impl Adaptor for StatusFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [f] if f == "ref" => Some(self.0.reference.clone()),
            _ => None,
        }
    }
}

impl Content {
    /// Content over `blobs`, recorded in `store`; `gate` is shared with the collector.
    pub fn new(
        store: Arc<Store>,
        blobs: Arc<LocalStore>,
        exchange: Arc<Exchange>,
        gc: Scheduler,
        gate: Arc<RwLock<()>>,
    ) -> Content {
        Content {
            store,
            blobs,
            exchange,
            gc,
            gate,
        }
    }

    /// The record of `digest` in `ns`; NotFound when the namespace does not hold it.
    pub fn info(&self, ns: &str, digest: &Digest) -> Result<ContentRecord, Error> {
        self.store
            .view()
            .get(&Key::object(ns, "content", &digest.to_string()))?
            .ok_or_else(|| Error::not_found(format!("content digest {digest}")))
    }

    /// Changes the labels of `digest` in `ns`.
    pub fn update(
        &self,
        ns: &str,
        digest: &Digest,
        change: LabelUpdate,
    ) -> Result<ContentRecord, Error> {
        self.store.update(|u| {
            let key = Key::object(ns, "content", &digest.to_string());
            let mut record: ContentRecord = u
                .get(&key)?
                .ok_or_else(|| Error::not_found(format!("content digest {digest}")))?;
            match &change {
                LabelUpdate::ReplaceAll(l) => {
                    labels::validate_all(l)?;
                    record.labels = l.clone();
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
            record.updated_at = Timestamp::now();
            u.put(&key, &record)?;
            Ok(record)
        })
    }

    /// The blobs of `ns` matching `filter`, by digest.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<(String, ContentRecord)>, Error> {
        Ok(self
            .store
            .view()
            .scan::<ContentRecord>(&Key::bucket(ns, "content"))?
            .into_iter()
            .filter(|(d, r)| filter.matches(&ContentFields(d, r)))
            .collect())
    }

    /// Removes `digest` from `ns`; the bytes go at the next collection if nothing else holds them.
    pub fn delete(&self, ns: &str, digest: &Digest) -> Result<(), Error> {
        self.store.update(|u| {
            let key = Key::object(ns, "content", &digest.to_string());
            if u.get::<ContentRecord>(&key)?.is_none() {
                return Err(Error::not_found(format!("content digest {digest}")));
            }
            u.delete(&key);
            Ok(())
        })?;
        self.exchange.publish(
            ns,
            "/content/delete",
            &ContentDelete {
                digest: digest.to_string(),
            },
        );
        self.gc.deleted();
        Ok(())
    }

    /// Opens the bytes of `digest` as `ns` sees it, with their size.
    pub fn reader(&self, ns: &str, digest: &Digest) -> Result<(File, i64), Error> {
        let record = self.info(ns, digest)?;
        let file = self.blobs.reader(digest)?;
        Ok((file, record.size))
    }

    /// The file an ingest of `ns` writes to (see [`LocalStore::ingest_data_path`]).
    pub fn ingest_data_path(&self, ns: &str, reference: &str) -> std::path::PathBuf {
        self.blobs.ingest_data_path(ns, reference)
    }

    /// The unfinished ingest `reference` of `ns`.
    pub fn status(&self, ns: &str, reference: &str) -> Result<IngestStatus, Error> {
        self.blobs.status(ns, reference)
    }

    /// The unfinished ingests of `ns` matching `filter` (field `ref`).
    pub fn list_statuses(&self, ns: &str, filter: &Filter) -> Result<Vec<IngestStatus>, Error> {
        Ok(self
            .blobs
            .list_statuses(ns)?
            .into_iter()
            .filter(|s| filter.matches(&StatusFields(s)))
            .collect())
    }

    /// Drops the unfinished ingest `reference` of `ns`.
    pub fn abort(&self, scope: &Scope, reference: &str) -> Result<(), Error> {
        self.blobs.abort(&scope.namespace, reference)?;
        if let Some(lease) = &scope.lease {
            let resource = LeaseResource {
                kind: "ingests".into(),
                id: reference.to_string(),
            };
            self.store
                .update(|u| leases::remove_from_lease(u, &scope.namespace, lease, &resource))?;
        }
        Ok(())
    }

    /// Opens a writer for `reference` in the request's scope.
    ///
    /// With an expected digest the namespace already holds: AlreadyExists. With one whose bytes
    /// another namespace holds (and a matching or unknown size): a writer that is already
    /// complete, whose commit only records the blob here.
    pub fn writer(
        self: &Arc<Self>,
        scope: &Scope,
        reference: &str,
        total: i64,
        expected: Option<Digest>,
    ) -> Result<Writer, Error> {
        if reference.is_empty() {
            return Err(Error::invalid("ref must not be empty"));
        }
        if total < 0 {
            return Err(Error::invalid(format!("invalid total size {total}")));
        }
        if let Some(d) = &expected {
            if self.info(&scope.namespace, d).is_ok() {
                return Err(Error::already_exists(format!("content {d}")));
            }
            if let Ok(blob) = self.blobs.info(d)
                && (total == 0 || total == blob.size)
            {
                return Ok(Writer {
                    content: self.clone(),
                    scope: scope.clone(),
                    reference: reference.to_string(),
                    state: State::Shared {
                        digest: d.clone(),
                        size: blob.size,
                        started_at: SystemTime::now(),
                    },
                });
            }
        }
        // The ingest makes the namespace exist (as in containerd), so the collector keeps it.
        let ns_key = Key::namespace(&scope.namespace);
        let known = self.store.view().get::<NamespaceRecord>(&ns_key)?.is_some();
        if !known || scope.lease.is_some() {
            self.store.update(|u| {
                namespaces::ensure(u, &scope.namespace)?;
                if let Some(lease) = &scope.lease {
                    let resource = LeaseResource {
                        kind: "ingests".into(),
                        id: reference.to_string(),
                    };
                    leases::add_to_lease(u, &scope.namespace, lease, resource)?;
                }
                Ok(())
            })?;
        }
        let ingest = self
            .blobs
            .writer(&scope.namespace, reference, total, expected)?;
        Ok(Writer {
            content: self.clone(),
            scope: scope.clone(),
            reference: reference.to_string(),
            state: State::Ingest(Box::new(ingest)),
        })
    }

    /// Records a committed blob in the writer's namespace (and lease), under the gate.
    fn record(
        &self,
        scope: &Scope,
        reference: &str,
        digest: &Digest,
        size: i64,
        labels: HashMap<String, String>,
    ) -> Result<(), Error> {
        let now = Timestamp::now();
        self.store.update(|u| {
            let key = Key::object(&scope.namespace, "content", &digest.to_string());
            if u.get::<ContentRecord>(&key)?.is_some() {
                return Err(Error::already_exists(format!("content {digest}")));
            }
            namespaces::ensure(u, &scope.namespace)?;
            u.put(
                &key,
                &ContentRecord {
                    size,
                    created_at: now,
                    updated_at: now,
                    labels: labels.clone(),
                },
            )?;
            if let Some(lease) = &scope.lease {
                leases::add_to_lease(
                    u,
                    &scope.namespace,
                    lease,
                    LeaseResource {
                        kind: "content".into(),
                        id: digest.to_string(),
                    },
                )?;
                leases::remove_from_lease(
                    u,
                    &scope.namespace,
                    lease,
                    &LeaseResource {
                        kind: "ingests".into(),
                        id: reference.to_string(),
                    },
                )?;
            }
            Ok(())
        })?;
        self.exchange.publish(
            &scope.namespace,
            "/content/create",
            &ContentCreate {
                digest: digest.to_string(),
                size,
            },
        );
        Ok(())
    }
}

enum State {
    /// Bytes are being written to an ingest.
    Ingest(Box<IngestWriter>),
    /// The bytes are already on disk; nothing to write.
    Shared {
        digest: Digest,
        size: i64,
        started_at: SystemTime,
    },
}

/// A writer in one namespace: an ingest, or a blob already present that only needs recording.
pub struct Writer {
    content: Arc<Content>,
    scope: Scope,
    reference: String,
    state: State,
}

impl Writer {
    /// Progress so far.
    pub fn status(&self) -> IngestStatus {
        match &self.state {
            State::Ingest(w) => w.status(),
            State::Shared {
                digest,
                size,
                started_at,
            } => IngestStatus {
                namespace: self.scope.namespace.clone(),
                reference: self.reference.clone(),
                offset: *size,
                total: *size,
                expected: Some(digest.clone()),
                started_at: *started_at,
                updated_at: *started_at,
            },
        }
    }

    /// The digest of the bytes so far.
    pub fn digest(&self) -> Digest {
        match &self.state {
            State::Ingest(w) => w.digest(),
            State::Shared { digest, .. } => digest.clone(),
        }
    }

    /// Declares the total size later in the stream.
    pub fn set_total(&mut self, total: i64) {
        if let State::Ingest(w) = &mut self.state {
            w.set_total(total);
        }
    }

    /// Appends `data`. A shared writer first turns into a real ingest holding a copy of the
    /// blob, so offsets stay truthful (containerd does the same).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if data.is_empty() {
            return Ok(0);
        }
        self.unshare(true)?;
        match &mut self.state {
            State::Ingest(w) => w.write(data),
            State::Shared { .. } => Err(Error::internal("writer still shared after unshare")),
        }
    }

    /// Starts over from `size` (only 0 is supported).
    pub fn truncate(&mut self, size: i64) -> Result<(), Error> {
        if size != 0 {
            return Err(Error::invalid(format!(
                "truncate to {size} not supported: only 0"
            )));
        }
        self.unshare(false)?;
        match &mut self.state {
            State::Ingest(w) => w.truncate(0),
            State::Shared { .. } => Ok(()),
        }
    }

    /// Replaces a shared writer with a real ingest, holding a copy of the blob if `copy`.
    fn unshare(&mut self, copy: bool) -> Result<(), Error> {
        let State::Shared { digest, .. } = &self.state else {
            return Ok(());
        };
        let digest = digest.clone();
        let mut ingest = self.content.blobs.writer(
            &self.scope.namespace,
            &self.reference,
            0,
            Some(digest.clone()),
        )?;
        if ingest.status().offset > 0 {
            ingest.truncate(0)?;
        }
        if !copy {
            self.state = State::Ingest(Box::new(ingest));
            return Ok(());
        }
        let mut file = self.content.blobs.reader(&digest)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)
                .map_err(|e| berth_proto::errdefs::io_error(format!("copy {digest}"), e))?;
            if n == 0 {
                break;
            }
            ingest.write(&buf[..n])?;
        }
        self.state = State::Ingest(Box::new(ingest));
        Ok(())
    }

    /// Verifies size and digest, moves the bytes into place and records them in the namespace.
    pub fn commit(
        &mut self,
        size: i64,
        expected: Option<&Digest>,
        labels: HashMap<String, String>,
    ) -> Result<Digest, Error> {
        labels::validate_all(&labels)?;
        let content = self.content.clone();
        let _gate = content.gate.read().unwrap_or_else(|p| p.into_inner());
        let (digest, actual) = match &mut self.state {
            State::Shared {
                digest, size: have, ..
            } => {
                if size > 0 && size != *have {
                    return Err(Error::precondition(format!(
                        "unexpected commit size {have}, expected {size}"
                    )));
                }
                if let Some(e) = expected
                    && e != digest
                {
                    return Err(Error::precondition(format!(
                        "unexpected commit digest {digest}, expected {e}"
                    )));
                }
                (digest.clone(), *have)
            }
            State::Ingest(w) => {
                let offset = w.status().offset;
                match w.commit(size, expected) {
                    Ok(d) => (d, offset),
                    Err(e) if e.kind == Kind::AlreadyExists => {
                        // The bytes were already on disk (another namespace): record them here.
                        (w.digest(), offset)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        content.record(&self.scope, &self.reference, &digest, actual, labels)?;
        Ok(digest)
    }
}
