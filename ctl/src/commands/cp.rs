//! `berthctl cp`: files between a container and the host, either way, or as a tar stream.
//!
//! Every path inside the container is resolved in its root with `openat2(RESOLVE_IN_ROOT)`
//! (see `rootfs.rs`): a symlink in the container never reaches a host file.

use std::{
    ffi::OsStr,
    io::IsTerminal as _,
    os::{fd::AsFd as _, unix::ffi::OsStrExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use rustix::{
    fs::{self, AtFlags, FileType, StatxFlags},
    io::Errno,
};

use crate::{
    client::Client,
    lookup,
    rootfs::{ContainerRoot, DIR, Root},
    tarfs::{self, PackOptions, UnpackOptions},
};

/// Copy files or folders between a container and the host.
///
/// `SRC/.` copies a directory's contents; `-` as the source reads a tar stream from standard
/// input (extracted into a directory), as the destination writes one to standard output.
///
/// Example: `berthctl cp web:/etc/hostname ./hostname`
#[derive(clap::Args)]
pub struct Args {
    /// CONTAINER:PATH, a host path, or `-`.
    src: String,
    /// CONTAINER:PATH, a host path, or `-`.
    dst: String,
    /// Archive mode: keep the owners (uid/gid) of what is copied.
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink at the source path (inside the container, confined to it).
    #[arg(short = 'L', long)]
    follow_link: bool,
}

/// One side of a copy.
enum Side<'a> {
    Container(&'a str, &'a str),
    Host(&'a str),
}

fn side(arg: &str) -> Side<'_> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Host(arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.is_empty() && !container.contains('/') => {
            Side::Container(container, path)
        }
        _ => Side::Host(arg),
    }
}

/// Runs `cp`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let options = UnpackOptions {
        preserve_owner: args.archive,
    };
    match (side(&args.src), side(&args.dst)) {
        (Side::Container(..), Side::Container(..)) => {
            bail!("copying between containers is not supported: copy to the host first")
        }
        (Side::Host(_), Side::Host(_)) => {
            bail!("one of source and destination must be CONTAINER:PATH")
        }
        (Side::Container(name, path), Side::Host(dst)) => {
            let container = lookup::find(client, name).await?;
            let croot = ContainerRoot::open(client, &container, true).await?;
            let root = croot.root();
            let src = if args.follow_link {
                follow(root, path)?
            } else {
                PathBuf::from(container_path(path))
            };
            copy_out(root, &src, dst, options)
                .with_context(|| format!("copying {name}:{path} to {dst}"))
        }
        (Side::Host(src), Side::Container(name, path)) => {
            let container = lookup::find(client, name).await?;
            let croot = ContainerRoot::open(client, &container, true).await?;
            let root = croot.root();
            copy_in(src, root, &container_path(path), args.follow_link, options)
                .with_context(|| format!("copying {src} to {name}:{path}"))
        }
    }
}

/// A container path made absolute (relative paths start at the root, as docker's do).
fn container_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn is_symlink(dir: &impl std::os::fd::AsFd, name: &OsStr) -> bool {
    fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
        .map(|st| FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Symlink)
        .unwrap_or(false)
}

/// Resolves symlinks at the end of `path` inside the root (`-L`), up to 40 of them.
fn follow(root: &Root, path: &str) -> anyhow::Result<PathBuf> {
    let mut current = PathBuf::from(container_path(path));
    for _ in 0..40 {
        let (dir, name) = root
            .parent_of(&current)
            .with_context(|| format!("no such file or directory in the container: {path}"))?;
        let Some(name) = name else {
            return Ok(current);
        };
        if !is_symlink(&dir, name) {
            return Ok(current);
        }
        let target = fs::readlinkat(&dir, name, Vec::new())?;
        let target = Path::new(OsStr::from_bytes(target.as_bytes()));
        current = current.parent().unwrap_or(Path::new("/")).join(target);
    }
    bail!("too many levels of symbolic links at {path}")
}

/// Whether a path asks for a directory's contents (`dir/.`).
fn contents_only(path: &str) -> bool {
    path.ends_with("/.") || path == "."
}

/// Packs `src` (resolved in `root`) into `out`: the entry itself under its name, or only
/// its children for `dir/.` and the root.
fn pack(root: &Root, src: &Path, out: impl std::io::Write) -> anyhow::Result<()> {
    let shown = src.display();
    let missing = || format!("no such file or directory in the container: {shown}");
    let (dir, name) = root.parent_of(src).map_err(|e| match e {
        Errno::NOENT | Errno::NOTDIR => anyhow::anyhow!(missing()),
        e => anyhow::Error::new(e).context(format!("resolving {shown}")),
    })?;
    let mut tar = tar::Builder::new(out);
    match name {
        Some(name) if !contents_only(&src.to_string_lossy()) => {
            if fs::statx(&dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE).is_err() {
                bail!(missing());
            }
            tarfs::pack_entry(
                &mut tar,
                dir.as_fd(),
                name,
                Path::new(name),
                PackOptions::default(),
            )?;
        }
        _ => {
            let dir = match name {
                Some(name) => fs::openat(&dir, name, DIR, fs::Mode::empty())
                    .with_context(|| format!("{shown} is not a directory"))?,
                None => dir,
            };
            tarfs::pack_children(&mut tar, dir.as_fd(), Path::new(""), PackOptions::default())?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// Runs `pack` on a thread feeding `unpack` through a pipe.
fn pack_into(
    pack_fn: impl FnOnce(std::io::PipeWriter) -> anyhow::Result<()> + Send,
    unpack_fn: impl FnOnce(std::io::PipeReader) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    std::thread::scope(|scope| {
        let packer = scope.spawn(move || pack_fn(writer));
        let unpacked = unpack_fn(reader);
        let packed = packer
            .join()
            .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
        // The packer's error explains an unpacker that saw a cut stream: report it first.
        packed.and(unpacked)
    })
}

/// Where a copy lands: a directory to unpack into and the top entry's new name, if any.
struct Landing {
    root: Root,
    dir: PathBuf,
    rename: Option<(PathBuf, PathBuf)>,
}

/// The host side of a copy out: an existing directory receives the entry; otherwise the
/// entry is created as `dst` in its (existing) parent.
fn host_landing(dst: &str, src_name: Option<&OsStr>, contents: bool) -> anyhow::Result<Landing> {
    let path = Path::new(dst);
    if path.is_dir() {
        return Ok(Landing {
            root: Root::open(path)?,
            dir: PathBuf::from("/"),
            rename: None,
        });
    }
    if dst.ends_with('/') {
        bail!("destination directory {dst} does not exist");
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!("destination directory {} does not exist", parent.display());
    }
    let new_name = path
        .file_name()
        .with_context(|| format!("bad destination {dst}"))?;
    if contents || src_name.is_none() {
        std::fs::create_dir(path).with_context(|| format!("creating {dst}"))?;
        return Ok(Landing {
            root: Root::open(path)?,
            dir: PathBuf::from("/"),
            rename: None,
        });
    }
    Ok(Landing {
        root: Root::open(parent)?,
        dir: PathBuf::from("/"),
        rename: src_name.map(|n| (PathBuf::from(n), PathBuf::from(new_name))),
    })
}

fn copy_out(root: &Root, src: &Path, dst: &str, options: UnpackOptions) -> anyhow::Result<()> {
    if dst == "-" {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write a tar stream to a terminal: redirect standard output");
        }
        return pack(root, src, std::io::stdout().lock());
    }
    let text = src.to_string_lossy();
    let contents = contents_only(&text);
    let src_name = if contents { None } else { src.file_name() };
    let landing = host_landing(dst, src_name, contents)?;
    let rename = landing
        .rename
        .as_ref()
        .map(|(a, b)| (a.as_os_str(), b.as_os_str()));
    pack_into(
        |w| pack(root, src, w),
        |r| tarfs::unpack(&landing.root, &landing.dir, r, rename, options),
    )
}

fn copy_in(
    src: &str,
    root: &Root,
    dst: &str,
    follow_link: bool,
    options: UnpackOptions,
) -> anyhow::Result<()> {
    let dst_path = Path::new(dst);
    if src == "-" {
        root.open_at(dst_path, DIR).with_context(|| {
            format!("destination {dst} must be an existing directory in the container")
        })?;
        return tarfs::unpack(root, dst_path, std::io::stdin().lock(), None, options);
    }
    let contents = contents_only(src);
    let host = if follow_link {
        std::fs::canonicalize(src).with_context(|| format!("no such file: {src}"))?
    } else {
        PathBuf::from(src)
    };
    std::fs::symlink_metadata(&host).with_context(|| format!("no such file: {src}"))?;
    let (host_root, name) = match (host.parent(), host.file_name()) {
        (Some(parent), Some(name)) if !contents => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            (Root::open(parent)?, Some(name))
        }
        _ => (Root::open(&host)?, None),
    };
    let src_is_dir = contents || host.is_dir();
    let (dir, rename) = match root.open_at(dst_path, DIR) {
        Ok(_) => (dst_path.to_path_buf(), None),
        Err(Errno::NOTDIR) if src_is_dir => {
            bail!("cannot copy a directory over the file {dst} in the container")
        }
        Err(Errno::NOENT | Errno::NOTDIR) if !dst.ends_with('/') => {
            let (parent_dir, new_name) = root.parent_of(dst_path).map_err(|_| {
                anyhow::anyhow!("the parent directory of {dst} does not exist in the container")
            })?;
            drop(parent_dir);
            let new_name = new_name.with_context(|| format!("bad destination {dst}"))?;
            match name {
                Some(name) => (
                    dst_path.parent().unwrap_or(Path::new("/")).to_path_buf(),
                    Some((PathBuf::from(name), PathBuf::from(new_name))),
                ),
                None => {
                    root.make_dirs(dst_path)?;
                    (dst_path.to_path_buf(), None)
                }
            }
        }
        Err(Errno::NOENT) => bail!("destination directory {dst} does not exist in the container"),
        Err(e) => return Err(e).with_context(|| format!("resolving {dst} in the container")),
    };
    let rename = rename.as_ref().map(|(a, b)| (a.as_os_str(), b.as_os_str()));
    let host_src = match name {
        Some(name) => PathBuf::from("/").join(name),
        None => PathBuf::from("/."),
    };
    pack_into(
        |w| pack(&host_root, &host_src, w),
        |r| tarfs::unpack(root, &dir, r, rename, options),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert!(matches!(side("web:/etc"), Side::Container("web", "/etc")));
        assert!(matches!(side("./a:b"), Side::Host(_)));
        assert!(matches!(side("/x:y"), Side::Host(_)));
        assert!(matches!(side("-"), Side::Host("-")));
        assert!(contents_only("/etc/."));
        assert!(!contents_only("/etc"));
    }
}
