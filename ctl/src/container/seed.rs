//! Seeding a new volume from the image, as Docker does: when an empty volume is mounted where
//! the image has a directory, that directory's content (and its owner and mode) are copied
//! into the volume before the container first runs.
//!
//! The image side is read through a [`Root`] (every path resolved inside the image's root
//! filesystem, symlinks stored, never followed) and written with [`tarfs::unpack`], so an
//! image cannot make the copy reach outside the volume.

use std::{
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use rustix::{fs, io::Errno};

use crate::{
    rootfs::{DIR, Root},
    tarfs::{self, PackOptions, UnpackOptions},
};

/// A volume that is empty now, and where it is mounted.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The volume's data directory on the host.
    pub data: PathBuf,
    /// Where it is mounted in the container.
    pub target: PathBuf,
}

/// Whether the directory `data` is empty (a missing or unreadable one is not seeded).
pub fn is_empty(data: &Path) -> bool {
    std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_none())
}

/// Empties the directory `data` again after a failed copy (best effort).
pub fn clear(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

/// Copies the image's directory at `seed.target` (in the root filesystem mounted at `rootfs`)
/// into `seed.data`. Nothing happens when the image has no directory there.
pub fn seed(rootfs: &Path, seed: &Seed) -> anyhow::Result<()> {
    let image = Root::open(rootfs)?;
    let source = match image.open_at(&seed.target, DIR) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("opening {} in the image", seed.target.display()));
        }
    };
    let volume = Root::open(&seed.data)?;
    let shown = seed.target.display();
    let st = fs::fstat(&source).with_context(|| format!("inspecting {shown} in the image"))?;
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    std::thread::scope(|s| {
        let packer = s.spawn(move || -> anyhow::Result<()> {
            let mut out = tar::Builder::new(writer);
            let options = PackOptions { same_mount: true };
            tarfs::pack_children(&mut out, source.as_fd(), Path::new(""), options)?;
            out.finish()?;
            Ok(())
        });
        let options = UnpackOptions {
            preserve_owner: true,
        };
        let unpacked = tarfs::unpack(&volume, Path::new("/"), reader, None, options);
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the copy thread panicked")));
        // When the writing side stops, the packer only sees a broken pipe: report why.
        match (packed, unpacked) {
            (Ok(()), unpacked) => unpacked,
            (Err(p), Err(u)) if broken_pipe(&p) => Err(u),
            (Err(p), _) => Err(p),
        }
    })
    .with_context(|| format!("copying {shown} from the image into the new volume"))?;
    let top = volume.fd();
    fs::fchown(
        top,
        Some(fs::Uid::from_raw(st.st_uid)),
        Some(fs::Gid::from_raw(st.st_gid)),
    )
    .context("giving the volume the owner of the image's directory")?;
    fs::fchmod(top, fs::Mode::from_raw_mode(st.st_mode & 0o7777))
        .context("giving the volume the mode of the image's directory")?;
    Ok(())
}

/// Whether `e` comes down to a write into a pipe nobody reads any more.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    #[test]
    fn copies_the_directory_and_stores_symlinks_without_following_them() {
        let image = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let dir = image.path().join("srv/data");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), "from image").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        symlink(outside.path().join("secret"), dir.join("abs")).unwrap();
        symlink("../../..", dir.join("up")).unwrap();
        let volume = tempfile::tempdir().unwrap();
        let s = Seed {
            data: volume.path().to_path_buf(),
            target: "/srv/data".into(),
        };
        assert!(is_empty(&s.data));
        seed(image.path(), &s).unwrap();
        let v = volume.path();
        assert_eq!(
            std::fs::read_to_string(v.join("sub/f")).unwrap(),
            "from image"
        );
        assert!(v.join("abs").symlink_metadata().unwrap().is_symlink());
        assert!(v.join("up").symlink_metadata().unwrap().is_symlink());
        assert_eq!(
            std::fs::metadata(v).unwrap().permissions().mode() & 0o7777,
            0o750
        );
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "host"
        );
    }

    #[test]
    fn a_target_missing_or_not_a_directory_in_the_image_copies_nothing() {
        let image = tempfile::tempdir().unwrap();
        std::fs::write(image.path().join("file"), "x").unwrap();
        let volume = tempfile::tempdir().unwrap();
        for target in ["/missing", "/file"] {
            let s = Seed {
                data: volume.path().to_path_buf(),
                target: target.into(),
            };
            seed(image.path(), &s).unwrap();
            assert!(is_empty(volume.path()), "{target}");
        }
    }

    #[test]
    fn a_symlinked_target_resolves_inside_the_image() {
        let image = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host-file"), "host").unwrap();
        symlink(outside.path(), image.path().join("escape")).unwrap();
        let volume = tempfile::tempdir().unwrap();
        let s = Seed {
            data: volume.path().to_path_buf(),
            target: "/escape".into(),
        };
        seed(image.path(), &s).unwrap();
        assert!(!volume.path().join("host-file").exists());
    }
}
