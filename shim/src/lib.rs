//! # berth-shim: the per-container process between berthd and runc
//!
//! The shim (`containerd-shim-berth-v2`) serves containerd's task API over ttrpc and drives
//! runc. Everything it asks of runc goes through [`runc::Command`], which renders argv from
//! one documented builder method per runc flag, so the exact command lines are unit-tested
//! without root or runc.
#![deny(missing_docs)]

pub mod runc;
