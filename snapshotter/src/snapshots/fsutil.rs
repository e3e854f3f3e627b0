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
            let bytes = i64::try_from(meta.blocks().saturating_mul(512)).unwrap_or(i64::MAX);
            usage.size = usage.size.saturating_add(bytes);
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    /// Needs root (owners, device nodes).
    #[test]
    fn copies_everything_a_layer_can_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir_all(src.join("ro/inner")).unwrap();
        fs::create_dir(&dst).unwrap();
        fs::write(src.join("ro/inner/f"), "deep").unwrap();
        fs::write(src.join("suid"), "x").unwrap();
        std::os::unix::fs::lchown(src.join("suid"), Some(1), Some(2)).unwrap();
        fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(src.join("suid"), src.join("link")).unwrap();
        std::os::unix::fs::symlink("../nowhere", src.join("sym")).unwrap();
        let dev = nix::sys::stat::makedev(1, 3);
        nix::sys::stat::mknod(
            &src.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            dev,
        )
        .unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        xattr::set(src.join("suid"), "user.berth", b"v").unwrap();
        let old = FileTime::from_unix_time(1_000_000, 0);
        filetime::set_file_times(src.join("ro/inner/f"), old, old).unwrap();
        fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        filetime::set_file_times(src.join("ro"), old, old).unwrap();

        copy_tree(&src, &dst).unwrap();

        let meta = |p: &str| fs::symlink_metadata(dst.join(p)).unwrap();
        assert_eq!(fs::read_to_string(dst.join("ro/inner/f")).unwrap(), "deep");
        assert_eq!((meta("suid").uid(), meta("suid").gid()), (1, 2));
        assert_eq!(meta("suid").mode() & 0o7777, 0o4755);
        assert_eq!(meta("suid").ino(), meta("link").ino());
        assert_eq!(
            fs::read_link(dst.join("sym")).unwrap(),
            Path::new("../nowhere")
        );
        assert_eq!(
            (meta("null").rdev(), meta("null").mode() & 0o7777),
            (dev, 0o600)
        );
        assert!(meta("fifo").file_type().is_fifo() && meta("fifo").mode() & 0o777 == 0o640);
        assert_eq!(
            xattr::get(dst.join("suid"), "user.berth").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(meta("ro").mode() & 0o777, 0o500);
        assert_eq!(FileTime::from_last_modification_time(&meta("ro")), old);
        assert_eq!(
            FileTime::from_last_modification_time(&meta("ro/inner/f")),
            old
        );
        let usage = disk_usage(&dst).unwrap();
        assert_eq!(
            usage.inodes, 8,
            "root, ro, inner, f, suid(+link), sym, null, fifo"
        );
    }
}
