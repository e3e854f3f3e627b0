//! Hostile and broken layers: nothing outside the root may change, whatever the tar says.
//!
//! Each test applies layers to `<tmp>/root` next to a sentinel tree `<tmp>/outside`, whose
//! absolute path the layers also aim at; afterwards the sentinel must be byte-for-byte and
//! time-for-time the same, and `<tmp>` must hold nothing new.

use std::{
    fs,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use berth_proto::errdefs::{Error, Kind};
use tar::EntryType;

use super::{Layer, apply, overlay_mode, remove_mode, require_root, snapshot};
use crate::archive::{Applied, ApplyOptions, WhiteoutMode};

/// A root to apply to and a sentinel tree next to it.
pub(super) struct Arena {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    before: std::collections::BTreeMap<PathBuf, super::Node>,
}

impl Arena {
    pub(super) fn new() -> Arena {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let (root, outside) = (base.join("root"), base.join("outside"));
        fs::create_dir(&root).unwrap();
        fs::create_dir_all(outside.join("etc")).unwrap();
        fs::create_dir_all(outside.join("dir/sub")).unwrap();
        fs::write(outside.join("etc/passwd"), "host secret").unwrap();
        fs::write(outside.join("victim"), "victim").unwrap();
        fs::write(outside.join("x"), "x").unwrap();
        fs::write(outside.join("dir/sub/inner"), "inner").unwrap();
        let before = snapshot(&base, true)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("root"))
            .collect();
        Arena {
            _tmp: tmp,
            base,
            root,
            outside,
            before,
        }
    }

    /// The sentinel's absolute path as a string, for tar names and link targets.
    fn out(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    pub(super) fn apply(&self, layer: &[u8], options: &ApplyOptions) -> Result<Applied, Error> {
        let result = apply(layer, &self.root, options);
        self.check();
        result
    }

    /// Nothing outside the root changed or appeared.
    fn check(&self) {
        let after: std::collections::BTreeMap<_, _> = snapshot(&self.base, true)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("root"))
            .collect();
        assert_eq!(after, self.before, "the sentinel tree changed");
        assert!(!Path::new("/etc/berth-archive-evil").exists());
        assert!(!Path::new("/berth-archive-evil").exists());
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.root.join(rel)).ok()
    }
}

fn both_modes() -> [ApplyOptions; 2] {
    [remove_mode(), overlay_mode()]
}

#[test]
fn dotdot_and_absolute_names_are_confined() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        let abs = format!("{}/evil-abs", arena.out());
        let layer = Layer::new()
            .file("../outside/evil", "1")
            .file("../../../../../../../../etc/berth-archive-evil", "2")
            .file("/berth-archive-evil", "3")
            .file(&abs, "4")
            .file("a/../../outside/victim", "5")
            .finish();
        arena.apply(&layer, &options).unwrap();
        assert_eq!(arena.read("outside/evil").as_deref(), Some("1"));
        assert_eq!(arena.read("etc/berth-archive-evil").as_deref(), Some("2"));
        assert_eq!(arena.read("berth-archive-evil").as_deref(), Some("3"));
        assert_eq!(
            arena.read(abs.trim_start_matches('/')).as_deref(),
            Some("4")
        );
        assert_eq!(arena.read("outside/victim").as_deref(), Some("5"));
    }
}

#[test]
fn long_and_pax_names_are_confined_too() {
    require_root!();
    let arena = Arena::new();
    let long = format!("{}../outside/evil-long", "../".repeat(40));
    let mut layer = Layer::new();
    layer
        .pax(&[("path", b"../../outside/evil-pax")])
        .file("harmless", "pax");
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(EntryType::Regular);
    let name = long.as_bytes();
    // Through the tar crate's GNU long-name support; write the name field by hand as the
    // crate refuses `..`.
    let mut gnu = tar::Header::new_gnu();
    gnu.set_entry_type(EntryType::GNULongName);
    gnu.set_size(name.len() as u64 + 1);
    gnu.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    gnu.set_cksum();
    let mut data = name.to_vec();
    data.push(0);
    layer.builder.append(&gnu, data.as_slice()).unwrap();
    header.as_old_mut().name[..4].copy_from_slice(b"stub");
    header.set_cksum();
    layer.builder.append(&header, &b"long"[..]).unwrap();
    arena.apply(&layer.finish(), &remove_mode()).unwrap();
    assert_eq!(arena.read("outside/evil-pax").as_deref(), Some("pax"));
    assert_eq!(arena.read("outside/evil-long").as_deref(), Some("long"));
}

#[test]
fn symlinks_in_the_path_resolve_inside_the_root() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        let layer = Layer::new()
            .symlink("slash", "/")
            .file("slash/etc/berth-archive-evil", "via /")
            .symlink("up", "../..")
            .file("up/x", "via ../..")
            .symlink("updir", "../outside")
            .dir("outside/")
            .file("updir/victim", "via ../outside")
            .finish();
        arena.apply(&layer, &options).unwrap();
        assert_eq!(
            arena.read("etc/berth-archive-evil").as_deref(),
            Some("via /")
        );
        assert_eq!(arena.read("x").as_deref(), Some("via ../.."));
        assert_eq!(
            arena.read("outside/victim").as_deref(),
            Some("via ../outside")
        );

        // A link to the sentinel's absolute path dangles inside the root: an error, not a
        // write into the sentinel.
        let layer = Layer::new()
            .symlink("abs", &arena.out())
            .file("abs/victim", "pwned")
            .finish();
        let err = arena.apply(&layer, &options).unwrap_err();
        assert_ne!(err.kind, Kind::Unknown, "{err}");
    }
}

#[test]
fn hardlinks_cannot_reach_outside() {
    require_root!();
    let arena = Arena::new();
    let passwd = format!("{}/etc/passwd", arena.out());
    for target in [
        "/etc/passwd",
        "../../outside/x",
        passwd.as_str(),
        "../outside/etc/passwd",
    ] {
        let layer = Layer::new().hardlink("h", target).finish();
        let err = arena.apply(&layer, &remove_mode()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument, "{target}: {err}");
    }
    // Through a symlinked directory.
    let layer = Layer::new()
        .symlink("sl", &arena.out())
        .hardlink("h", "sl/x")
        .finish();
    let err = arena.apply(&layer, &remove_mode()).unwrap_err();
    assert_eq!(err.kind, Kind::InvalidArgument, "{err}");
    // A link to /etc/passwd gets the root's own etc/passwd.
    let layer = Layer::new()
        .file("etc/passwd", "image passwd")
        .hardlink("h", "/etc/passwd")
        .hardlink("h2", "../../etc/passwd")
        .finish();
    arena.apply(&layer, &remove_mode()).unwrap();
    let inode = |p: &str| fs::symlink_metadata(arena.root.join(p)).unwrap().ino();
    assert_eq!(inode("h"), inode("etc/passwd"));
    assert_eq!(inode("h2"), inode("etc/passwd"));
    assert_eq!(arena.read("h").as_deref(), Some("image passwd"));
    // A hard link to a symlink pointing outside links the symlink, not its target; writing
    // the name afterwards replaces the link instead of writing through it.
    let layer = Layer::new()
        .symlink("s", &format!("{}/x", arena.out()))
        .hardlink("hs", "s")
        .file("hs", "replaced")
        .finish();
    arena.apply(&layer, &remove_mode()).unwrap();
    assert!(
        fs::symlink_metadata(arena.root.join("s"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(arena.read("hs").as_deref(), Some("replaced"));
}

#[test]
fn whiteouts_cannot_delete_outside() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        let setup = Layer::new()
            .file("victim", "inner victim")
            .symlink("out", &arena.out())
            .symlink("rel", "../outside")
            .symlink("dot", "..")
            .finish();
        arena.apply(&setup, &options).unwrap();
        let layer = Layer::new()
            .file("../.wh.victim", "")
            .file("../outside/.wh.victim", "")
            .file("dot/.wh.x", "")
            .finish();
        arena.apply(&layer, &options).unwrap();
        // `../.wh.victim` is confined: it hides the root's own victim.
        let victim = fs::symlink_metadata(arena.root.join("victim"));
        match options.whiteouts {
            WhiteoutMode::Remove => assert!(victim.is_err()),
            WhiteoutMode::Overlay => assert!(victim.unwrap().file_type().is_char_device()),
        }
        // Whiteouts inside a symlink to the sentinel: the dangling link fails or does
        // nothing, but never deletes.
        for name in [
            "out/.wh.victim",
            "out/.wh..wh..opq",
            "out/dir/.wh.sub",
            "rel/.wh.victim",
        ] {
            let layer = Layer::new().file(name, "").finish();
            let _ = arena.apply(&layer, &options);
        }
        // `.wh.out` removes the symlink itself, not what it points to.
        arena
            .apply(&Layer::new().file(".wh.out", "").finish(), &options)
            .unwrap();
        let out = fs::symlink_metadata(arena.root.join("out"));
        match options.whiteouts {
            WhiteoutMode::Remove => assert!(out.is_err()),
            WhiteoutMode::Overlay => assert!(!out.unwrap().is_symlink()),
        }
    }
}

#[test]
fn entries_replace_symlinks_instead_of_following_them() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        let setup = Layer::new()
            .symlink("s", &format!("{}/x", arena.out()))
            .symlink("s2", "../outside/x")
            .symlink("d", &arena.out())
            .symlink("d2", "../outside/dir")
            .finish();
        arena.apply(&setup, &options).unwrap();
        let layer = Layer::new()
            .file("s", "pwned")
            .file("s2", "pwned")
            .raw(EntryType::Directory, "d/", "", 0o777, b"")
            .file("d/victim", "pwned")
            .raw(EntryType::Directory, "d2", "", 0o700, b"")
            .raw(EntryType::Fifo, "s", "", 0o600, b"")
            .finish();
        arena.apply(&layer, &options).unwrap();
        assert!(
            fs::symlink_metadata(arena.root.join("s"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(arena.read("s2").as_deref(), Some("pwned"));
        assert!(fs::symlink_metadata(arena.root.join("d")).unwrap().is_dir());
        assert_eq!(arena.read("d/victim").as_deref(), Some("pwned"));
        assert!(
            fs::symlink_metadata(arena.root.join("d2"))
                .unwrap()
                .is_dir()
        );
    }
}

#[test]
fn directory_times_are_not_set_through_symlinks() {
    require_root!();
    let arena = Arena::new();
    // Directories whose mtimes are deferred to the end, then replaced by symlinks to the
    // sentinel: the deferred update must not touch the sentinel's times.
    let layer = Layer::new()
        .dir("a/")
        .dir("c/")
        .dir("c/dir/")
        .symlink("a", &arena.out())
        .symlink("c", "../outside")
        .finish();
    arena.apply(&layer, &remove_mode()).unwrap();
}

#[test]
fn device_nodes_land_inside_the_root() {
    require_root!();
    let arena = Arena::new();
    let mut layer = Layer::new();
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(EntryType::Block);
    header.set_mode(0o666);
    header.set_device_major(8).unwrap();
    header.set_device_minor(0).unwrap();
    header.set_size(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.as_old_mut().name[..18].copy_from_slice(b"../outside/dev/sda");
    header.set_cksum();
    layer.builder.append(&header, &b""[..]).unwrap();
    layer.raw(EntryType::Char, "../../dev-null-copy", "", 0o666, b"");
    arena.apply(&layer.finish(), &remove_mode()).unwrap();
    let sda = fs::symlink_metadata(arena.root.join("outside/dev/sda")).unwrap();
    assert_eq!(sda.rdev(), rustix::fs::makedev(8, 0));
    let copy = fs::symlink_metadata(arena.root.join("dev-null-copy")).unwrap();
    assert!(copy.file_type().is_char_device());
}

#[test]
fn overlay_xattrs_and_loops_in_layers_are_refused() {
    require_root!();
    let arena = Arena::new();
    let layer = Layer::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/outside")])
        .dir("d/")
        .finish();
    arena.apply(&layer, &overlay_mode()).unwrap();
    assert!(
        xattr::get(arena.root.join("d"), "trusted.overlay.redirect")
            .unwrap()
            .is_none()
    );
    let looped = Layer::new()
        .symlink("l1", "l2")
        .symlink("l2", "l1")
        .file("l1/x", "loop")
        .finish();
    assert!(arena.apply(&looped, &remove_mode()).is_err());
}

/// Appends a block device `major:minor` named `name` (written raw, `..` and all).
fn block_device(layer: &mut Layer, name: &str, major: u32, minor: u32) {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(EntryType::Block);
    header.set_mode(0o660);
    header.set_device_major(major).unwrap();
    header.set_device_minor(minor).unwrap();
    header.set_size(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    layer.builder.append(&header, &b""[..]).unwrap();
}

#[test]
fn chained_symlinks_resolve_inside_the_root() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        // a -> b -> c/up -> ../../outside: every hop is resolved inside the root, so the
        // file lands in the root's own `outside/`.
        let layer = Layer::new()
            .dir("c/")
            .symlink("c/up", "../../outside")
            .symlink("b", "c/up")
            .symlink("a", "b")
            .dir("outside/")
            .file("a/victim", "via a chain")
            .finish();
        arena.apply(&layer, &options).unwrap();
        assert_eq!(arena.read("outside/victim").as_deref(), Some("via a chain"));
    }
}

#[test]
fn device_nodes_through_symlinked_directories_land_inside_the_root() {
    require_root!();
    for options in both_modes() {
        let arena = Arena::new();
        let mut layer = Layer::new();
        layer.symlink("rel", "../outside").dir("outside/");
        block_device(&mut layer, "rel/sda", 8, 0);
        block_device(&mut layer, "../../outside/sdb", 8, 16);
        arena.apply(&layer.finish(), &options).unwrap();
        let sda = fs::symlink_metadata(arena.root.join("outside/sda")).unwrap();
        assert!(sda.file_type().is_block_device());
        assert_eq!(sda.rdev(), rustix::fs::makedev(8, 0));
        let sdb = fs::symlink_metadata(arena.root.join("outside/sdb")).unwrap();
        assert_eq!(sdb.rdev(), rustix::fs::makedev(8, 16));
        // Through a symlink to an absolute path that does not exist inside the root: an
        // error, never a node in the sentinel.
        let mut layer = Layer::new();
        layer.symlink("abs", &arena.out());
        block_device(&mut layer, "abs/dir/sdc", 8, 32);
        let err = arena.apply(&layer.finish(), &options).unwrap_err();
        assert_ne!(err.kind, Kind::Unknown, "{err}");
    }
}

#[test]
fn hardlink_names_through_symlinks_stay_inside_the_root() {
    require_root!();
    let arena = Arena::new();
    // The link's own name goes through a symlink that points outside: it is created in the
    // root (the symlink resolves inside), or refused; the sentinel never gains a name.
    let layer = Layer::new()
        .file("target", "t")
        .symlink("up", "../outside")
        .dir("outside/")
        .hardlink("up/h", "target")
        .finish();
    arena.apply(&layer, &remove_mode()).unwrap();
    let inode = |p: &str| fs::symlink_metadata(arena.root.join(p)).unwrap().ino();
    assert_eq!(inode("outside/h"), inode("target"));
    let layer = Layer::new()
        .symlink("abs", &arena.out())
        .hardlink("abs/h2", "target")
        .finish();
    assert!(arena.apply(&layer, &remove_mode()).is_err());
}
