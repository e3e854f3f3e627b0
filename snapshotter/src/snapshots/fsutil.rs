//! Filesystem chores of the snapshotters: measuring a tree, copying one faithfully, and
//! making directories with exact modes.

use std::{
    collections::{HashMap, HashSet},
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, io_error};
use filetime::FileTime;
use nix::sys::stat::{Mode, SFlag};
use walkdir::WalkDir;

use super::Usage;

/// Creates `path` with exactly `mode` (whatever the umask).
pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<(), Error> {
    fs::create_dir(path).map_err(|e| io_error(format!("mkdir {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(format!("chmod {}", path.display()), e))
}

/// Converts a walkdir failure into an error that keeps the I/O class.
fn walk_error(err: walkdir::Error) -> Error {
    let what = err
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match err.into_io_error() {
        Some(io) => io_error(format!("walk {what}"), io),
        None => Error::internal(format!("walk {what}: filesystem loop")),
    }
}

/// The space and inodes used below `root` (root included), as `du` counts them: allocated
/// blocks, hard-linked inodes once.
pub(crate) fn disk_usage(root: &Path) -> Result<Usage, Error> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(walk_error)?;
        let meta = entry.metadata().map_err(walk_error)?;
        if seen.insert((meta.dev(), meta.ino())) {
            usage.inodes += 1;
            usage.size += i64::try_from(meta.blocks()).unwrap_or(i64::MAX / 1024) * 512;
        }
    }
    Ok(usage)
}

/// Copies the tree `src` into the existing directory `dst`: contents, owners, modes, times,
/// extended attributes, symlinks, devices, fifos and sockets, with hard links kept as links
/// within the copy. Extended attributes the kernel refuses (`security.*`, for instance) are
/// skipped, as containerd's native snapshotter does.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    // Directories get their metadata last, deepest first: a read-only directory must stay
    // writable until it is filled, and filling it changes its times.
    let mut dirs: Vec<(PathBuf, fs::Metadata, PathBuf)> = Vec::new();
    for entry in WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(walk_error)?;
        let meta = entry.metadata().map_err(walk_error)?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .map_err(|_| Error::internal("walk left the source tree"))?;
        let target = dst.join(rel);
        let kind = meta.file_type();
        if kind.is_dir() {
            if entry.depth() > 0 {
                fs::create_dir(&target).map_err(|e| io_error(ctx(&target), e))?;
            }
            dirs.push((entry.path().to_path_buf(), meta, target));
            continue;
        }
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &target).map_err(|e| io_error(ctx(&target), e))?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), target.clone());
        }
        if kind.is_symlink() {
            let to = fs::read_link(entry.path()).map_err(|e| io_error(ctx(entry.path()), e))?;
            std::os::unix::fs::symlink(to, &target).map_err(|e| io_error(ctx(&target), e))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).map_err(|e| io_error(ctx(&target), e))?;
        } else {
            let kind = SFlag::from_bits_truncate(meta.mode() & SFlag::S_IFMT.bits());
            let perm = Mode::from_bits_truncate(meta.mode() & 0o7777);
            nix::sys::stat::mknod(&target, kind, perm, meta.rdev())
                .map_err(|errno| io_error(ctx(&target), errno.into()))?;
        }
        copy_metadata(entry.path(), &meta, &target)?;
    }
    for (path, meta, target) in dirs.iter().rev() {
        copy_metadata(path, meta, target)?;
    }
    Ok(())
}

fn ctx(path: &Path) -> String {
    format!("copy {}", path.display())
}

/// Gives `target` the owner, mode, extended attributes and times of `src` (described by
/// `meta`), without following symlinks.
fn copy_metadata(src: &Path, meta: &fs::Metadata, target: &Path) -> Result<(), Error> {
    let symlink = meta.file_type().is_symlink();
    std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| io_error(format!("chown {}", target.display()), e))?;
    if !symlink {
        // After chown, which clears set-id bits.
        fs::set_permissions(target, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io_error(format!("chmod {}", target.display()), e))?;
    }
    copy_xattrs(src, target);
    let atime = FileTime::from_last_access_time(meta);
    let mtime = FileTime::from_last_modification_time(meta);
    filetime::set_symlink_file_times(target, atime, mtime)
        .map_err(|e| io_error(format!("set times of {}", target.display()), e))
}

/// Copies the extended attributes the kernel lets us copy; the rest are logged and skipped.
fn copy_xattrs(src: &Path, target: &Path) {
    let names = match xattr::list(src) {
        Ok(names) => names,
        Err(err) => {
            tracing::debug!(path = %src.display(), %err, "cannot list xattrs");
            return;
        }
    };
    for name in names {
        let copied = xattr::get(src, &name).and_then(|value| match value {
            Some(value) => xattr::set(target, &name, &value),
            None => Ok(()),
        });
        if let Err(err) = copied {
            tracing::debug!(path = %target.display(), name = ?name, %err, "xattr not copied");
        }
    }
}
