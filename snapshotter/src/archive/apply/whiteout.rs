//! Whiteouts: `.wh.<name>` and `.wh..wh..opq`, in either [`WhiteoutMode`].

use std::os::fd::{AsFd, BorrowedFd};

use berth_proto::errdefs::Error;
use rustix::{
    fs::{self, FileType, Mode, XattrFlags},
    io::Errno,
};

use super::{Applier, WhiteoutMode, dir_flags};
use crate::archive::{
    OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX,
    entry::RelPath,
    root::{fs_error, is_dir, list_dir, lstat_at, remove_all_at},
};

impl Applier<'_> {
    /// Applies the whiteout `name` found in directory `parent`.
    pub(super) fn whiteout(&mut self, parent: &RelPath, name: &[u8]) -> Result<(), Error> {
        if name == WHITEOUT_OPAQUE {
            return self.opaque(parent);
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            tracing::debug!(
                dir = %parent.display(),
                name = %String::from_utf8_lossy(name),
                "ignoring AUFS whiteout metadata"
            );
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::invalid(format!(
                "malformed whiteout {:?}",
                parent.join(name).display()
            )));
        }
        let target = parent.join(hidden);
        if self.added.contains(&target) {
            // Whiteouts hide lower layers only, never what this layer added itself.
            return Ok(());
        }
        let fail = |e| fs_error(format!("applying whiteout for {:?}", target.display()), e);
        match self.mode {
            WhiteoutMode::Overlay => {
                let dir = self.root.make_dirs(parent)?;
                // Only an implicit directory or an earlier whiteout of this layer can be here.
                remove_all_at(dir.as_fd(), hidden).map_err(fail)?;
                let node = FileType::CharacterDevice;
                fs::mknodat(&dir, hidden, node, Mode::empty(), fs::makedev(0, 0)).map_err(fail)?;
            }
            WhiteoutMode::Remove => match self.root.open_dir(parent) {
                Ok(dir) => remove_all_at(dir.as_fd(), hidden).map_err(fail)?,
                // Nothing below to hide.
                Err(Errno::NOENT | Errno::NOTDIR) => {}
                Err(e) => return Err(fail(e)),
            },
        }
        Ok(())
    }

    /// Makes directory `dir` opaque: lower layers' entries in it are hidden.
    fn opaque(&mut self, dir: &RelPath) -> Result<(), Error> {
        let fd = self.root.make_dirs(dir)?;
        let fail = |e| fs_error(format!("making {:?} opaque", dir.display()), e);
        match self.mode {
            WhiteoutMode::Overlay => {
                fs::fsetxattr(&fd, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(fail)?;
            }
            WhiteoutMode::Remove => self.prune(fd.as_fd(), dir).map_err(fail)?,
        }
        self.mark_added(dir.clone());
        Ok(())
    }

    /// Removes everything under `dir` (open as `fd`) that this layer did not add.
    fn prune(&self, fd: BorrowedFd<'_>, dir: &RelPath) -> Result<(), Errno> {
        for name in list_dir(fd)? {
            let child = dir.join(&name);
            if !self.added.contains(&child) {
                remove_all_at(fd, &name)?;
            } else if lstat_at(fd, &name)?.is_some_and(|stat| is_dir(&stat)) {
                let sub = fs::openat(fd, name.as_slice(), dir_flags(), Mode::empty())?;
                self.prune(sub.as_fd(), &child)?;
            }
        }
        Ok(())
    }

    /// Records that this layer wrote `path` (and so, implicitly, its ancestors).
    pub(super) fn mark_added(&mut self, path: RelPath) {
        for ancestor in path.ancestors() {
            if !self.added.insert(ancestor) {
                break;
            }
        }
        self.added.insert(path);
    }
}
