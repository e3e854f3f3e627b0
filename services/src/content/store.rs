//! The local content store: immutable blobs addressed by digest, plus resumable ingests.
//!
//! Layout under the store root, following containerd's `content/local` store:
//!
//! ```text
//! blobs/sha256/<hex>     committed blobs, read-only (0444), named by their digest
//! ingest/<key>/data      bytes of an in-progress write
//! ingest/<key>/meta.json namespace, ref, total, expected digest, start time
//! ```
//!
//! `<key>` is the hex sha256 of `namespace + "\0" + ref` (see [`super::ingest`]), so refs of
//! any shape stay inside `ingest/` and namespaces never share an ingest. A blob only appears
//! under `blobs/` by an atomic rename of fully written, fsynced, digest-verified data, so a
//! crash can leave a resumable ingest or a leftover to clean, never a partial blob. [`open`]
//! removes such leftovers: temp files and ingest directories without valid metadata or data.
//! One `LocalStore` should own a root at a time; the ref locks live in this process only.
//!
//! All I/O is synchronous; callers run these methods on blocking threads.
//!
//! [`open`]: LocalStore::open

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_proto::digest::{Algorithm, Digest};
use berth_proto::errdefs::{Error, Kind, io_error};

use super::ingest::{self, DATA_FILE, IngestWriter, META_FILE, RefLocks, TMP_SUFFIX};

const BLOBS_DIR: &str = "blobs";
const INGEST_DIR: &str = "ingest";
const SHA256: &str = "sha256";

/// A content store rooted at one directory; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    locks: Arc<RefLocks>,
}

/// What the store knows about a committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: i64,
    /// When it was committed (the file's mtime).
    pub created_at: SystemTime,
    /// The file's atime, as in containerd's local store.
    pub updated_at: SystemTime,
}

/// Progress of one ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    /// The namespace that owns the ingest.
    pub namespace: String,
    /// The client's ref for it.
    pub reference: String,
    /// Bytes written so far.
    pub offset: i64,
    /// The declared total size, 0 if unknown.
    pub total: i64,
    /// The declared digest, if any.
    pub expected: Option<Digest>,
    /// When the ingest began.
    pub started_at: SystemTime,
    /// When data was last written (the data file's mtime for a store query).
    pub updated_at: SystemTime,
}

impl LocalStore {
    /// Opens (creating if needed) the store at `root` and clears what a crash left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalStore, Error> {
        let root = root.into();
        for dir in [root.join(BLOBS_DIR).join(SHA256), root.join(INGEST_DIR)] {
            fs::create_dir_all(&dir)
                .map_err(|e| io_error(format!("create {}", dir.display()), e))?;
        }
        let store = LocalStore {
            root,
            locks: Arc::default(),
        };
        store.clean_ingests()?;
        Ok(store)
    }

    /// Removes temp entries and ingest directories lacking valid `meta.json` or `data`.
    fn clean_ingests(&self) -> Result<(), Error> {
        for entry in entries(&self.root.join(INGEST_DIR))? {
            let entry = entry?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let valid = is_dir
                && entry.file_name().to_str().is_some_and(|name| {
                    ingest::read_meta(&path)
                        .is_ok_and(|m| ingest::ingest_key(&m.namespace, &m.reference) == name)
                        && path.join(DATA_FILE).is_file()
                });
            let result = if valid {
                match fs::remove_file(path.join(format!("{META_FILE}{TMP_SUFFIX}"))) {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            } else {
                tracing::info!(path = %path.display(), "removing leftover ingest entry");
                if is_dir {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
            };
            if let Err(err) = result {
                tracing::warn!(path = %path.display(), %err, "cannot clean up ingest entry");
            }
        }
        Ok(())
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(BLOBS_DIR)
            .join(digest.algorithm().name())
            .join(digest.encoded())
    }

    /// The file holding the bytes of an ingest so far (readers may follow it while it grows;
    /// at commit it is renamed into `blobs/`, so an open descriptor stays valid).
    pub fn ingest_data_path(&self, namespace: &str, reference: &str) -> PathBuf {
        self.ingest_dir(namespace, reference).join(DATA_FILE)
    }

    fn ingest_dir(&self, namespace: &str, reference: &str) -> PathBuf {
        self.root
            .join(INGEST_DIR)
            .join(ingest::ingest_key(namespace, reference))
    }

    /// Size and times of a committed blob; NotFound if it is absent.
    pub fn info(&self, digest: &Digest) -> Result<BlobInfo, Error> {
        let meta = fs::metadata(self.blob_path(digest)).map_err(|e| blob_error(digest, e))?;
        Ok(blob_info(digest.clone(), &meta))
    }

    /// Opens a committed blob for reading; NotFound if it is absent.
    pub fn reader(&self, digest: &Digest) -> Result<File, Error> {
        File::open(self.blob_path(digest)).map_err(|e| blob_error(digest, e))
    }

    /// Removes a committed blob; NotFound if it is absent.
    pub fn delete(&self, digest: &Digest) -> Result<(), Error> {
        fs::remove_file(self.blob_path(digest)).map_err(|e| blob_error(digest, e))
    }

    /// Every committed blob, sorted by digest. Files whose names are not sha256 hex digests
    /// (Berth stores no other algorithm) are skipped.
    pub fn walk(&self) -> Result<Vec<BlobInfo>, Error> {
        let mut blobs = Vec::new();
        for entry in entries(&self.root.join(BLOBS_DIR).join(SHA256))? {
            let entry = entry?;
            let name = entry.file_name();
            let parsed = name
                .to_str()
                .map(|n| Digest::parse(&format!("{SHA256}:{n}")));
            let Some(Ok(digest)) = parsed else {
                tracing::debug!(path = %entry.path().display(), "skipping non-blob file");
                continue;
            };
            match entry.metadata() {
                Ok(meta) if meta.is_file() => blobs.push(blob_info(digest, &meta)),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {} // deleted meanwhile
                Err(e) => return Err(io_error(format!("stat {}", entry.path().display()), e)),
            }
        }
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(blobs)
    }

    /// Starts or resumes the ingest of `reference` in `namespace`.
    ///
    /// `total <= 0` means unknown. Fails InvalidArgument for an empty ref, NotImplemented for
    /// a non-sha256 `expected`, Unavailable while another writer holds the ref. A resumed
    /// ingest continues at its end; one declared with a conflicting total or digest restarts
    /// empty (see [`IngestWriter`]). Whether the blob already exists is checked at commit,
    /// not here, so a namespace layer above may ingest content another namespace holds.
    pub fn writer(
        &self,
        namespace: &str,
        reference: &str,
        total: i64,
        expected: Option<Digest>,
    ) -> Result<IngestWriter, Error> {
        ingest::validate_ref(namespace, reference)?;
        if let Some(digest) = &expected
            && digest.algorithm() != Algorithm::Sha256
        {
            let msg = format!("expected digest {digest}: only sha256 content can be stored");
            return Err(Error::new(Kind::NotImplemented, msg));
        }
        let key = ingest::ingest_key(namespace, reference);
        let lock = self.locks.try_lock(&key, reference)?;
        let blob_dir = self.root.join(BLOBS_DIR).join(SHA256);
        let dir = self.ingest_dir(namespace, reference);
        IngestWriter::open(dir, blob_dir, lock, (namespace, reference), total, expected)
    }

    /// Progress of the ingest of `reference` in `namespace`; NotFound if there is none.
    pub fn status(&self, namespace: &str, reference: &str) -> Result<IngestStatus, Error> {
        ingest::validate_ref(namespace, reference)?;
        let not_found = || Error::not_found(format!("ingest ref {reference:?}"));
        match read_status(&self.ingest_dir(namespace, reference)) {
            Ok(s) if s.namespace == namespace && s.reference == reference => Ok(s),
            Ok(_) => Err(not_found()),
            Err(e) if e.kind == Kind::NotFound => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// Progress of every ingest of `namespace`, sorted by ref. Unreadable ingests (for
    /// example ones being committed or aborted right now) are skipped.
    pub fn list_statuses(&self, namespace: &str) -> Result<Vec<IngestStatus>, Error> {
        self.statuses(Some(namespace))
    }

    /// Progress of every ingest of every namespace (for the garbage collector).
    pub fn list_all_statuses(&self) -> Result<Vec<IngestStatus>, Error> {
        self.statuses(None)
    }

    fn statuses(&self, namespace: Option<&str>) -> Result<Vec<IngestStatus>, Error> {
        let mut statuses = Vec::new();
        for entry in entries(&self.root.join(INGEST_DIR))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                continue;
            }
            match read_status(&entry.path()) {
                Ok(status) if namespace.is_none_or(|n| status.namespace == n) => {
                    statuses.push(status)
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(path = %entry.path().display(), %err, "skipping ingest")
                }
            }
        }
        statuses.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(statuses)
    }

    /// Removes the ingest of `reference` in `namespace`; NotFound if there is none,
    /// Unavailable while a writer holds it.
    pub fn abort(&self, namespace: &str, reference: &str) -> Result<(), Error> {
        ingest::validate_ref(namespace, reference)?;
        let key = ingest::ingest_key(namespace, reference);
        let _lock = self.locks.try_lock(&key, reference)?;
        let dir = self.ingest_dir(namespace, reference);
        // Rename first so that readers never see a half-removed ingest.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let doomed = dir.with_file_name(format!("{key}.{nanos}{TMP_SUFFIX}"));
        match fs::rename(&dir, &doomed) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::not_found(format!("ingest ref {reference:?}")));
            }
            other => other.map_err(|e| io_error(format!("abort ingest ref {reference:?}"), e))?,
        }
        fs::remove_dir_all(&doomed).map_err(|e| io_error(format!("remove {}", doomed.display()), e))
    }
}

/// The entries of `dir`, with any I/O error given context.
fn entries(dir: &Path) -> Result<impl Iterator<Item = Result<fs::DirEntry, Error>>, Error> {
    let ctx = move |e| io_error(format!("read {}", dir.display()), e);
    Ok(fs::read_dir(dir).map_err(ctx)?.map(move |e| e.map_err(ctx)))
}

/// Reads an ingest directory's metadata and data file into a status.
fn read_status(dir: &Path) -> Result<IngestStatus, Error> {
    let meta = ingest::read_meta(dir)?;
    let data = dir.join(DATA_FILE);
    let stat = fs::metadata(&data).map_err(|e| io_error(format!("stat {}", data.display()), e))?;
    let updated_at = ingest::read_updated_at(dir, &stat).unwrap_or(meta.started_at);
    Ok(meta.into_status(stat.len() as i64, updated_at))
}

fn blob_info(digest: Digest, meta: &fs::Metadata) -> BlobInfo {
    let created_at = meta.modified().unwrap_or(UNIX_EPOCH);
    BlobInfo {
        digest,
        size: meta.len() as i64,
        created_at,
        updated_at: meta.accessed().unwrap_or(created_at),
    }
}

/// Maps an I/O error on a blob, phrasing ENOENT as containerd does.
fn blob_error(digest: &Digest, err: std::io::Error) -> Error {
    if err.kind() == ErrorKind::NotFound {
        Error::not_found(format!("content digest {digest}"))
    } else {
        io_error(format!("content digest {digest}"), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("root")).unwrap();
        (dir, store)
    }

    fn put(store: &LocalStore, data: &[u8]) -> Digest {
        let mut w = store.writer("ns", "put", 0, None).unwrap();
        w.write(data).unwrap();
        w.commit(data.len() as i64, None).unwrap()
    }

    #[test]
    fn shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<LocalStore>();
        send_sync::<IngestWriter>();
    }

    #[test]
    fn rejects_bad_refs_and_digests() {
        let (_tmp, store) = store();
        for err in [
            store.writer("ns", "", 0, None).unwrap_err(),
            store.status("ns", "").unwrap_err(),
            store.abort("ns", "").unwrap_err(),
            store.writer("n\0s", "r", 0, None).unwrap_err(),
        ] {
            assert_eq!(err.kind, Kind::InvalidArgument);
        }
        let sha512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
        let err = store.writer("ns", "r", 0, Some(sha512)).unwrap_err();
        assert_eq!(err.kind, Kind::NotImplemented);
    }

    #[test]
    fn refs_cannot_escape_the_root() {
        let (tmp, store) = store();
        let refs = ["../../../escape", "a/b/../../c", "/abs", "..", "ünï/cødé"];
        for r in refs {
            let mut w = store.writer("ns", r, 0, None).unwrap();
            w.write(r.as_bytes()).unwrap();
        }
        let names: Vec<String> = fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), refs.len());
        assert!(
            names
                .iter()
                .all(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        let top: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(top.len(), 1);
        let listed = store.list_statuses("ns").unwrap();
        let mut want: Vec<_> = refs.to_vec();
        want.sort();
        assert_eq!(
            listed
                .iter()
                .map(|s| s.reference.as_str())
                .collect::<Vec<_>>(),
            want
        );
        store.abort("ns", "..").unwrap();
        assert_eq!(store.list_statuses("ns").unwrap().len(), refs.len() - 1);
    }

    #[test]
    fn namespaces_are_isolated() {
        let (_tmp, store) = store();
        store
            .writer("a", "r", 0, None)
            .unwrap()
            .write(b"1")
            .unwrap();
        store
            .writer("b", "r", 0, None)
            .unwrap()
            .write(b"22")
            .unwrap();
        store.writer("b", "s", 0, None).unwrap();
        let a = store.list_statuses("a").unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].namespace.as_str(), a[0].offset), ("a", 1));
        assert_eq!(store.list_statuses("b").unwrap().len(), 2);
        assert!(store.list_statuses("c").unwrap().is_empty());
        store.abort("a", "r").unwrap();
        assert_eq!(store.status("a", "r").unwrap_err().kind, Kind::NotFound);
        assert_eq!(store.status("b", "r").unwrap().offset, 2);
    }

    #[test]
    fn abort_removes_the_ingest() {
        let (_tmp, store) = store();
        let err = store.abort("ns", "r").unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (Kind::NotFound, "ingest ref \"r\": not found")
        );
        store
            .writer("ns", "r", 0, None)
            .unwrap()
            .write(b"x")
            .unwrap();
        store.abort("ns", "r").unwrap();
        assert_eq!(store.status("ns", "r").unwrap_err().kind, Kind::NotFound);
        assert!(
            fs::read_dir(store.root().join("ingest"))
                .unwrap()
                .next()
                .is_none()
        );
        assert_eq!(store.writer("ns", "r", 0, None).unwrap().status().offset, 0);
    }

    #[test]
    fn walk_info_read_delete() {
        let (_tmp, store) = store();
        let (one, two) = (put(&store, b"one"), put(&store, b"two!"));
        fs::write(store.root().join("blobs/sha256/not-a-digest"), b"junk").unwrap();
        let mut want = vec![(one.clone(), 3), (two.clone(), 4)];
        want.sort();
        let walked: Vec<_> = store
            .walk()
            .unwrap()
            .into_iter()
            .map(|b| (b.digest, b.size))
            .collect();
        assert_eq!(walked, want);
        let info = store.info(&two).unwrap();
        assert_eq!((info.digest.clone(), info.size), (two.clone(), 4));
        let mut text = String::new();
        store
            .reader(&one)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one");
        store.delete(&one).unwrap();
        let err = store.info(&one).unwrap_err();
        assert_eq!(err.message, format!("content digest {one}: not found"));
        assert_eq!(store.delete(&one).unwrap_err().kind, Kind::NotFound);
        assert_eq!(store.reader(&one).unwrap_err().kind, Kind::NotFound);
        assert_eq!(store.walk().unwrap().len(), 1);
    }

    #[test]
    fn open_cleans_crash_leftovers() {
        let (tmp, store) = store();
        store
            .writer("ns", "keep", 0, None)
            .unwrap()
            .write(b"k")
            .unwrap();
        store
            .writer("ns", "committed", 0, None)
            .unwrap()
            .write(b"c")
            .unwrap();
        let ingest = store.root().join("ingest");
        let committed = store.ingest_dir("ns", "committed");
        fs::remove_file(committed.join(DATA_FILE)).unwrap(); // crash after the rename
        fs::create_dir(ingest.join("no-meta")).unwrap();
        fs::write(ingest.join("no-meta/data"), b"x").unwrap();
        fs::create_dir(ingest.join(format!("abc.1{TMP_SUFFIX}"))).unwrap();
        let keep = store.ingest_dir("ns", "keep");
        fs::write(keep.join(format!("{META_FILE}{TMP_SUFFIX}")), b"{").unwrap();
        drop(store);
        let store = LocalStore::open(tmp.path().join("root")).unwrap();
        let left: Vec<_> = fs::read_dir(&ingest)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, vec![keep.clone()]);
        // data, meta.json and updatedat remain; the stray temp meta is gone.
        assert_eq!(fs::read_dir(&keep).unwrap().count(), 3);
        assert_eq!(store.status("ns", "keep").unwrap().offset, 1);
    }
}
