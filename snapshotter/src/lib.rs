//! # berth-snapshotter: filesystems for images and containers
//!
//! Images are stacks of read-only layers; a container is one writable layer on top. A
//! snapshotter keeps those layers as directories and describes how to join them as a list of
//! [`mount::Mount`]s (an overlay mount, or a bind mount for the native snapshotter).
//!
//! Mounting is the kernel seam of this crate: everything that mounts goes through the
//! [`mount::Mounter`] trait, whose real implementation calls mount(2) and whose recording
//! double lets tests check what would be mounted without root.
#![deny(missing_docs)]

pub mod archive;
pub mod mount;
pub mod snapshots;
