//! Filesystem changes as data, and tree comparison: the suite applies the same [`Op`]s to a
//! mounted snapshot and to a plain directory, then expects both to look alike.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use walkdir::WalkDir;

/// One change to a tree; paths are relative to its root.
#[derive(Debug, Clone)]
pub enum Op {
    /// Writes a file (replacing one there) with contents and mode.
    File(String, Vec<u8>, u32),
    /// Creates a directory with a mode.
    Dir(String, u32),
    /// Removes a file or a whole directory.
    Remove(String),
    /// Changes owner and group (without following symlinks).
    Chown(String, u32, u32),
    /// Hard-links the first path to the second.
    Link(String, String),
    /// Creates a symlink at the second path pointing to the first.
    Symlink(String, String),
}

impl Op {
    /// [`Op::File`] from string slices.
    pub fn file(path: &str, contents: &str, mode: u32) -> Op {
        Op::File(path.into(), contents.as_bytes().to_vec(), mode)
    }

    /// [`Op::Dir`].
    pub fn dir(path: &str, mode: u32) -> Op {
        Op::Dir(path.into(), mode)
    }

    /// [`Op::Remove`].
    pub fn remove(path: &str) -> Op {
        Op::Remove(path.into())
    }

    /// [`Op::Chown`].
    pub fn chown(path: &str, uid: u32, gid: u32) -> Op {
        Op::Chown(path.into(), uid, gid)
    }

    /// [`Op::Link`].
    pub fn link(existing: &str, new: &str) -> Op {
        Op::Link(existing.into(), new.into())
    }
}

/// Applies `ops` below `root`, panicking on the first failure.
pub fn apply(root: &Path, ops: &[Op]) {
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m));
    for op in ops {
        let done = match op {
            Op::File(p, data, m) => {
                let p = root.join(p);
                fs::write(&p, data).and_then(|()| mode(&p, *m))
            }
            Op::Dir(p, m) => {
                let p = root.join(p);
                fs::create_dir(&p).and_then(|()| mode(&p, *m))
            }
            Op::Remove(p) => {
                let p = root.join(p);
                match fs::symlink_metadata(&p) {
                    Ok(meta) if meta.is_dir() => fs::remove_dir_all(&p),
                    _ => fs::remove_file(&p),
                }
            }
            Op::Chown(p, uid, gid) => {
                std::os::unix::fs::lchown(root.join(p), Some(*uid), Some(*gid))
            }
            Op::Link(from, to) => fs::hard_link(root.join(from), root.join(to)),
            Op::Symlink(from, to) => std::os::unix::fs::symlink(from, root.join(to)),
        };
        if let Err(err) = done {
            panic!("apply {op:?} in {}: {err}", root.display());
        }
    }
}

/// What a comparison looks at for one entry: type, mode bits, owner, contents or link.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    mode: u32,
    uid: u32,
    gid: u32,
    contents: Vec<u8>,
}

fn entries(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for entry in WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.unwrap_or_else(|e| panic!("walk {}: {e}", root.display()));
        let meta = entry.metadata().unwrap();
        let contents = if meta.is_file() {
            fs::read(entry.path()).unwrap()
        } else if meta.file_type().is_symlink() {
            fs::read_link(entry.path())
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        let rel = entry.path().strip_prefix(root).unwrap();
        out.insert(
            rel.display().to_string(),
            Entry {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                contents,
            },
        );
    }
    out
}

/// Panics, listing the differences, unless the trees below `actual` and `expected` have
/// the same entries with the same types, modes, owners and contents (times are ignored).
pub fn assert_same_tree(actual: &Path, expected: &Path) {
    let (a, e) = (entries(actual), entries(expected));
    if a == e {
        return;
    }
    let mut diffs = Vec::new();
    for (path, entry) in &e {
        match a.get(path) {
            None => diffs.push(format!("missing {path}")),
            Some(got) if got != entry => diffs.push(format!("{path}: {got:?} != {entry:?}")),
            Some(_) => {}
        }
    }
    diffs.extend(
        a.keys()
            .filter(|p| !e.contains_key(*p))
            .map(|p| format!("unexpected {p}")),
    );
    panic!(
        "{} differs from {}:\n{}",
        actual.display(),
        expected.display(),
        diffs.join("\n")
    );
}
