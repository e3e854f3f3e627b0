//! The registry client: pulling from and pushing to registries that speak the OCI
//! distribution API (Docker Hub, distribution's `registry`, Harbor, GHCR, …).
//!
//! The pieces, from the user's words to the wire:
//!
//! * [`reference`] turns `busybox` into `docker.io/library/busybox:latest` (Docker's grammar
//!   and normalisation) and back into the familiar short form;
//! * [`hosts`] decides which endpoints serve a registry (mirrors, plain http, TLS settings)
//!   from containerd-style `hosts.toml` files;
//! * [`auth`] holds credentials (from Docker's `config.json` or given directly) and performs
//!   the Basic and Bearer-token challenges, caching tokens per host and scope;
//! * [`client`] is [`RegistryClient`]: one connection pool, retries with backoff, and the
//!   operations — [`RegistryClient::resolve`], [`RegistryClient::fetch_manifest`],
//!   [`RegistryClient::fetch_blob`] (resumable), [`RegistryClient::blob_exists`],
//!   [`RegistryClient::push_blob`] (mount, monolithic or chunked) and
//!   [`RegistryClient::push_manifest`];
//! * [`manifest`] has the OCI and Docker schema 2 manifest, index and descriptor types and
//!   every media type; [`platform`] picks an index entry for a platform the way containerd
//!   does.
//!
//! Errors are [`berth_proto::errdefs::Error`]s classed for containerd's clients: NotFound
//! (unknown manifest or blob), PermissionDenied (authentication required or refused),
//! InvalidArgument (bad references or documents), NotImplemented (Docker schema 1),
//! Unavailable (network failures and `5xx` after retries) and DataLoss (digest mismatches).
//!
//! A pull, in calls: `resolve` the reference; if the descriptor is an index,
//! `fetch_manifest` it, [`manifest::parse`] it and [`platform::select`] an entry; fetch that
//! manifest, then its config and layers with `fetch_blob`, resuming with an offset after an
//! interruption. Manifests are verified here; blob streams are verified by the content store
//! that ingests them.

pub mod auth;
pub mod client;
pub mod hosts;
pub mod manifest;
pub mod platform;
mod pull;
mod push;
pub mod reference;
mod verify;

#[cfg(test)]
mod tests;

pub use auth::{Credentials, Keychain};
pub use client::{RegistryClient, RegistryClientBuilder, RetryPolicy};
pub use hosts::{Capabilities, HostsConfig, RegistryHost};
pub use manifest::{Descriptor, Index, Manifest, ManifestDocument};
pub use platform::Platform;
pub use pull::{BlobStream, DOCKER_CONTENT_DIGEST};
pub use reference::Reference;
