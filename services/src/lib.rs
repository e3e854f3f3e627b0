//! # berthd: containerd's API v1, served by Berth
//!
//! berthd is one process with one tokio runtime. It serves containerd's gRPC API v1 on a unix
//! socket, so that `ctr`, nerdctl and containerd's Go client work against it unchanged.
//!
//! The daemon is a set of plugins ([`plugins`]), each with containerd's type URI, started in
//! dependency order:
//!
//! * [`metadata`] owns the sled database: namespaced records behind one module;
//! * [`content`] stores blobs by digest on disk and records per namespace who sees them;
//! * [`containers`] records what a container is made of (image, snapshot, runtime, spec);
//! * [`images`] names content graphs (manifests, indexes) and roots them for collection;
//! * [`namespaces`], [`leases`] and [`events`] are the tenancy, protection and notification
//!   services;
//! * [`diff`] applies layers onto snapshots and turns snapshot changes into layers;
//! * [`snapshots`] serves the overlayfs and native snapshotters, namespaced;
//! * [`gc`] collects what no root (image, container, lease, `gc.root` label) references;
//! * [`transfer`] pulls images inside the daemon (fetch, verify, unpack, name);
//! * [`runtime`] starts shims (shim v2), talks to them over ttrpc and reconnects after a
//!   restart; [`tasks`] serves containerd's Tasks API on top of it;
//! * [`logs`] gives opted-in containers' output to their shims as log files and reads them
//!   back (`berth.logs.v1`);
//! * [`registry`] speaks the OCI distribution protocol to registries (pull, push, auth);
//! * [`introspection`] and [`version`] describe the daemon;
//! * [`volumes`] keeps named volumes under the root dir (`berth.volumes.v1`);
//! * [`restart`] keeps running the containers that ask for it, and removes the ones that ask
//!   to go once their task exits.
//!
//! Each service is a thin gRPC shell (`grpc.rs`: validate, convert, call, map the error) over a
//! store type that holds the logic. Errors travel as [`berth_proto::errdefs::Error`] and become
//! gRPC status codes only at that edge, with the codes containerd uses.
#![deny(missing_docs)]

pub mod blocking;
pub mod config;
pub mod containers;
pub mod content;
pub mod diff;
pub mod events;
pub mod gc;
pub mod identifiers;
pub mod images;
pub mod introspection;
pub mod leases;
pub mod logs;
pub mod metadata;
pub mod namespaces;
pub mod plugins;
pub mod registry;
pub mod request;
pub mod restart;
pub mod runtime;
pub mod server;
pub mod snapshots;
pub mod tasks;
pub mod transfer;
pub mod version;
pub mod volumes;
