//! Trees in and out of tar streams, confined to a [`Root`]: `cp` and `export` use these.
//!
//! Packing walks directories by descriptor and never follows a symlink (it is stored as a
//! symlink); unpacking resolves every entry's directory inside the root with `openat2`, creates
//! the entry itself with `O_NOFOLLOW`/`O_EXCL` (an existing symlink is replaced, never written
//! through), and refuses `..` in names and hard-link targets.

use std::{
    ffi::OsStr,
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{AsFd, BorrowedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Component, Path, PathBuf},
};

use anyhow::{Context as _, bail};
use rustix::{
    fs::{self, AtFlags, FileType, Gid, Mode, OFlags, StatxFlags, Timestamps, Uid},
    io::Errno,
};

use crate::rootfs::{DIR, Root};

/// How a tree is packed.
#[derive(Clone, Copy, Default)]
pub struct PackOptions {
    /// Do not descend into directories that are other mounts (`export` skips `/proc`, `/sys`
    /// and volumes the way docker's export of a rootfs does); their directory is kept.
    pub same_mount: bool,
}

/// What to pack: `name` in the open directory `dir`, stored as `tar_path`.
struct Item<'a> {
    dir: BorrowedFd<'a>,
    name: &'a OsStr,
    tar_path: PathBuf,
}

fn statx(dir: BorrowedFd<'_>, name: &OsStr) -> Result<fs::Statx, Errno> {
    fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )
}

/// The names in directory `dir` (no `.`/`..`), sorted so archives are reproducible.
pub fn list_dir(dir: BorrowedFd<'_>) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Packs `name` in `dir` (and, for a directory, everything below) as `tar_path`.
pub fn pack_entry<W: Write>(
    out: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    tar_path: &Path,
    options: PackOptions,
) -> anyhow::Result<()> {
    let root_mount = statx(dir, OsStr::new(".")).map(|s| s.stx_mnt_id)?;
    pack(
        out,
        Item {
            dir,
            name,
            tar_path: tar_path.to_path_buf(),
        },
        options,
        root_mount,
    )
}

/// Packs every entry of directory `dir` with its bare name (the layout of `docker export`).
pub fn pack_children<W: Write>(
    out: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    prefix: &Path,
    options: PackOptions,
) -> anyhow::Result<()> {
    let root_mount = statx(dir, OsStr::new(".")).map(|s| s.stx_mnt_id)?;
    for child in list_dir(dir)? {
        let name = OsStr::from_bytes(&child);
        let item = Item {
            dir,
            name,
            tar_path: prefix.join(name),
        };
        pack(out, item, options, root_mount)?;
    }
    Ok(())
}

fn header_for(st: &fs::Statx, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(u32::from(st.stx_mode) & 0o7777);
    header.set_uid(u64::from(st.stx_uid));
    header.set_gid(u64::from(st.stx_gid));
    header.set_mtime(st.stx_mtime.tv_sec.max(0) as u64);
    header.set_size(0);
    header
}

fn pack<W: Write>(
    out: &mut tar::Builder<W>,
    item: Item<'_>,
    options: PackOptions,
    root_mount: u64,
) -> anyhow::Result<()> {
    let shown = item.tar_path.display().to_string();
    let st = match statx(item.dir, item.name) {
        Ok(st) => st,
        // Gone while we walked a live container: nothing to copy.
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {shown}")),
    };
    let kind = FileType::from_raw_mode(u32::from(st.stx_mode));
    let context = || format!("archiving {shown}");
    match kind {
        FileType::Directory => {
            let mut header = header_for(&st, tar::EntryType::Directory);
            out.append_data(&mut header, &item.tar_path, io::empty())
                .with_context(context)?;
            if options.same_mount && st.stx_mnt_id != root_mount {
                return Ok(());
            }
            let sub = fs::openat(item.dir, item.name, DIR | OFlags::NOFOLLOW, Mode::empty())
                .with_context(context)?;
            for child in list_dir(sub.as_fd())? {
                let name = OsStr::from_bytes(&child);
                let child_item = Item {
                    dir: sub.as_fd(),
                    name,
                    tar_path: item.tar_path.join(name),
                };
                pack(out, child_item, options, root_mount)?;
            }
        }
        FileType::RegularFile => {
            let fd = fs::openat(
                item.dir,
                item.name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .with_context(context)?;
            let mut header = header_for(&st, tar::EntryType::Regular);
            header.set_size(st.stx_size);
            let data = Exact::new(File::from(fd), st.stx_size);
            out.append_data(&mut header, &item.tar_path, data)
                .with_context(context)?;
        }
        FileType::Symlink => {
            let target = fs::readlinkat(item.dir, item.name, Vec::new()).with_context(context)?;
            let mut header = header_for(&st, tar::EntryType::Symlink);
            out.append_link(
                &mut header,
                &item.tar_path,
                OsStr::from_bytes(target.as_bytes()),
            )
            .with_context(context)?;
        }
        FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
            let entry = match kind {
                FileType::Fifo => tar::EntryType::Fifo,
                FileType::CharacterDevice => tar::EntryType::Char,
                _ => tar::EntryType::Block,
            };
            let mut header = header_for(&st, entry);
            header.set_device_major(st.stx_rdev_major)?;
            header.set_device_minor(st.stx_rdev_minor)?;
            out.append_data(&mut header, &item.tar_path, io::empty())
                .with_context(context)?;
        }
        // Sockets and unknown kinds have no tar form.
        _ => {}
    }
    Ok(())
}

/// Reads exactly `size` bytes: a file that shrinks while being archived is padded with zeros
/// and one that grows is cut, so the header's size always holds.
struct Exact<R> {
    inner: R,
    left: u64,
    eof: bool,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Exact {
            inner,
            left: size,
            eof: false,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = if self.eof {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.eof = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// How an archive is unpacked.
#[derive(Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Keep the archive's owners (root's `cp -a`); otherwise files belong to the caller.
    pub preserve_owner: bool,
}

/// The parts of an entry's path, refusing `..` (a tree we copy never needs it).
fn clean(path: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => bail!("refusing archive entry {:?}: it contains ..", path),
            Component::Prefix(_) => bail!("refusing archive entry {:?}", path),
        }
    }
    Ok(out)
}

/// Unpacks `archive` into the directory `dest` inside `root`. With `rename = Some((from,
/// to))`, a top-level entry named `from` lands as `to` (copying `a` to a new name `b`).
pub fn unpack<R: Read>(
    root: &Root,
    dest: &Path,
    archive: R,
    rename: Option<(&OsStr, &OsStr)>,
    options: UnpackOptions,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(archive);
    let place = |raw: &Path| -> anyhow::Result<PathBuf> {
        let rel = clean(raw)?;
        let mut parts = rel.components();
        let renamed = match (parts.next(), rename) {
            (Some(first), Some((from, to))) if first.as_os_str() == from => {
                Path::new(to).join(parts.as_path())
            }
            _ => rel.clone(),
        };
        Ok(dest.join(renamed))
    };
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let raw = entry.path().context("reading an archive entry's name")?;
        let target = place(&raw)?;
        let shown = target.display().to_string();
        let link = entry
            .link_name()
            .context("reading a link target")?
            .map(|l| l.into_owned());
        let header = entry.header().clone();
        let kind = header.entry_type();
        if !(kind.is_file()
            || kind.is_dir()
            || kind.is_symlink()
            || kind.is_hard_link()
            || kind.is_fifo()
            || kind.is_character_special()
            || kind.is_block_special())
        {
            continue;
        }
        let parent = target.parent().unwrap_or(Path::new("/"));
        let Some(name) = target.file_name() else {
            // The destination directory itself (`.`): nothing to create.
            continue;
        };
        let dir = root
            .make_dirs(parent)
            .with_context(|| format!("creating the directory of {shown}"))?;
        let existing = statx(dir.as_fd(), name).ok();
        let existing_kind = existing
            .as_ref()
            .map(|st| FileType::from_raw_mode(u32::from(st.stx_mode)));
        let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
        let context = || format!("writing {shown}");
        if kind.is_dir() {
            match existing_kind {
                Some(FileType::Directory) => {}
                Some(_) => bail!("cannot overwrite non-directory {shown} with a directory"),
                None => fs::mkdirat(&dir, name, mode).with_context(context)?,
            }
        } else {
            match existing_kind {
                Some(FileType::Directory) => {
                    bail!("cannot overwrite directory {shown} with a non-directory")
                }
                Some(_) => fs::unlinkat(&dir, name, AtFlags::empty()).with_context(context)?,
                None => {}
            }
            if kind.is_symlink() {
                let link = link.with_context(|| format!("symlink {shown} has no target"))?;
                fs::symlinkat(&link, &dir, name).with_context(context)?;
            } else if kind.is_hard_link() {
                let link = link.with_context(|| format!("hard link {shown} has no target"))?;
                let source = place(&link)?;
                let (from_dir, from_name) = root
                    .parent_of(&source)
                    .with_context(|| format!("finding {} to link to", source.display()))?;
                let from_name =
                    from_name.with_context(|| format!("bad hard link target {link:?}"))?;
                fs::linkat(&from_dir, from_name, &dir, name, AtFlags::empty())
                    .with_context(context)?;
            } else if kind.is_file() {
                let fd = fs::openat(
                    &dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode,
                )
                .with_context(context)?;
                let mut file = File::from(fd);
                io::copy(&mut entry, &mut file).with_context(context)?;
            } else {
                let file_type = if kind.is_fifo() {
                    FileType::Fifo
                } else if kind.is_character_special() {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                let dev = fs::makedev(
                    header.device_major()?.unwrap_or(0),
                    header.device_minor()?.unwrap_or(0),
                );
                fs::mknodat(&dir, name, file_type, mode, dev).with_context(context)?;
            }
        }
        finish(&dir, name, &header, kind, mode, options).with_context(context)?;
    }
    Ok(())
}

/// Sets owner, mode and modification time of a new entry without ever following it: the
/// mode goes through an `O_PATH` descriptor of the entry itself (a live container could swap
/// the name for a symlink meanwhile; then nothing is changed).
fn finish(
    dir: &impl AsFd,
    name: &OsStr,
    header: &tar::Header,
    kind: tar::EntryType,
    mode: Mode,
    options: UnpackOptions,
) -> anyhow::Result<()> {
    if options.preserve_owner {
        let uid = header.uid()?;
        let gid = header.gid()?;
        fs::chownat(
            dir,
            name,
            Some(Uid::from_raw(uid as u32)),
            Some(Gid::from_raw(gid as u32)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if kind.is_symlink() {
        return Ok(());
    }
    let fd = fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if FileType::from_raw_mode(fs::fstat(&fd)?.st_mode) == FileType::Symlink {
        bail!("it was replaced by a symlink while being copied");
    }
    // chmod after chown (chown clears set-id bits), and explicitly (the umask applied).
    let by_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    fs::chmod(by_fd.as_str(), mode)?;
    if !kind.is_dir() {
        let mtime = fs::Timespec {
            tv_sec: header.mtime()? as i64,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: mtime,
            last_modification: mtime,
        };
        fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_pads_and_cuts() {
        let mut out = Vec::new();
        Exact::new(&b"abc"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact::new(&b"abcdef"[..], 2).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn round_trip_keeps_symlinks_and_refuses_dotdot() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/f"), "data").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("d/l")).unwrap();
        let root = Root::open(src.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        pack_entry(
            &mut tar,
            root.fd(),
            OsStr::new("d"),
            Path::new("d"),
            PackOptions::default(),
        )
        .unwrap();
        let bytes = tar.into_inner().unwrap();

        let dst = tempfile::tempdir().unwrap();
        let root = Root::open(dst.path()).unwrap();
        let rename = (OsStr::new("d"), OsStr::new("e"));
        unpack(
            &root,
            Path::new("/"),
            &bytes[..],
            Some(rename),
            UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read(dst.path().join("e/f")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(dst.path().join("e/l")).unwrap(),
            Path::new("/etc/passwd")
        );

        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        evil.append(&h, &b"x"[..]).unwrap();
        let bytes = evil.into_inner().unwrap();
        assert!(
            unpack(
                &root,
                Path::new("/"),
                &bytes[..],
                None,
                UnpackOptions::default()
            )
            .is_err()
        );
    }
}
