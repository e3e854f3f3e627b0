//! [`write_diff`] and [`write_overlay_diff`]: layer tars from trees.
//!
//! The trees are the snapshotter's own (committed snapshots), so plain paths are fine here.
//! Entries come in sorted name order: a directory, then (if opaque) its `.wh..wh..opq`, then
//! its children, whiteouts in the place of the names they remove. Every changed entry is
//! preceded by its parent directories, so an overlay upper made from the layer gets their
//! metadata right.

use std::{
    collections::HashMap,
    ffi::OsString,
    fs::{self, File, Metadata},
    io::{self, Read, Write},
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt},
    },
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, io_error};

use super::{
    Applied, OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, Xattrs,
    entry::RelPath,
    is_overlay_xattr,
    tarwriter::{TarEntry, TarKind, TarWriter},
};

/// Writes an OCI layer tar (uncompressed) to `out` describing how `upper` differs from
/// `lower` (`None`: from an empty tree), and returns the stream's digest and size.
///
/// An entry counts as changed when its type, mode, owner, mtime, xattrs, size, device
/// number, symlink target or content differ. Content is compared byte for byte unless both
/// mtimes are equal and have a non-zero nanosecond part (then it is taken as unchanged, as
/// containerd does). Removed names become `.wh.<name>`; a directory all of whose old entries
/// are gone gets `.wh..wh..opq` instead (except the root). Sockets are skipped.
pub fn write_diff(lower: Option<&Path>, upper: &Path, out: impl Write) -> Result<Applied, Error> {
    let mut differ = Differ::new(out);
    differ.diff_dir(&RelPath::default(), lower, upper)?;
    differ.tar.finish()
}

/// Writes an OCI layer tar (uncompressed) of an overlayfs upper directory: every entry in it
/// is a change, 0/0 character devices become `.wh.<name>`, and directories with
/// `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`) get `.wh..wh..opq`. Upper
/// directories using `redirect_dir` or `metacopy` cannot be described this way and are
/// refused (FailedPrecondition).
pub fn write_overlay_diff(upper: &Path, out: impl Write) -> Result<Applied, Error> {
    let mut differ = Differ::new(out);
    differ.overlay_dir(&RelPath::default(), upper)?;
    differ.tar.finish()
}

/// A directory whose header is written only if something inside it is.
struct PendingDir {
    rel: RelPath,
    path: PathBuf,
    meta: Metadata,
}

struct Differ<W: Write> {
    tar: TarWriter<W>,
    /// (dev, inode) of regular files with several links → the tar path first written.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// One slot per directory level below the root being walked; `Some` until written.
    pending: Vec<Option<PendingDir>>,
}

impl<W: Write> Differ<W> {
    fn new(out: W) -> Self {
        Differ {
            tar: TarWriter::new(out),
            links: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Compares directory `upper` (at `rel`) with `lower`.
    fn diff_dir(&mut self, rel: &RelPath, lower: Option<&Path>, upper: &Path) -> Result<(), Error> {
        let upper_names = sorted_names(upper)?;
        let lower_names = match lower {
            Some(lower) => sorted_names(lower)?,
            None => Vec::new(),
        };
        let opaque = !rel.is_root()
            && !lower_names.is_empty()
            && lower_names
                .iter()
                .all(|n| upper_names.binary_search(n).is_err());
        if opaque {
            self.marker(rel, WHITEOUT_OPAQUE)?;
        }
        let (mut u, mut l) = (upper_names.iter().peekable(), lower_names.iter().peekable());
        loop {
            let order = match (u.peek(), l.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let name = u.next().map(OsString::as_os_str).unwrap_or_default();
                    self.visit(rel.join(name.as_bytes()), None, upper.join(name))?;
                }
                std::cmp::Ordering::Greater => {
                    let name = l.next().map(OsString::as_os_str).unwrap_or_default();
                    if !opaque {
                        let mut whiteout = WHITEOUT_PREFIX.to_vec();
                        whiteout.extend_from_slice(name.as_bytes());
                        self.marker(rel, &whiteout)?;
                    }
                }
                std::cmp::Ordering::Equal => {
                    let name = u.next().map(OsString::as_os_str).unwrap_or_default();
                    l.next();
                    let lower = lower.map(|l| l.join(name));
                    self.visit(rel.join(name.as_bytes()), lower, upper.join(name))?;
                }
            }
        }
        Ok(())
    }

    /// Compares one entry present in `upper` (and maybe in `lower`).
    fn visit(&mut self, rel: RelPath, lower: Option<PathBuf>, upper: PathBuf) -> Result<(), Error> {
        let meta = lstat(&upper)?;
        let lower = match lower {
            Some(path) => Some((lstat(&path)?, path)),
            None => None,
        };
        if !meta.is_dir() {
            let changed = match &lower {
                Some((old, old_path)) => !same_node(old, old_path, &meta, &upper)?,
                None => true,
            };
            return if changed {
                self.emit(&rel, &upper, &meta)
            } else {
                Ok(())
            };
        }
        let lower = lower.filter(|(old, _)| old.is_dir());
        let changed = match &lower {
            Some((old, old_path)) => !same_meta(old, old_path, &meta, &upper)?,
            None => true,
        };
        if changed {
            self.emit(&rel, &upper, &meta)?;
            self.pending.push(None);
        } else {
            let dir = PendingDir {
                rel: rel.clone(),
                path: upper.clone(),
                meta,
            };
            self.pending.push(Some(dir));
        }
        let result = self.diff_dir(&rel, lower.as_ref().map(|(_, p)| p.as_path()), &upper);
        self.pending.pop();
        result
    }

    /// Walks an overlayfs upper directory.
    fn overlay_dir(&mut self, rel: &RelPath, dir: &Path) -> Result<(), Error> {
        for name in sorted_names(dir)? {
            let (child, path) = (rel.join(name.as_bytes()), dir.join(&name));
            let meta = lstat(&path)?;
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                let mut whiteout = WHITEOUT_PREFIX.to_vec();
                whiteout.extend_from_slice(name.as_bytes());
                self.marker(rel, &whiteout)?;
                continue;
            }
            let xattrs = read_xattrs(&path)?;
            if let Some((name, _)) = xattrs.iter().find(|(n, _)| {
                n.ends_with(b".overlay.redirect") || n.ends_with(b".overlay.metacopy")
            }) {
                return Err(Error::precondition(format!(
                    "{}: overlayfs xattr {} cannot be expressed in a layer \
                     (mount without redirect_dir and metacopy)",
                    path.display(),
                    String::from_utf8_lossy(name)
                )));
            }
            self.emit(&child, &path, &meta)?;
            if meta.is_dir() {
                // `user.overlay.opaque` when the upper was mounted with `userxattr`.
                let opaque = xattrs.iter().any(|(n, v)| {
                    (n == OVERLAY_OPAQUE_XATTR.as_bytes() || n == b"user.overlay.opaque")
                        && v == b"y"
                });
                if opaque {
                    self.marker(&child, WHITEOUT_OPAQUE)?;
                }
                self.pending.push(None);
                let result = self.overlay_dir(&child, &path);
                self.pending.pop();
                result?;
            }
        }
        Ok(())
    }

    /// Writes the headers of directories on the way down that are not written yet.
    fn flush_parents(&mut self) -> Result<(), Error> {
        for i in 0..self.pending.len() {
            if let Some(dir) = self.pending[i].take() {
                self.write(&dir.rel, &dir.path, &dir.meta)?;
            }
        }
        Ok(())
    }

    /// Writes the entry at `rel` (after its parents).
    fn emit(&mut self, rel: &RelPath, path: &Path, meta: &Metadata) -> Result<(), Error> {
        self.flush_parents()?;
        self.write(rel, path, meta)
    }

    /// Writes a whiteout or opaque marker named `name` in directory `dir`.
    fn marker(&mut self, dir: &RelPath, name: &[u8]) -> Result<(), Error> {
        self.flush_parents()?;
        let entry = TarEntry::marker(dir.join(name).as_bytes().to_vec());
        self.tar.append(&entry, None)
    }

    fn write(&mut self, rel: &RelPath, path: &Path, meta: &Metadata) -> Result<(), Error> {
        let file_type = meta.file_type();
        let mut tar_path = rel.as_bytes().to_vec();
        let mut entry = TarEntry::marker(Vec::new());
        entry.mode = meta.mode() & 0o7777;
        (entry.uid, entry.gid) = (meta.uid(), meta.gid());
        entry.mtime = meta.mtime();
        entry.xattrs = read_xattrs(path)?;
        entry.xattrs.retain(|(name, _)| !is_overlay_xattr(name));
        let mut data = None;
        entry.kind = if file_type.is_dir() {
            tar_path.push(b'/');
            TarKind::Dir
        } else if file_type.is_file() {
            let key = (meta.dev(), meta.ino());
            match self.links.get(&key) {
                Some(first) if meta.nlink() > 1 => {
                    entry.link = first.clone();
                    TarKind::Hardlink
                }
                _ => {
                    if meta.nlink() > 1 {
                        self.links.insert(key, tar_path.clone());
                    }
                    entry.size = meta.len();
                    data = Some(File::open(path).map_err(|e| read_error(path, e))?);
                    TarKind::File
                }
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|e| read_error(path, e))?;
            entry.link = target.as_os_str().as_bytes().to_vec();
            TarKind::Symlink
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let dev = meta.rdev();
            entry.device = (rustix::fs::major(dev), rustix::fs::minor(dev));
            if file_type.is_char_device() {
                TarKind::Char
            } else {
                TarKind::Block
            }
        } else if file_type.is_fifo() {
            TarKind::Fifo
        } else {
            tracing::warn!(path = %path.display(), "sockets cannot go in a layer; skipped");
            return Ok(());
        };
        entry.path = tar_path;
        self.tar
            .append(&entry, data.as_mut().map(|f| f as &mut dyn Read))
    }
}

fn read_error(path: &Path, err: io::Error) -> Error {
    io_error(format!("reading {}", path.display()), err)
}

fn lstat(path: &Path) -> Result<Metadata, Error> {
    fs::symlink_metadata(path).map_err(|e| read_error(path, e))
}

/// The names in directory `dir`, sorted bytewise.
fn sorted_names(dir: &Path) -> Result<Vec<OsString>, Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| read_error(dir, e))? {
        names.push(entry.map_err(|e| read_error(dir, e))?.file_name());
    }
    names.sort();
    Ok(names)
}

/// All xattrs of `path` (not following symlinks), sorted by name.
fn read_xattrs(path: &Path) -> Result<Xattrs, Error> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(read_error(path, e)),
    };
    let mut xattrs = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(path, &name).map_err(|e| read_error(path, e))? {
            xattrs.push((name.as_bytes().to_vec(), value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// Same type, mode, owner, device number, mtime and xattrs.
fn same_meta(
    old: &Metadata,
    old_path: &Path,
    new: &Metadata,
    new_path: &Path,
) -> Result<bool, Error> {
    let same = old.mode() == new.mode()
        && old.uid() == new.uid()
        && old.gid() == new.gid()
        && old.rdev() == new.rdev()
        && old.mtime() == new.mtime()
        && old.mtime_nsec() == new.mtime_nsec();
    Ok(same && read_xattrs(old_path)? == read_xattrs(new_path)?)
}

/// [`same_meta`], plus size and symlink target or content.
fn same_node(
    old: &Metadata,
    old_path: &Path,
    new: &Metadata,
    new_path: &Path,
) -> Result<bool, Error> {
    if (old.dev(), old.ino()) == (new.dev(), new.ino()) {
        return Ok(true);
    }
    if old.len() != new.len() || !same_meta(old, old_path, new, new_path)? {
        return Ok(false);
    }
    if new.file_type().is_symlink() {
        let old_target = fs::read_link(old_path).map_err(|e| read_error(old_path, e))?;
        let new_target = fs::read_link(new_path).map_err(|e| read_error(new_path, e))?;
        return Ok(old_target == new_target);
    }
    if !new.file_type().is_file() || new.len() == 0 || new.mtime_nsec() != 0 {
        return Ok(true);
    }
    same_content(old_path, new_path)
}

/// Compares two files byte for byte.
fn same_content(a: &Path, b: &Path) -> Result<bool, Error> {
    let mut fa = File::open(a).map_err(|e| read_error(a, e))?;
    let mut fb = File::open(b).map_err(|e| read_error(b, e))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fill(&mut fa, &mut ba).map_err(|e| read_error(a, e))?;
        let nb = fill(&mut fb, &mut bb).map_err(|e| read_error(b, e))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
