//! Tests of the archive module, run as root against temp directories: round trips, whiteouts
//! in both modes, compression, hostile layers and corrupt input.

mod corrupt;
mod formats;
mod hostile;
mod roundtrip;
mod whiteouts;

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::{Applied, ApplyOptions, WhiteoutMode, apply_layer};

/// Whether the tests run as root (everything here needs it: chown, mknod, trusted xattrs).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skips the calling test when not root.
macro_rules! require_root {
    () => {
        if !super::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}
use require_root;

/// What we compare about one path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    sha256: Option<String>,
    link: Option<PathBuf>,
    rdev: u64,
    xattrs: Vec<(String, Vec<u8>)>,
    mtime: Option<(i64, i64)>,
}

/// Every path under `root` (relative, root itself excluded) with its [`Node`].
/// `with_dir_mtimes` includes directory mtimes.
fn snapshot(root: &Path, with_dir_mtimes: bool) -> BTreeMap<PathBuf, Node> {
    let mut tree = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let mut xattrs: Vec<_> = xattr::list(entry.path())
            .map(|names| names.collect())
            .unwrap_or_else(|_| Vec::new())
            .into_iter()
            .map(|name| {
                let value = xattr::get(entry.path(), &name).unwrap().unwrap_or_default();
                (name.to_string_lossy().into_owned(), value)
            })
            .collect();
        xattrs.sort();
        let node = Node {
            kind,
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            nlink: if ft.is_dir() { 0 } else { meta.nlink() },
            size: if ft.is_dir() { 0 } else { meta.len() },
            sha256: ft
                .is_file()
                .then(|| hex::encode(Sha256::digest(fs::read(entry.path()).unwrap()))),
            link: ft
                .is_symlink()
                .then(|| fs::read_link(entry.path()).unwrap()),
            rdev: meta.rdev(),
            xattrs,
            mtime: (!ft.is_dir() || with_dir_mtimes).then(|| (meta.mtime(), meta.mtime_nsec())),
        };
        let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
        tree.insert(rel, node);
    }
    tree
}

/// Asserts two trees are identical, naming the first difference.
fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (snapshot(a, true), snapshot(b, true));
    for (path, node) in &ta {
        assert_eq!(Some(node), tb.get(path), "{} differs", path.display());
    }
    let extra: Vec<_> = tb.keys().filter(|p| !ta.contains_key(*p)).collect();
    assert!(extra.is_empty(), "unexpected paths {extra:?}");
}

/// Builds layer tars entry by entry, with names written raw so tests control every byte.
struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

const MTIME: u64 = 1_600_000_000;

impl Layer {
    fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with a raw name and link name (no checks at all).
    fn raw(
        &mut self,
        kind: EntryType,
        name: &str,
        link: &str,
        mode: u32,
        data: &[u8],
    ) -> &mut Self {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(EntryType::Directory, name, "", 0o755, b"")
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.raw(EntryType::Regular, name, "", 0o644, data.as_bytes())
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Symlink, name, target, 0o777, b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Link, name, target, 0o644, b"")
    }

    /// A PAX header with `records` for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            write!(body, "{len} {key}=").unwrap();
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.raw(EntryType::XHeader, "PaxHeaders/x", "", 0o644, &body)
    }

    fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn remove_mode() -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
    }
}

fn overlay_mode() -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
    }
}

fn apply(
    layer: &[u8],
    root: &Path,
    options: &ApplyOptions,
) -> Result<Applied, berth_proto::errdefs::Error> {
    apply_layer(layer, root, options)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}
