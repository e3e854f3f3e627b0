//! The records stored in the metadata tree.

use std::{
    collections::{BTreeSet, HashMap},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// A point in time as seconds and nanoseconds since the Unix epoch (protobuf's shape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    /// Whole seconds.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// As a protobuf timestamp.
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.seconds,
            nanos: self.nanos,
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            },
            Err(_) => Timestamp::default(),
        }
    }
}

/// A namespace and its labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    /// User labels.
    pub labels: HashMap<String, String>,
}

/// A blob as one namespace sees it (the bytes are shared, the record is per namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// Size in bytes.
    pub size: i64,
    /// When it entered this namespace.
    pub created_at: Timestamp,
    /// Last change of its labels.
    pub updated_at: Timestamp,
    /// User and GC labels.
    pub labels: HashMap<String, String>,
}

/// A resource held by a lease, as containerd names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseResource {
    /// `content`, `ingests`, `snapshots/<snapshotter>`, `images`, ….
    pub kind: String,
    /// The resource's id within its kind (digest, ref, key, name).
    pub id: String,
}

/// A lease: a set of resources protected from garbage collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// When it was created.
    pub created_at: Timestamp,
    /// Labels, including `containerd.io/gc.expire` and `containerd.io/gc.flat`.
    pub labels: HashMap<String, String>,
    /// What it holds.
    pub resources: BTreeSet<LeaseResource>,
}

/// A content descriptor as containerd stores it with an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorRecord {
    /// The media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: i64,
    /// OCI annotations.
    pub annotations: HashMap<String, String>,
}

/// An image: a name pointing at a manifest or index in the content store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Labels, including GC references.
    pub labels: HashMap<String, String>,
    /// The root of the image's content graph.
    pub target: DescriptorRecord,
    /// When the name was created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One snapshot as a snapshotter records it (keys are `<namespace>/<key>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The snapshotter's id for its directory.
    pub id: u64,
    /// containerd's kind number: view 1, active 2, committed 3.
    pub kind: i32,
    /// The parent's key; empty for none.
    pub parent: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Creation (or commit) time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bytes used (committed snapshots).
    pub size: i64,
    /// Inodes used (committed snapshots).
    pub inodes: i64,
}

/// A container: containerd's `Container` message, stored as its protobuf encoding (base64) so
/// every field, including the spec and extensions, round-trips exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Base64 of the encoded `containerd.services.containers.v1.Container`.
    pub proto: String,
}
