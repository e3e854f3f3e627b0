//! # berth-fuzz: shared pieces of Berth's fuzz targets
//!
//! The targets live in `fuzz_targets/`, one file each; this library holds what more than one
//! of them needs. [`sandbox`] is the place a layer is applied to and the check that nothing
//! escaped it; [`tarball`] writes tar headers with raw, unchecked names, which the `tar`
//! crate's own path setters refuse to write.
#![deny(missing_docs)]

pub mod sandbox;
pub mod tarball;
