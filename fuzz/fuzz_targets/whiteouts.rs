//! Whiteouts and opaque directories over a lower tree: a layer built from structured input,
//! with names drawn from a small alphabet full of `.wh.` prefixes, `..`, `/` and the names of
//! the lower tree's hostile symlinks, applied in either whiteout mode onto a populated root.
//!
//! Checked: nothing outside the root changes, the apply does not panic, overlayfs xattrs appear
//! only as opaque markers in overlay mode, and no whiteout survives as a plain entry (a
//! non-directory whose name starts with `.wh.`).
#![no_main]

use arbitrary::Arbitrary;
use berth_fuzz::{sandbox::Sandbox, tarball::TarStream};
use berth_snapshotter::archive::{ApplyOptions, WhiteoutMode, apply_layer};
use libfuzzer_sys::fuzz_target;
use tar::EntryType;

/// The whole layer.
#[derive(Debug, Arbitrary)]
struct Layer {
    /// The native snapshotter's mode (whiteouts remove) instead of overlayfs' (they mark).
    remove: bool,
    entries: Vec<Entry>,
}

#[derive(Debug, Arbitrary)]
struct Entry {
    name: Name,
    kind: Kind,
    mode: u16,
}

#[derive(Debug, Arbitrary)]
enum Kind {
    File(u8),
    Dir,
    Symlink(Name),
    Hardlink(Name),
    Fifo,
    /// A 0/0 character device: overlayfs' own whiteout form, sent inside a tar.
    Char,
}

/// A path: optionally absolute, components from [`PARTS`], optionally with a trailing `/`.
#[derive(Debug, Arbitrary)]
struct Name {
    absolute: bool,
    parts: Vec<u8>,
    trailing_slash: bool,
}

/// What path components are made of: the lower tree's names (see
/// [`Sandbox::populate_lower`]), whiteouts of them, AUFS metadata names and path oddities.
const PARTS: &[&[u8]] = &[
    b"a",
    b"b",
    b"c",
    b"d",
    b"e",
    b"f",
    b"l",
    b"abs",
    b"out",
    b"new",
    b".wh.a",
    b".wh.b",
    b".wh.c",
    b".wh.e",
    b".wh.l",
    b".wh.abs",
    b".wh.out",
    b".wh.new",
    b".wh..wh..opq",
    b".wh..wh.plnk",
    b".wh.",
    b".wh..",
    b".wh...",
    b"..",
    b".",
    b"",
    b"outside",
    b"sentinel",
];

impl Name {
    fn bytes(&self) -> Vec<u8> {
        let parts: Vec<&[u8]> = self
            .parts
            .iter()
            .map(|&i| PARTS[usize::from(i) % PARTS.len()])
            .collect();
        let mut name = if self.absolute {
            b"/".to_vec()
        } else {
            Vec::new()
        };
        name.extend(parts.join(&b'/'));
        if self.trailing_slash {
            name.push(b'/');
        }
        name
    }
}

impl Layer {
    fn tar(&self) -> Vec<u8> {
        let mut tar = TarStream::new();
        for entry in &self.entries {
            let name = entry.name.bytes();
            let mode = u32::from(entry.mode) & 0o7777;
            match &entry.kind {
                Kind::File(size) => {
                    let data = vec![b'x'; usize::from(*size)];
                    tar.entry(&name, EntryType::Regular, b"", mode, &data);
                }
                Kind::Dir => tar.entry(&name, EntryType::Directory, b"", mode, b""),
                Kind::Symlink(to) => tar.entry(&name, EntryType::Symlink, &to.bytes(), mode, b""),
                Kind::Hardlink(to) => tar.entry(&name, EntryType::Link, &to.bytes(), mode, b""),
                Kind::Fifo => tar.entry(&name, EntryType::Fifo, b"", mode, b""),
                Kind::Char => tar.entry(&name, EntryType::Char, b"", mode, b""),
            }
        }
        tar.finish()
    }
}

/// Panics if a non-directory under `root` is named like a whiteout.
fn assert_no_whiteout_left(sandbox: &Sandbox) {
    for entry in walkdir::WalkDir::new(sandbox.root()).min_depth(1) {
        let entry = entry.expect("walking the layer root");
        let name = entry.file_name().as_encoded_bytes();
        assert!(
            entry.file_type().is_dir() || !name.starts_with(b".wh."),
            "whiteout left as {}",
            entry.path().display()
        );
    }
}

fuzz_target!(|layer: Layer| {
    let sandbox = Sandbox::new();
    sandbox.populate_lower();
    let whiteouts = if layer.remove {
        WhiteoutMode::Remove
    } else {
        WhiteoutMode::Overlay
    };
    let _ = apply_layer(
        &layer.tar()[..],
        sandbox.root(),
        &ApplyOptions { whiteouts },
    );
    sandbox.assert_confined();
    sandbox.assert_no_foreign_overlay_xattrs(whiteouts == WhiteoutMode::Overlay);
    assert_no_whiteout_left(&sandbox);
});
