//! The ingest writer: one in-progress, resumable upload into the content store.
//!
//! An ingest lives in `ingest/<key>/` under the store root, where `<key>` is the hex sha256 of
//! `namespace + "\0" + ref`, so a ref can never name a path of its own. The directory holds
//! `data`, the bytes received so far (only ever appended to, or truncated to zero), and
//! `meta.json` (namespace, ref, declared total, expected digest, start time), which is replaced
//! atomically through `meta.json.tmp`. An ingest is valid only when both files exist.
//!
//! The writer hashes on the caller's thread as it appends, so the digest is known the moment
//! the last byte lands. Committing fsyncs `data`, checks size and digest, and renames `data`
//! into `blobs/sha256/<hex>`, so a blob only ever appears complete and verified; a crash
//! before that rename leaves a resumable ingest, one after it an ingest without `data`,
//! which the store removes when it next opens.
//!
//! Only one writer per ref may be alive in a process: the store's `RefLocks` hands out a
//! `RefLock` that the writer keeps until it is committed or dropped. Dropping a writer keeps
//! the ingest on disk so a client can resume it.

use std::collections::HashMap;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_proto::digest::Digest;
use berth_proto::errdefs::{Error, Kind, io_error};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::store::IngestStatus;

/// Name of the file holding an ingest's bytes.
pub(super) const DATA_FILE: &str = "data";
/// Name of the file holding an ingest's [`IngestMeta`].
pub(super) const META_FILE: &str = "meta.json";
/// Name of the file recording when an ingest's data last changed (nanoseconds since the epoch),
/// written when its writer closes: file mtimes are too coarse to report it exactly.
pub(super) const UPDATED_FILE: &str = "updatedat";
/// Suffix of files and directories that are only ever transient.
pub(super) const TMP_SUFFIX: &str = ".tmp";

/// What `meta.json` records about an ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IngestMeta {
    pub namespace: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub total: i64,
    #[serde(with = "opt_digest")]
    pub expected: Option<Digest>,
    pub started_at: SystemTime,
}

impl IngestMeta {
    /// The status of an ingest with this metadata and `offset` bytes written.
    pub(super) fn into_status(self, offset: i64, updated_at: SystemTime) -> IngestStatus {
        let IngestMeta {
            namespace,
            reference,
            total,
            expected,
            started_at,
        } = self;
        IngestStatus {
            namespace,
            reference,
            offset,
            total,
            expected,
            started_at,
            updated_at,
        }
    }
}

/// Stores an optional digest as its string form, validating it on the way back in.
mod opt_digest {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

    /// Writes the digest as `"sha256:…"` or `null`.
    pub fn serialize<S: Serializer>(d: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
        d.as_ref().map(Digest::to_string).serialize(s)
    }

    /// Reads a digest string back, rejecting malformed ones.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Digest>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| Digest::parse(&s).map_err(|e| D::Error::custom(e.message)))
            .transpose()
    }
}

/// When the ingest in `dir` last changed: the recorded time, else the data file's mtime.
pub(super) fn read_updated_at(dir: &Path, data: &fs::Metadata) -> Option<SystemTime> {
    let recorded = fs::read_to_string(dir.join(UPDATED_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|nanos| UNIX_EPOCH + Duration::from_nanos(nanos));
    recorded.or_else(|| data.modified().ok())
}

/// Records `at` as the ingest's last change (best effort: the mtime is the fallback).
fn write_updated_at(dir: &Path, at: SystemTime) {
    let nanos = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    if let Err(err) = fs::write(dir.join(UPDATED_FILE), nanos.to_string()) {
        tracing::warn!(dir = %dir.display(), %err, "recording ingest update time");
    }
}

/// Reads and validates `dir/meta.json`. A missing file is NotFound, a corrupt one DataLoss.
pub(super) fn read_meta(dir: &Path) -> Result<IngestMeta, Error> {
    let path = dir.join(META_FILE);
    let bytes = fs::read(&path).map_err(|e| io_error(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let msg = format!("invalid ingest metadata {}: {e}", path.display());
        Error::new(Kind::DataLoss, msg)
    })
}

/// Replaces `dir/meta.json` atomically: write a temp file, fsync it, rename it over.
pub(super) fn write_meta(dir: &Path, meta: &IngestMeta) -> Result<(), Error> {
    let json = serde_json::to_vec(meta)
        .map_err(|e| Error::internal(format!("encode ingest metadata: {e}")))?;
    let tmp = dir.join(format!("{META_FILE}{TMP_SUFFIX}"));
    let ctx = |e| io_error(format!("write {}", tmp.display()), e);
    let mut out = File::create(&tmp).map_err(ctx)?;
    out.write_all(&json)
        .and_then(|()| out.sync_all())
        .map_err(ctx)?;
    fs::rename(&tmp, dir.join(META_FILE)).map_err(ctx)
}

/// The ingest directory name for a ref: hex sha256 of `namespace + "\0" + reference`.
pub(super) fn ingest_key(namespace: &str, reference: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    hasher.update([0u8]);
    hasher.update(reference.as_bytes());
    hex::encode(hasher.finalize())
}

/// Rejects an empty ref, and a namespace with a NUL (it would make keys ambiguous).
pub(super) fn validate_ref(namespace: &str, reference: &str) -> Result<(), Error> {
    if reference.is_empty() {
        return Err(Error::invalid("ref must not be empty"));
    }
    if namespace.contains('\0') {
        return Err(Error::invalid(format!("namespace {namespace:?} has a NUL")));
    }
    Ok(())
}

/// How long a writer waits for a ref whose holder is finishing before reporting Unavailable.
///
/// A client that closes a write stream and at once opens another on the same ref (containerd's
/// own test suite does) races the server's teardown of the first stream; this grace absorbs
/// that race without letting two writers hold the ref.
const LOCK_GRACE: Duration = Duration::from_millis(250);

/// The refs of this process that have a live writer (or an abort under way), by ingest key.
#[derive(Debug, Default)]
pub(super) struct RefLocks {
    held: Mutex<HashMap<String, SystemTime>>,
    released: Condvar,
}

impl RefLocks {
    /// Takes the lock on `key`, waiting up to [`LOCK_GRACE`] for a holder to let go, or fails
    /// Unavailable saying since when it is held.
    pub(super) fn try_lock(self: &Arc<Self>, key: &str, reference: &str) -> Result<RefLock, Error> {
        let deadline = Instant::now() + LOCK_GRACE;
        let mut held = self.held();
        while held.contains_key(key) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            held = self
                .released
                .wait_timeout(held, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if let Some(since) = held.get(key) {
            let msg = format!(
                "ref {reference} locked since {}: unavailable",
                rfc3339(*since)
            );
            return Err(Error::new(Kind::Unavailable, msg));
        }
        held.insert(key.to_owned(), SystemTime::now());
        let (locks, key) = (Arc::clone(self), key.to_owned());
        Ok(RefLock { locks, key })
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, SystemTime>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for IngestWriter {
    /// Records when the data last changed, so a resumed writer reports it exactly.
    fn drop(&mut self) {
        if self.file.is_some() {
            write_updated_at(&self.dir, self.updated_at);
        }
    }
}

/// A held ref lock; released when dropped.
#[derive(Debug)]
pub(super) struct RefLock {
    locks: Arc<RefLocks>,
    key: String,
}

impl Drop for RefLock {
    fn drop(&mut self) {
        self.locks.held().remove(&self.key);
        self.locks.released.notify_all();
    }
}

/// Formats `t` as an RFC 3339 UTC timestamp with nanoseconds.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, nanos) = (since.as_secs(), since.subsec_nanos());
    // Days to a proleptic Gregorian date (H. Hinnant's civil-from-days).
    let z = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

/// An open write transaction on one ingest. Holds the ref lock until committed or dropped;
/// dropping it without committing keeps the ingest on disk for a later [`resume`].
///
/// [`resume`]: super::store::LocalStore::writer
#[derive(Debug)]
pub struct IngestWriter {
    dir: PathBuf,
    blob_dir: PathBuf,
    meta: IngestMeta,
    /// `None` once committed (or after an unrecoverable write error).
    file: Option<File>,
    hasher: Sha256,
    offset: i64,
    updated_at: SystemTime,
    lock: Option<RefLock>,
}

/// Whether an ingest's bytes can never commit as declared: all `total` of them (or more) are
/// there, yet they do not hash to the expected digest.
fn known_wrong(meta: &IngestMeta, offset: u64, hasher: &Sha256) -> bool {
    let Some(expected) = &meta.expected else {
        return false;
    };
    let total = u64::try_from(meta.total).unwrap_or(0);
    total > 0
        && (offset > total
            || (offset == total
                && Digest::from_sha256(hasher.clone().finalize().into()) != *expected))
}

impl IngestWriter {
    /// Starts or resumes the ingest in `dir` (the caller holds `lock` and validated the ref).
    ///
    /// A valid ingest of the same ref is resumed: `data` is rehashed and writing continues at
    /// its end; a total or digest declared now replaces an unknown one. If the declared total
    /// or digest contradicts the recorded one, the old bytes are of other content and the
    /// ingest restarts empty (containerd's store recreates it too). A missing or corrupt
    /// ingest also starts afresh, and so does one whose bytes are complete (or too many) but
    /// hash to another digest than the declared one: they can never be committed.
    pub(super) fn open(
        dir: PathBuf,
        blob_dir: PathBuf,
        lock: RefLock,
        (namespace, reference): (&str, &str),
        total: i64,
        expected: Option<Digest>,
    ) -> Result<IngestWriter, Error> {
        let data = dir.join(DATA_FILE);
        let prior = read_meta(&dir).ok().filter(|_| data.is_file());
        if let Some(m) = &prior
            && (m.namespace != namespace || m.reference != reference)
        {
            let msg = format!("ingest key collision at {}", dir.display());
            return Err(Error::internal(msg));
        }
        let prior = prior.filter(|m| {
            let total_differs = total > 0 && m.total > 0 && total != m.total;
            let digest_differs = matches!((&expected, &m.expected), (Some(a), Some(b)) if a != b);
            if total_differs || digest_differs {
                tracing::info!(reference, namespace, "ingest redeclared; restarting it");
            }
            !(total_differs || digest_differs)
        });
        let mut meta = prior.clone().unwrap_or_else(|| IngestMeta {
            namespace: namespace.to_owned(),
            reference: reference.to_owned(),
            total: 0,
            expected: None,
            started_at: SystemTime::now(),
        });
        meta.total = if total > 0 { total } else { meta.total };
        meta.expected = expected.or(meta.expected);

        let ctx = |e| io_error(format!("open ingest {}", data.display()), e);
        fs::create_dir_all(&dir).map_err(ctx)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&data)
            .map_err(ctx)?;
        if prior.is_none() {
            file.set_len(0).map_err(ctx)?;
        }
        // Data before metadata: a crash in between leaves no metadata naming stale bytes.
        if prior.as_ref() != Some(&meta) {
            write_meta(&dir, &meta)?;
        }
        let mut hasher = Sha256::new();
        let offset = io::copy(&mut BufReader::with_capacity(1 << 20, &file), &mut hasher);
        let mut offset = offset.map_err(|e| io_error(format!("rehash {}", data.display()), e))?;
        // A fresh ingest was updated when it started; a resumed one when its data last changed.
        let mut updated_at = match prior {
            None => meta.started_at,
            Some(_) => {
                let stat = file.metadata().map_err(ctx)?;
                read_updated_at(&dir, &stat).unwrap_or(meta.started_at)
            }
        };
        if known_wrong(&meta, offset, &hasher) {
            // Resuming would only fail the commit again, forever (a registry that sent
            // corrupt bytes once): start over.
            tracing::warn!(
                reference,
                namespace,
                "ingest holds all its bytes but not the expected digest; restarting it"
            );
            file.set_len(0).map_err(ctx)?;
            (hasher, offset, updated_at) = (Sha256::new(), 0, SystemTime::now());
        }
        Ok(IngestWriter {
            dir,
            blob_dir,
            meta,
            file: Some(file),
            hasher,
            offset: offset as i64,
            updated_at,
            lock: Some(lock),
        })
    }

    /// Where the ingest stands: bytes written, declared total and digest, times.
    pub fn status(&self) -> IngestStatus {
        self.meta.clone().into_status(self.offset, self.updated_at)
    }

    /// Appends `data` at the current offset and hashes it; returns `data.len()`. On an I/O
    /// error the partial append is cut off again, so file and hash stay in step.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        let reference = &self.meta.reference;
        let file = self.file.as_mut().ok_or_else(|| closed(reference))?;
        if let Err(err) = file.write_all(data) {
            if let Err(undo) = file.set_len(self.offset as u64) {
                tracing::error!(%reference, %undo, "cannot undo a failed write; closing writer");
                self.file = None;
            }
            return Err(io_error(format!("write ingest {reference}"), err));
        }
        self.hasher.update(data);
        self.offset += data.len() as i64;
        self.updated_at = SystemTime::now();
        Ok(data.len())
    }

    /// Discards everything written. Only `size == 0` is supported, as in containerd.
    pub fn truncate(&mut self, size: i64) -> Result<(), Error> {
        let reference = &self.meta.reference;
        if size != 0 {
            let msg = format!("truncate ref {reference} to {size}: only 0 is supported");
            return Err(Error::invalid(msg));
        }
        let file = self.file.as_mut().ok_or_else(|| closed(reference))?;
        let ctx = |e| io_error(format!("truncate ingest data for ref {reference}"), e);
        file.set_len(0).map_err(ctx)?;
        self.hasher = Sha256::new();
        self.offset = 0;
        self.updated_at = SystemTime::now();
        Ok(())
    }

    /// The sha256 of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(self.hasher.clone().finalize().into())
    }

    /// Declares the content's size (non-positive values are ignored); the newest declaration
    /// wins, as in containerd's content service. Persisted best effort.
    pub fn set_total(&mut self, total: i64) {
        if total > 0 && total != self.meta.total {
            self.meta.total = total;
            self.persist_meta();
        }
    }

    /// Declares the content's digest; the newest declaration wins. Persisted best effort.
    pub fn set_expected(&mut self, expected: Digest) {
        if self.meta.expected.as_ref() != Some(&expected) {
            self.meta.expected = Some(expected);
            self.persist_meta();
        }
    }

    fn persist_meta(&self) {
        if self.file.is_some()
            && let Err(err) = write_meta(&self.dir, &self.meta)
        {
            tracing::warn!(reference = %self.meta.reference, %err, "cannot update ingest metadata");
        }
    }

    /// Verifies and publishes the content as `blobs/sha256/<hex>`, returning its digest.
    ///
    /// `size > 0` must equal the bytes written, and the digest must equal `expected` (or else
    /// the recorded expected digest); otherwise FailedPrecondition, and the ingest and this
    /// writer stay as they were. If the blob already exists the ingest is removed and the
    /// result is AlreadyExists. After success or AlreadyExists the writer is closed and its
    /// ref unlocked.
    pub fn commit(&mut self, size: i64, expected: Option<&Digest>) -> Result<Digest, Error> {
        let reference = &self.meta.reference;
        let file = self.file.as_ref().ok_or_else(|| closed(reference))?;
        let ctx = |e| io_error(format!("commit ref {reference}"), e);
        file.sync_all().map_err(ctx)?;
        let stat = file.metadata().map_err(ctx)?;
        if stat.len() != self.offset as u64 {
            let (len, offset) = (stat.len(), self.offset);
            let msg = format!("ingest {reference} holds {len} bytes, not {offset}");
            return Err(Error::new(Kind::DataLoss, msg));
        }
        if size > 0 && size != self.offset {
            let msg = format!("unexpected commit size {}, expected {size}", self.offset);
            return Err(Error::precondition(msg));
        }
        let digest = self.digest();
        if let Some(want) = expected.or(self.meta.expected.as_ref())
            && *want != digest
        {
            let msg = format!("unexpected commit digest {digest}, expected {want}");
            return Err(Error::precondition(msg));
        }
        let target = self.blob_dir.join(digest.encoded());
        match fs::symlink_metadata(&target) {
            Ok(_) => {
                self.finish();
                return Err(Error::already_exists(format!("content {digest}")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ctx(e)),
        }
        // Read-only and stamped with the commit time before it becomes visible.
        let read_only = Permissions::from_mode(0o444);
        file.set_permissions(read_only).map_err(ctx)?;
        let now = SystemTime::now();
        if let Err(err) = file.set_times(FileTimes::new().set_accessed(now).set_modified(now)) {
            tracing::warn!(%reference, %err, "cannot stamp blob with its commit time");
        }
        if let Err(err) = fs::rename(self.dir.join(DATA_FILE), &target) {
            let _ = file.set_permissions(stat.permissions());
            return Err(ctx(err));
        }
        // Make the rename durable (on journaling filesystems, the new mode and times too).
        if let Err(err) = File::open(&self.blob_dir).and_then(|d| d.sync_all()) {
            tracing::warn!(%digest, %err, "cannot fsync the blob directory");
        }
        self.finish();
        Ok(digest)
    }

    /// Closes the file, removes the ingest directory, then releases the ref lock.
    fn finish(&mut self) {
        self.file = None;
        if let Err(err) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(path = %self.dir.display(), %err, "cannot remove ingest directory");
        }
        self.lock = None;
    }
}

fn closed(reference: &str) -> Error {
    Error::precondition(format!("ingest writer for ref {reference} is closed"))
}

#[cfg(test)]
mod tests {
    use super::super::store::LocalStore;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("root")).unwrap();
        (dir, store)
    }

    #[test]
    fn write_and_commit_round_trip() {
        let (_tmp, store) = store();
        let want = Digest::sha256_of(b"hello world");
        let mut w = store.writer("ns", "r", 11, Some(want.clone())).unwrap();
        assert_eq!(w.write(b"hello ").unwrap(), 6);
        w.write(b"world").unwrap();
        assert_eq!(w.digest(), want);
        assert_eq!((w.status().offset, w.status().total), (11, 11));
        assert_eq!(w.commit(11, Some(&want)).unwrap(), want);
        let path = store.blob_path(&want);
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o444);
        assert_eq!(store.info(&want).unwrap().size, 11);
        assert_eq!(store.status("ns", "r").unwrap_err().kind, Kind::NotFound);
        assert!(
            fs::read_dir(store.root().join("ingest"))
                .unwrap()
                .next()
                .is_none()
        );
        assert_eq!(w.write(b"x").unwrap_err().kind, Kind::FailedPrecondition);
        drop(store.writer("ns", "r", 0, None).unwrap()); // lock released by commit
    }

    #[test]
    fn failed_commits_keep_the_ingest() {
        let (_tmp, store) = store();
        let wrong = Digest::sha256_of(b"other");
        let mut w = store.writer("ns", "r", 0, None).unwrap();
        w.write(b"hello").unwrap();
        let err = w.commit(0, Some(&wrong)).unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        let got = Digest::sha256_of(b"hello");
        assert_eq!(
            err.message,
            format!("unexpected commit digest {got}, expected {wrong}")
        );
        let err = w.commit(4, None).unwrap_err();
        assert_eq!(err.kind, Kind::FailedPrecondition);
        assert_eq!(err.message, "unexpected commit size 5, expected 4");
        w.set_expected(wrong.clone()); // a recorded digest is checked too
        assert_eq!(
            w.commit(5, None).unwrap_err().kind,
            Kind::FailedPrecondition
        );
        assert_eq!(store.status("ns", "r").unwrap().expected, Some(wrong));
        assert!(store.walk().unwrap().is_empty());
        assert_eq!(store.status("ns", "r").unwrap().offset, 5);
        assert_eq!(w.commit(5, Some(&got)).unwrap(), got); // still usable
    }

    #[test]
    fn one_writer_per_ref() {
        let (_tmp, store) = store();
        let mut w = store.writer("ns", "r", 0, None).unwrap();
        w.write(b"abc").unwrap();
        let err = store.writer("ns", "r", 0, None).unwrap_err();
        assert_eq!(err.kind, Kind::Unavailable);
        assert!(
            err.message.starts_with("ref r locked since "),
            "{}",
            err.message
        );
        assert!(err.message.ends_with(": unavailable"));
        assert_eq!(store.abort("ns", "r").unwrap_err().kind, Kind::Unavailable);
        store.writer("ns", "other", 0, None).unwrap();
        store.writer("ns2", "r", 0, None).unwrap();
        drop(w);
        let w = store.writer("ns", "r", 0, None).unwrap();
        assert_eq!(w.status().offset, 3); // kept on disk, resumed
    }

    #[test]
    fn resumes_after_restart() {
        let (tmp, store) = store();
        let mut w = store.writer("ns", "r", 10, None).unwrap();
        w.write(b"01234").unwrap();
        let started = w.status().started_at;
        drop((w, store));
        let store = LocalStore::open(tmp.path().join("root")).unwrap();
        let status = store.status("ns", "r").unwrap();
        assert_eq!(
            (status.offset, status.total, status.started_at),
            (5, 10, started)
        );
        let mut w = store.writer("ns", "r", 0, None).unwrap();
        assert_eq!((w.status().offset, w.status().total), (5, 10));
        w.write(b"56789").unwrap();
        assert_eq!(
            w.commit(10, None).unwrap(),
            Digest::sha256_of(b"0123456789")
        );
    }

    /// Regression (tests/faults corrupt-registry-*): a blob whose download was corrupted kept
    /// its complete, wrong bytes in the ingest, and every later pull resumed them and failed
    /// its commit again.
    #[test]
    fn complete_but_wrong_bytes_restart_when_reopened() {
        let (_tmp, store) = store();
        let want = Digest::sha256_of(b"0123456789");
        let mut w = store.writer("ns", "r", 10, Some(want.clone())).unwrap();
        w.write(b"0123456780").unwrap();
        assert_eq!(
            w.commit(10, Some(&want)).unwrap_err().kind,
            Kind::FailedPrecondition
        );
        drop(w);
        let mut w = store.writer("ns", "r", 10, Some(want.clone())).unwrap();
        assert_eq!(w.status().offset, 0, "the wrong bytes were resumed");
        w.write(b"0123456789").unwrap();
        assert_eq!(w.commit(10, Some(&want)).unwrap(), want);
        // Partial bytes, and complete ones without a declared digest, are resumed as before.
        let mut w = store.writer("ns", "p", 10, Some(want.clone())).unwrap();
        w.write(b"01234").unwrap();
        drop(w);
        assert_eq!(store.writer("ns", "p", 0, None).unwrap().status().offset, 5);
        let mut w = store.writer("ns", "q", 10, None).unwrap();
        w.write(b"9876543210").unwrap();
        drop(w);
        assert_eq!(
            store.writer("ns", "q", 0, None).unwrap().status().offset,
            10
        );
    }

    #[test]
    fn conflicting_declaration_restarts_the_ingest() {
        let (_tmp, store) = store();
        let mut w = store.writer("ns", "r", 10, None).unwrap();
        w.write(b"01234").unwrap();
        drop(w);
        let w = store.writer("ns", "r", 7, None).unwrap();
        assert_eq!((w.status().offset, w.status().total), (0, 7));
        let d = Digest::sha256_of(b"x");
        drop(w);
        let w = store.writer("ns", "r", 0, Some(d.clone())).unwrap();
        assert_eq!((w.status().total, w.status().expected), (7, Some(d)));
    }

    #[test]
    fn truncate_to_zero_restarts_hashing() {
        let (_tmp, store) = store();
        let mut w = store.writer("ns", "r", 0, None).unwrap();
        w.write(b"garbage").unwrap();
        assert_eq!(w.truncate(3).unwrap_err().kind, Kind::InvalidArgument);
        w.truncate(0).unwrap();
        assert_eq!(w.status().offset, 0);
        assert_eq!(store.status("ns", "r").unwrap().offset, 0);
        w.write(b"good").unwrap();
        assert_eq!(w.commit(4, None).unwrap(), Digest::sha256_of(b"good"));
    }

    #[test]
    fn committing_existing_content_removes_the_ingest() {
        let (_tmp, store) = store();
        let mut a = store.writer("ns", "a", 0, None).unwrap();
        a.write(b"same").unwrap();
        let d = a.commit(0, None).unwrap();
        let mut b = store.writer("other", "b", 0, Some(d.clone())).unwrap();
        b.write(b"same").unwrap();
        let err = b.commit(4, Some(&d)).unwrap_err();
        assert_eq!(err.kind, Kind::AlreadyExists);
        assert_eq!(err.message, format!("content {d}: already exists"));
        assert_eq!(b.digest(), d);
        assert_eq!(store.status("other", "b").unwrap_err().kind, Kind::NotFound);
        assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"same");
        drop(store.writer("other", "b", 0, None).unwrap());
    }

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + std::time::Duration::new(951_825_599, 5);
        assert_eq!(rfc3339(t), "2000-02-29T11:59:59.000000005Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
