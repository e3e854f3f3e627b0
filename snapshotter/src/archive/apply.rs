//! [`apply_layer`]: a layer tar onto a directory, confined to it.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use berth_proto::errdefs::{Error, Kind, io_error};
use rustix::{
    fs::{self, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid},
    io::Errno,
};

use super::{
    Applied, WHITEOUT_PREFIX,
    entry::{self, Kind as EntryKind, Meta, Parsed, RelPath},
    root::{Root, XattrTarget, fs_error, is_dir, lstat_at, remove_all_at, set_xattrs},
    stream::{HashingReader, decompress, stream_error},
};

mod whiteout;

/// How whiteouts are represented in the target directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// For an overlayfs upper directory (the layer is applied to an empty directory):
    /// `.wh.<name>` becomes a 0/0 character device named `<name>`, and `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory.
    Overlay,
    /// For the native snapshotter (the target holds a copy of the parent's tree): `.wh.<name>`
    /// removes `<name>` recursively, and `.wh..wh..opq` empties its directory of everything
    /// that did not come from this layer, whatever order the layer's entries came in.
    Remove,
}

/// How [`apply_layer`] writes a layer.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The whiteout representation the snapshotter needs.
    pub whiteouts: WhiteoutMode,
}

/// Applies a layer — a plain, gzip or zstd tar, detected from its magic bytes — streamed from
/// `reader` onto the directory `root`, and returns its diff ID and uncompressed size.
///
/// Decompression, hashing and extraction happen in one pass; the stream is read to its end so
/// the digest covers trailing blocks. Nothing is written outside `root`: see the module doc
/// for the rules. On error `root` is left partly written, to be discarded by the caller.
pub fn apply_layer(
    reader: impl Read,
    root: &Path,
    options: &ApplyOptions,
) -> Result<Applied, Error> {
    let target = Root::open(root)?;
    let (compression, stream) = decompress(reader)?;
    let mut archive = tar::Archive::new(HashingReader::new(stream));
    let mut applier = Applier {
        root: &target,
        mode: options.whiteouts,
        added: HashSet::new(),
        dir_times: HashMap::new(),
        buffer: vec![0; 128 * 1024],
    };
    let entries = archive
        .entries()
        .map_err(|e| stream_error("reading layer", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| stream_error("reading layer", e))?;
        if let Some(parsed) = entry::parse(&mut entry)? {
            applier.apply(parsed, &mut entry)?;
        }
    }
    applier.set_dir_times()?;
    let applied = archive.into_inner().finish()?;
    tracing::debug!(
        root = %root.display(),
        ?compression,
        diff_id = %applied.diff_id,
        size = applied.size,
        "applied layer"
    );
    Ok(applied)
}

/// The state of one apply.
struct Applier<'r> {
    root: &'r Root,
    mode: WhiteoutMode,
    /// Paths this layer wrote, with all their ancestors: whiteouts never remove these.
    added: HashSet<RelPath>,
    /// Directory mtimes, set at the end (deepest first) since adding children changes them.
    dir_times: HashMap<RelPath, Timespec>,
    buffer: Vec<u8>,
}

impl Applier<'_> {
    fn apply(&mut self, entry: Parsed, data: &mut impl Read) -> Result<(), Error> {
        let Parsed {
            path,
            kind,
            meta,
            size,
            sparse,
        } = entry;
        if path.is_root() {
            return self.apply_root(kind, &meta);
        }
        let (parent, name) = path.split();
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&parent, name);
        }
        let dir = self.root.make_dirs(&parent)?;
        let dir = dir.as_fd();
        let fail = |what: &str, e: Errno| fs_error(format!("{what} {:?}", path.display()), e);
        match kind {
            EntryKind::Dir => {
                match lstat_at(dir, name).map_err(|e| fail("inspecting", e))? {
                    Some(stat) if is_dir(&stat) => {}
                    existing => {
                        if existing.is_some() {
                            remove_all_at(dir, name).map_err(|e| fail("replacing", e))?;
                        }
                        fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                            .map_err(|e| fail("creating directory", e))?;
                    }
                }
                let fd = fs::openat(dir, name, dir_flags(), Mode::empty())
                    .map_err(|e| fail("opening directory", e))?;
                own(&fd, &meta).map_err(|e| fail("setting owner and mode of", e))?;
                set_xattrs(XattrTarget::Fd(fd.as_fd()), &meta.xattrs, &path)?;
                self.dir_times.insert(path.clone(), meta.mtime);
            }
            EntryKind::File => {
                remove_all_at(dir, name).map_err(|e| fail("replacing", e))?;
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))
                    .map_err(|e| fail("creating", e))?;
                let mut file = File::from(fd);
                self.copy_data(data, &mut file, &path, size, sparse)?;
                own(&file, &meta).map_err(|e| fail("setting owner and mode of", e))?;
                set_xattrs(XattrTarget::Fd(file.as_fd()), &meta.xattrs, &path)?;
                fs::futimens(&file, &times(meta.mtime)).map_err(|e| fail("setting times of", e))?;
            }
            EntryKind::Symlink(target) => {
                remove_all_at(dir, name).map_err(|e| fail("replacing", e))?;
                fs::symlinkat(target.as_slice(), dir, name)
                    .map_err(|e| fail("creating symlink", e))?;
                self.finish_at(dir, name, &path, &meta, false)?;
            }
            EntryKind::Hardlink(target) => self.hardlink(dir, name, &path, &target)?,
            EntryKind::Char(..) | EntryKind::Block(..) | EntryKind::Fifo => {
                self.mknod(dir, name, &path, &meta, &kind)?;
            }
        }
        self.mark_added(path);
        Ok(())
    }

    /// An entry naming the root itself (`./`): a directory sets the root's metadata.
    fn apply_root(&mut self, kind: EntryKind, meta: &Meta) -> Result<(), Error> {
        if kind != EntryKind::Dir {
            return Err(Error::invalid(
                "tar entry names the layer root but is not a directory",
            ));
        }
        let root = RelPath::default();
        let fail = |e| fs_error("setting owner and mode of the layer root", e);
        let fd = self.root.open_dir(&root).map_err(fail)?;
        own(&fd, meta).map_err(fail)?;
        set_xattrs(XattrTarget::Fd(fd.as_fd()), &meta.xattrs, &root)?;
        self.dir_times.insert(root, meta.mtime);
        Ok(())
    }

    /// Copies the entry's data into `file`, checking that the stream held all of it. For
    /// sparse entries, all-zero chunks are skipped over, leaving holes.
    fn copy_data(
        &mut self,
        data: &mut impl Read,
        file: &mut File,
        path: &RelPath,
        size: u64,
        sparse: bool,
    ) -> Result<(), Error> {
        let write_error = |e| io_error(format!("writing {:?}", path.display()), e);
        let mut written: u64 = 0;
        loop {
            let n = data
                .read(&mut self.buffer)
                .map_err(|e| stream_error(format!("reading data of {:?}", path.display()), e))?;
            if n == 0 {
                break;
            }
            let chunk = &self.buffer[..n];
            if sparse && chunk.iter().all(|&b| b == 0) {
                file.seek(SeekFrom::Current(n as i64))
                    .map_err(write_error)?;
            } else {
                file.write_all(chunk).map_err(write_error)?;
            }
            written += n as u64;
        }
        if sparse {
            // A trailing hole was only seeked over.
            file.set_len(written).map_err(write_error)?;
        }
        if written != size {
            return Err(Error::new(
                Kind::DataLoss,
                format!(
                    "layer stream truncated: {:?} has {written} of {size} bytes",
                    path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Links `name` in `dir` to `target`, an existing non-directory inside the root.
    fn hardlink(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &RelPath,
        target: &RelPath,
    ) -> Result<(), Error> {
        let missing = || {
            Error::invalid(format!(
                "hard link {:?} -> {:?}: the target is not in this layer or below it",
                path.display(),
                target.display()
            ))
        };
        let fail = |what: &str, e| fs_error(format!("{what} hard link {:?}", path.display()), e);
        let (target_parent, target_name) = target.split();
        if target.is_root() {
            return Err(Error::invalid(format!(
                "hard link {:?} points at the layer root",
                path.display()
            )));
        }
        let target_dir = match self.root.open_dir(&target_parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(missing()),
            Err(e) => return Err(fail("resolving the target of", e)),
        };
        let target_stat = lstat_at(target_dir.as_fd(), target_name)
            .map_err(|e| fail("inspecting the target of", e))?
            .ok_or_else(missing)?;
        if is_dir(&target_stat) {
            return Err(Error::invalid(format!(
                "hard link {:?} points at directory {:?}",
                path.display(),
                target.display()
            )));
        }
        if let Some(existing) = lstat_at(dir, name).map_err(|e| fail("inspecting", e))? {
            if (existing.st_dev, existing.st_ino) == (target_stat.st_dev, target_stat.st_ino) {
                return Ok(());
            }
            remove_all_at(dir, name).map_err(|e| fail("replacing", e))?;
        }
        // Without AT_SYMLINK_FOLLOW a final symlink is linked itself, never its target.
        fs::linkat(&target_dir, target_name, dir, name, AtFlags::empty())
            .map_err(|e| fail("creating", e))
    }

    /// Creates the device node or fifo `kind` as `name` in `dir`.
    fn mknod(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &RelPath,
        meta: &Meta,
        kind: &EntryKind,
    ) -> Result<(), Error> {
        let (file_type, major, minor) = match *kind {
            EntryKind::Char(major, minor) => (FileType::CharacterDevice, major, minor),
            EntryKind::Block(major, minor) => (FileType::BlockDevice, major, minor),
            _ => (FileType::Fifo, 0, 0),
        };
        let fail = |what: &str, e| fs_error(format!("{what} {:?}", path.display()), e);
        remove_all_at(dir, name).map_err(|e| fail("replacing", e))?;
        let mode = Mode::from_raw_mode(meta.mode);
        fs::mknodat(dir, name, file_type, mode, fs::makedev(major, minor))
            .map_err(|e| fail("creating node", e))?;
        self.finish_at(dir, name, path, meta, true)
    }

    /// Sets owner, (mode), xattrs and times of `name` in `dir`, a symlink or node we just
    /// created and that cannot be opened for writing.
    fn finish_at(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &RelPath,
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), Error> {
        let fail = |what: &str, e| fs_error(format!("{what} {:?}", path.display()), e);
        let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
        fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fail("setting owner of", e))?;
        if chmod {
            // Linux has no lchmod; `name` is the node we just made with mknodat, not a
            // symlink, so following it is a no-op. After chown, which clears setuid.
            fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| fail("setting mode of", e))?;
        }
        set_xattrs(XattrTarget::At(dir, name), &meta.xattrs, path)?;
        fs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fail("setting times of", e))
    }

    /// Sets the deferred directory mtimes, deepest first.
    fn set_dir_times(&mut self) -> Result<(), Error> {
        let mut dirs: Vec<_> = self.dir_times.drain().collect();
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.depth()));
        for (path, mtime) in dirs {
            // Replaced by a non-directory later in the layer: nothing to set.
            let fd = match self.root.open_dir_nofollow(&path) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(fs_error(format!("opening {:?}", path.display()), e)),
            };
            fs::futimens(&fd, &times(mtime))
                .map_err(|e| fs_error(format!("setting times of {:?}", path.display()), e))?;
        }
        Ok(())
    }
}

/// chown, then chmod (chown clears setuid and setgid).
fn own(fd: impl AsFd, meta: &Meta) -> Result<(), Errno> {
    let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
    fs::fchown(&fd, Some(uid), Some(gid))?;
    fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
}

/// Access and modification time both set to the entry's mtime.
fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// Opening a directory we are about to modify: never through a final symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}
