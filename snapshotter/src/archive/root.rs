//! Filesystem operations confined to a root directory.
//!
//! Every path from a tar goes through [`Root::open_dir`] (or [`Root::make_dirs`]), which
//! resolves it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a descriptor of the
//! root; everything else here works on names relative to such a resolved directory descriptor
//! and never follows a final symlink.

use std::{
    fmt,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::Path,
};

use berth_proto::errdefs::{Error, Kind, io_error};
use rustix::{
    fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, XattrFlags},
    io::Errno,
};

use super::{Xattrs, entry::RelPath};

/// How tar paths resolve: symlinks (and `..`) stay inside the root; no `/proc` magic links.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// How directories are opened: readable (for `fchmod`, `fsetxattr`, `getdents`).
const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);
/// `openat2` fails with EAGAIN when a rename races the lookup; retry this often.
const EAGAIN_RETRIES: usize = 32;

/// An I/O failure on the target filesystem, with context, classified by errno.
pub(super) fn fs_error(context: impl fmt::Display, err: Errno) -> Error {
    if err == Errno::NOSYS {
        return Error::new(
            Kind::NotImplemented,
            format!("{context}: openat2 is not available (Linux 5.6 or later is needed)"),
        );
    }
    io_error(context, err.into())
}

/// A directory that layer entries are applied to, held open by descriptor.
pub(super) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the root directory (the path itself is trusted and may be a symlink).
    pub(super) fn open(path: &Path) -> Result<Root, Error> {
        let fd = fs::open(path, DIR, Mode::empty())
            .map_err(|e| fs_error(format!("opening {}", path.display()), e))?;
        Ok(Root { fd })
    }

    /// Opens the directory at `rel`, following symlinks as if the root were `/`.
    pub(super) fn open_dir(&self, rel: &RelPath) -> Result<OwnedFd, Errno> {
        openat2(self.fd.as_fd(), rel.as_arg(), DIR)
    }

    /// Opens the directory at `rel` without following its last component (`ELOOP` or
    /// `ENOTDIR` if it is not a directory).
    pub(super) fn open_dir_nofollow(&self, rel: &RelPath) -> Result<OwnedFd, Errno> {
        openat2(self.fd.as_fd(), rel.as_arg(), DIR | OFlags::NOFOLLOW)
    }

    /// Opens the directory at `rel`, creating missing components (mode 0755, owned by the
    /// caller) the way tar extractors create parents that the archive does not list.
    pub(super) fn make_dirs(&self, rel: &RelPath) -> Result<OwnedFd, Error> {
        let context = || format!("creating directory {:?}", rel.display());
        match self.open_dir(rel) {
            Err(Errno::NOENT) => {}
            other => return other.map_err(|e| fs_error(context(), e)),
        }
        let mut current = self
            .open_dir(&RelPath::default())
            .map_err(|e| fs_error(context(), e))?;
        let mut prefix = RelPath::default();
        for component in rel.as_bytes().split(|&b| b == b'/') {
            prefix = prefix.join(component);
            current = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    // A dangling symlink or other non-directory here makes mkdirat fail with
                    // EEXIST: we never create through it.
                    fs::mkdirat(&current, component, Mode::from_raw_mode(0o755))
                        .map_err(|e| fs_error(context(), e))?;
                    let fd = fs::openat(&current, component, DIR | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(|e| fs_error(context(), e))?;
                    // mkdirat is subject to the process umask; parents are 0755 regardless.
                    fs::fchmod(&fd, Mode::from_raw_mode(0o755))
                        .map_err(|e| fs_error(context(), e))?;
                    fd
                }
                Err(e) => return Err(fs_error(context(), e)),
            };
        }
        Ok(current)
    }
}

/// `openat2` with [`RESOLVE`], retried on EAGAIN.
fn openat2(dir: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match fs::openat2(dir, path, flags, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN | Errno::INTR) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<Stat>, Errno> {
    match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `stat` describes a directory.
pub(super) fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::Directory
}

/// Removes `name` from `dir`, recursively if it is a directory, never following symlinks.
/// A missing `name` is not an error.
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let sub = match fs::openat(dir, name, DIR | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(sub) => sub,
        Err(Errno::NOENT) => return Ok(()),
        // Not a directory after all: unlinkat's EPERM was genuine.
        Err(Errno::NOTDIR | Errno::LOOP) => return Err(Errno::PERM),
        Err(e) => return Err(e),
    };
    for child in list_dir(sub.as_fd())? {
        remove_all_at(sub.as_fd(), &child)?;
    }
    match fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The names in directory `dir`, without `.` and `..`.
pub(super) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Where an xattr goes: an open file or directory, or a name in a directory (symlinks, device
/// nodes and fifos, which cannot be opened for `fsetxattr`).
pub(super) enum XattrTarget<'a> {
    /// `fsetxattr` on an open descriptor.
    Fd(BorrowedFd<'a>),
    /// `lsetxattr` on `/proc/self/fd/<dir>/<name>`: the directory is already resolved, and
    /// `lsetxattr` does not follow the final name.
    At(BorrowedFd<'a>, &'a [u8]),
}

/// Sets `xattrs` on `target`; a filesystem without xattr support only logs a warning.
pub(super) fn set_xattrs(
    target: XattrTarget<'_>,
    xattrs: &Xattrs,
    shown: &RelPath,
) -> Result<(), Error> {
    for (name, value) in xattrs {
        let result = match &target {
            XattrTarget::Fd(fd) => fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty()),
            XattrTarget::At(dir, entry) => {
                let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                path.extend_from_slice(entry);
                fs::lsetxattr(path, name.as_slice(), value, XattrFlags::empty())
            }
        };
        match result {
            Ok(()) => {}
            Err(Errno::NOTSUP) => tracing::warn!(
                path = %shown.display(),
                xattr = %String::from_utf8_lossy(name),
                "filesystem does not support this xattr; skipped"
            ),
            Err(e) => {
                let name = String::from_utf8_lossy(name);
                return Err(fs_error(
                    format!("setting xattr {name} on {:?}", shown.display()),
                    e,
                ));
            }
        }
    }
    Ok(())
}
