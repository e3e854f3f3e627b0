//! # Layer archives: applying image layers and writing diffs
//!
//! An OCI image layer is a tar stream (plain, gzip or zstd compressed) that describes how one
//! filesystem tree differs from the tree below it: entries that are added or replaced, plus
//! *whiteouts* for what was removed. A whiteout is an empty file named `.wh.<name>` that hides
//! `<name>` of the lower layers; `.wh..wh..opq` in a directory makes the directory *opaque*,
//! hiding everything the lower layers had in it. Whiteouts only ever apply to lower layers:
//! what a layer adds itself stays, whatever the order of its entries.
//!
//! The *diff ID* of a layer is the sha256 of its uncompressed tar stream; image configs list
//! them (`rootfs.diff_ids`), so every function here hashes the uncompressed stream as it goes.
//!
//! ## Applying
//!
//! [`apply_layer`] streams a layer onto a directory in one pass: detect the compression from
//! the magic bytes, decompress, hash, parse the tar and write files, without buffering the
//! layer or making a temporary copy. The two snapshotters want whiteouts in two forms
//! ([`WhiteoutMode`]): overlayfs reads them from an upper directory as 0/0 character devices
//! and the `trusted.overlay.opaque` xattr; the native snapshotter applies each layer onto a
//! copy of its parent, so whiteouts there remove files.
//!
//! ## Writing diffs
//!
//! [`write_diff`] compares two trees (the native snapshotter's parent and child) and writes the
//! tar that turns one into the other; [`write_overlay_diff`] turns an overlayfs upper directory,
//! which already holds exactly the changes, into a tar. Both write entries in sorted order, use
//! PAX records for long names, big numbers and xattrs, and emit hard links inside the diff as
//! tar hard links, so the same trees always give the same bytes.
//!
//! ## The safety model
//!
//! A layer comes from whoever built the image, so every name in it is hostile until proven
//! otherwise. The rule: nothing in a tar may create, modify or delete anything outside the
//! directory it is applied to. The applier keeps that rule by never handing a path from the tar
//! to a path-based syscall:
//!
//! - Names are cleaned lexically first: `.` and empty components vanish, `..` pops a component
//!   but never climbs above the root, and absolute names are taken relative to the root. So
//!   `../../etc/evil` and `/etc/evil` both land on `<root>/etc/evil` — *confined*, never
//!   rejected, the same semantics `RESOLVE_IN_ROOT` gives symlinks.
//! - The parent directory of every entry is opened with `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS)` on a descriptor of the root, so symlinks met on the way — planted
//!   earlier in the same layer or present in a lower layer, relative or absolute — resolve as
//!   if the root were `/`. The entry itself is then created with `*at` syscalls relative to that
//!   parent descriptor (`mkdirat`, `symlinkat`, `linkat`, `mknodat`, `openat` with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`), and anything already at that name is removed first
//!   (without following it), so a file never writes through an old symlink.
//! - Hard link targets are resolved the same way and linked without following a final
//!   symlink, so `h -> /etc/passwd` links `<root>/etc/passwd` or fails.
//! - Whiteouts remove through the same resolved parent descriptor and never follow the last
//!   component; a whiteout under a symlink to "outside" resolves inside the root.
//! - xattrs in the `trusted.overlay.` and `user.overlay.` namespaces are dropped: they steer
//!   overlayfs and must come from the snapshotter, never from an image.
//!
//! ## What is supported
//!
//! Applying: regular files, directories, symlinks, hard links (to an earlier entry of the
//! layer, or in [`WhiteoutMode::Remove`] to a file the parent already had), character and
//! block devices, fifos; owner, mode with setuid/setgid/sticky (chmod after chown), PAX
//! `SCHILY.xattr.*` xattrs, mtimes (PAX sub-second ones too; directories last, deepest
//! first); ustar, PAX and GNU headers with long names; GNU sparse files (`S`), written with
//! holes. Refused as InvalidArgument: PAX sparse files (`GNU.sparse.*`), volume and other
//! unknown entry types, NULs in names. PAX global headers are ignored. A header field left
//! blank reads as 0, as in Go.
//!
//! Writing: the same entry kinds (sockets are skipped with a warning), mtimes in whole
//! seconds, whiteouts and opaque markers as empty root-owned files with mtime 0.
//!
//! Bad input — a truncated or corrupt stream, an unsupported entry type, a name with a NUL —
//! ends the apply with a [`DataLoss`](berth_proto::errdefs::Kind::DataLoss) or
//! [`InvalidArgument`](berth_proto::errdefs::Kind::InvalidArgument) error. The root is then
//! left half-written; callers apply into a fresh snapshot and discard it on error.

mod apply;
mod diff;
mod entry;
mod root;
mod stream;
mod tarwriter;

#[cfg(test)]
mod tests;

pub use apply::{ApplyOptions, WhiteoutMode, apply_layer};
pub use diff::{write_diff, write_overlay_diff};

use berth_proto::digest::Digest;

/// What a layer stream amounted to: its diff ID and uncompressed size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream, the layer's diff ID (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Bytes in the uncompressed tar stream.
    pub size: u64,
}

/// Extended attributes as (name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Prefix of whiteout file names.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout metadata names (AUFS); only [`WHITEOUT_OPAQUE`] has a meaning.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// Name of the opaque-directory marker.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr overlayfs reads to make a directory opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether an xattr belongs to overlayfs itself and must never cross a layer boundary.
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}
