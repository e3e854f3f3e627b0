//! A fresh directory to apply a layer to, with bait around it, and the check that the apply
//! touched nothing but that directory.
//!
//! The layout, in a new temporary directory (put `TMPDIR` on a tmpfs to go faster):
//!
//! ```text
//! <scratch>/parent/root/          the layer goes here
//! <scratch>/parent/sentinel       bait: a file beside the root
//! <scratch>/parent/outside/bait   bait: a directory beside the root, with a file
//! ```
//!
//! A `..` that climbs one or two levels out of the root, a symlink followed out of it, or a
//! hard link to one of the bait files would show up as a new or removed entry in `parent` or
//! `<scratch>`, or as a change of the bait (contents, mode, owner, link count, times, xattrs).
//! Setup failures panic: they are the harness's fault, not the input's, and libFuzzer stops.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use tempfile::TempDir;

/// What the bait files hold.
const BAIT: &[u8] = b"outside the layer root: never to be touched\n";
/// The xattr by which overlayfs knows an opaque directory.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// One temporary tree holding a layer root and the bait around it.
pub struct Sandbox {
    scratch: TempDir,
    root: PathBuf,
    before: Vec<(PathBuf, Fingerprint)>,
}

/// What must not change about a path outside the root.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    ino: u64,
    mtime: (i64, i64),
    entries: Vec<String>,
    contents: Option<Vec<u8>>,
    xattrs: Vec<String>,
}

impl Sandbox {
    /// Makes the tree with an empty root.
    pub fn new() -> Sandbox {
        let scratch = tempfile::Builder::new()
            .prefix("berth-fuzz-")
            .tempdir()
            .expect("creating the scratch directory");
        let parent = scratch.path().join("parent");
        let root = parent.join("root");
        fs::create_dir_all(&root).expect("creating the layer root");
        fs::write(parent.join("sentinel"), BAIT).expect("writing the sentinel");
        fs::create_dir(parent.join("outside")).expect("creating the outside directory");
        fs::write(parent.join("outside/bait"), BAIT).expect("writing the bait");
        let before = watched(scratch.path())
            .into_iter()
            .map(|p| {
                let print = fingerprint(&p);
                (p, print)
            })
            .collect();
        Sandbox {
            scratch,
            root,
            before,
        }
    }

    /// The directory to apply layers to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Fills the root with a lower layer's tree: directories, files, and symlinks that point
    /// out of the root if followed on the host (`l -> ../..`, `abs -> /`, `out -> ../outside`).
    pub fn populate_lower(&self) {
        let root = &self.root;
        for dir in ["a/b", "d/e"] {
            fs::create_dir_all(root.join(dir)).expect("creating a lower directory");
        }
        for file in ["a/f", "a/b/g", "c", "d/e/h"] {
            fs::write(root.join(file), b"lower\n").expect("writing a lower file");
        }
        fs::set_permissions(root.join("d/e"), fs::Permissions::from_mode(0o500))
            .expect("making a lower directory read-only");
        for (name, target) in [("l", "../.."), ("abs", "/"), ("out", "../outside")] {
            symlink(target, root.join(name)).expect("creating a lower symlink");
        }
        fs::hard_link(root.join("c"), root.join("a/c-link")).expect("creating a lower link");
    }

    /// Panics if anything outside the root differs from how [`Sandbox::new`] left it.
    pub fn assert_confined(&self) {
        let now = watched(self.scratch.path());
        let paths: Vec<&PathBuf> = self.before.iter().map(|(p, _)| p).collect();
        assert_eq!(
            now.iter().collect::<Vec<_>>(),
            paths,
            "paths outside the root"
        );
        for (path, before) in &self.before {
            assert_eq!(
                &fingerprint(path),
                before,
                "{} changed while applying a layer beside it",
                path.display()
            );
        }
    }

    /// Panics if an entry under the root carries an overlayfs xattr that did not come from an
    /// opaque marker: with `opaque_allowed` (whiteouts as overlayfs reads them), only
    /// `trusted.overlay.opaque=y` on directories; without it, none at all. An image's own
    /// overlayfs xattrs must never get through.
    pub fn assert_no_foreign_overlay_xattrs(&self, opaque_allowed: bool) {
        for entry in walkdir::WalkDir::new(&self.root) {
            let entry = entry.expect("walking the layer root");
            let path = entry.path();
            for name in xattr::list(path).expect("listing xattrs") {
                let name = name.to_string_lossy();
                if !name.starts_with("trusted.overlay.") && !name.starts_with("user.overlay.") {
                    continue;
                }
                let value = xattr::get(path, &*name).expect("reading an xattr");
                let opaque = name == OPAQUE_XATTR
                    && entry.file_type().is_dir()
                    && value.as_deref() == Some(b"y");
                assert!(
                    opaque_allowed && opaque,
                    "{} carries {name}={value:?}",
                    path.display()
                );
            }
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// Every path outside the root that a layer could reach, sorted.
fn watched(scratch: &Path) -> Vec<PathBuf> {
    let parent = scratch.join("parent");
    let mut paths = vec![scratch.to_path_buf(), parent.clone()];
    for name in ["outside", "outside/bait", "sentinel"] {
        let path = parent.join(name);
        if path.symlink_metadata().is_ok() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

fn fingerprint(path: &Path) -> Fingerprint {
    let meta = path
        .symlink_metadata()
        .unwrap_or_else(|e| panic!("{} is gone: {e}", path.display()));
    let entries = if meta.is_dir() {
        let mut names: Vec<String> = fs::read_dir(path)
            .expect("listing a watched directory")
            .map(|e| e.expect("reading a directory entry").file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    } else {
        Vec::new()
    };
    let contents = meta
        .is_file()
        .then(|| fs::read(path).expect("reading a bait file"));
    let mut xattrs: Vec<String> = xattr::list(path)
        .expect("listing xattrs")
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    xattrs.sort();
    Fingerprint {
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        nlink: meta.nlink(),
        ino: meta.ino(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        entries,
        contents,
        xattrs,
    }
}
