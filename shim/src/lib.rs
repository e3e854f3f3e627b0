//! # berth-shim: the process between berthd and runc
//!
//! `containerd-shim-berth-v2` is a shim v2 runtime: the daemon runs it with `start` in a
//! bundle directory, and it answers with the address of a ttrpc socket where it serves
//! containerd's task API (`containerd.task.v2.Task` and `.v3.Task`). One server process
//! serves every container of a group (a pod), drives runc for each operation, reaps the
//! container processes as their subreaper, and forwards task events to the daemon.
//!
//! The layers, bottom up:
//! - [`reaper`] collects every child's exit; [`spawner`] runs runc command lines for the
//!   `runc` crate on top of it; [`runtime`] builds the runc client from containerd's
//!   runtime options.
//! - [`stdio`] parses containerd's stdio strings, [`pipes`] turns them into descriptors,
//!   [`console`] handles terminals; [`logcopy`] and [`jsonlog`] write output to a rotated
//!   json-file log for berthd's log driver.
//! - [`process`] and [`container`] (plus [`operations`]) hold lifecycle state; [`spec`],
//!   [`rootfs`] and [`cgroups`] deal with the bundle, its root filesystem and its cgroup.
//! - [`memory`] hands pages back once the shim goes idle.
//! - [`service`] is the ttrpc `Task` implementation, [`events`] the publisher, [`server`],
//!   [`start`] and [`cleanup`] the three ways the binary runs; [`address`] names sockets.
//!
//! The shim runs on a single-threaded tokio runtime and passes output descriptors straight
//! to the container where it can, so an idle shim costs little memory.
#![deny(missing_docs)]

pub mod address;
pub mod cgroups;
pub mod cleanup;
pub mod console;
pub mod container;
pub mod error;
pub mod events;
pub mod jsonlog;
pub mod logcopy;
pub mod memory;
pub mod native;
pub mod operations;
pub mod pipes;
pub mod process;
pub mod reaper;
pub mod rootfs;
pub mod runtime;
pub mod server;
pub mod service;
pub mod spawner;
pub mod spec;
pub mod start;
pub mod stdio;
