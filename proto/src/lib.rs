//! # berth-proto: the wire vocabulary Berth shares
//!
//! Berth speaks containerd's API v1 exactly, so it does not define those messages again: the
//! `containerd-client` crate already carries them as prost types, generated from containerd's
//! own protos. This crate re-exports them and adds what that crate lacks, the tonic *server*
//! traits, generated in `build.rs` from a table of services and methods (no .proto file is read
//! or copied).
//!
//! Next to the generated layer sit the few pieces every Berth crate needs to agree on:
//!
//! * [`errdefs`]: containerd's error classes and the only mapping between them and gRPC codes;
//! * [`digest`]: parsing and validating content digests (`sha256:<hex>`);
//! * [`filters`]: containerd's filter language, parsed once and matched by every `List`;
//! * [`labels`]: containerd's label size rules.
//!
//! Module paths under [`server`] mirror the proto packages, so
//! `server::content::v1::content_server::ContentServer` is the service
//! `containerd.services.content.v1.Content`.
#![deny(missing_docs)]

pub mod digest;
pub mod errdefs;
pub mod filters;
pub mod labels;

/// containerd's API messages, as shipped by the `containerd-client` crate.
pub use containerd_client::{events, services, types};

/// `google.protobuf.Empty` as prost represents it.
pub type Empty = ();

/// The generated tonic servers, one module per proto package.
#[allow(missing_docs, clippy::all)]
pub mod server {
    macro_rules! include_service {
        ($file:literal) => {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        };
    }
    /// `containerd.services.*.v1` servers.
    pub mod version {
        pub mod v1 {
            include_service!("containerd.services.version.v1.Version.rs");
        }
    }
    pub mod introspection {
        pub mod v1 {
            include_service!("containerd.services.introspection.v1.Introspection.rs");
        }
    }
    pub mod namespaces {
        pub mod v1 {
            include_service!("containerd.services.namespaces.v1.Namespaces.rs");
        }
    }
    pub mod content {
        pub mod v1 {
            include_service!("containerd.services.content.v1.Content.rs");
        }
    }
    pub mod leases {
        pub mod v1 {
            include_service!("containerd.services.leases.v1.Leases.rs");
        }
    }
    pub mod events {
        pub mod v1 {
            include_service!("containerd.services.events.v1.Events.rs");
        }
    }
    pub mod images {
        pub mod v1 {
            include_service!("containerd.services.images.v1.Images.rs");
        }
    }
    pub mod containers {
        pub mod v1 {
            include_service!("containerd.services.containers.v1.Containers.rs");
        }
    }
    pub mod diff {
        pub mod v1 {
            include_service!("containerd.services.diff.v1.Diff.rs");
        }
    }
    pub mod snapshots {
        pub mod v1 {
            include_service!("containerd.services.snapshots.v1.Snapshots.rs");
        }
    }
    pub mod tasks {
        pub mod v1 {
            include_service!("containerd.services.tasks.v1.Tasks.rs");
        }
    }
    pub mod transfer {
        pub mod v1 {
            include_service!("containerd.services.transfer.v1.Transfer.rs");
        }
    }
    pub mod streaming {
        pub mod v1 {
            include_service!("containerd.services.streaming.v1.Streaming.rs");
        }
    }
}

/// Berth's own APIs (`proto/berth/**.proto`).
#[allow(missing_docs, clippy::all)]
pub mod berth {
    /// `berth.transfer.v1`: daemon-side pull and push with streamed progress.
    pub mod transfer {
        pub mod v1 {
            tonic::include_proto!("berth.transfer.v1");
        }
    }
    /// `berth.logs.v1`: containers' logged output, read back from the daemon.
    pub mod logs {
        pub mod v1 {
            tonic::include_proto!("berth.logs.v1");
        }
    }
    /// `berth.volumes.v1`: named volumes under the daemon's root dir.
    pub mod volumes {
        pub mod v1 {
            tonic::include_proto!("berth.volumes.v1");
        }
    }
}

/// Packs a message into an `Any` whose type URL is the plain full message name, the way
/// containerd's typeurl registry names event payloads (no `type.googleapis.com/` prefix).
pub fn to_any<T: prost::Message + prost::Name>(message: &T) -> prost_types::Any {
    prost_types::Any {
        type_url: T::full_name(),
        value: message.encode_to_vec(),
    }
}
