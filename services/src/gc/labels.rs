//! The labels containerd's garbage collector reads.

use std::{collections::HashMap, time::SystemTime};

/// Marks an object as a root: it is kept, and so is everything it references.
pub const ROOT: &str = "containerd.io/gc.root";
/// Prefix of labels whose value is a content digest the object references.
pub const REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// Prefix of labels `containerd.io/gc.ref.snapshot.<snapshotter>[/…]` naming a snapshot key.
pub const REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";
/// RFC 3339 time after which a lease no longer protects anything.
pub const EXPIRE: &str = "containerd.io/gc.expire";
/// On a lease: hold only the listed resources, not what they reference.
pub const FLAT: &str = "containerd.io/gc.flat";

/// Something an object's labels point at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// A blob, by digest.
    Content(String),
    /// A snapshot, by snapshotter and key.
    Snapshot {
        /// The snapshotter's name.
        snapshotter: String,
        /// The snapshot key.
        key: String,
    },
}

/// The references carried by `labels`.
pub fn references(labels: &HashMap<String, String>) -> impl Iterator<Item = Reference> + '_ {
    labels.iter().filter_map(|(k, v)| {
        if k.starts_with(REF_CONTENT) {
            return Some(Reference::Content(v.clone()));
        }
        let rest = k.strip_prefix(REF_SNAPSHOT)?;
        let snapshotter = rest.split('/').next().unwrap_or_default();
        if snapshotter.is_empty() {
            return None;
        }
        Some(Reference::Snapshot {
            snapshotter: snapshotter.to_string(),
            key: v.clone(),
        })
    })
}

/// Whether `labels` mark a GC root.
pub fn is_root(labels: &HashMap<String, String>) -> bool {
    labels.contains_key(ROOT)
}

/// When a lease with `labels` expires, if it does. An unparsable time never expires (logged).
pub fn expiry(labels: &HashMap<String, String>) -> Option<SystemTime> {
    let value = labels.get(EXPIRE)?;
    match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(t) => Some(SystemTime::from(t)),
        Err(err) => {
            tracing::warn!(value, %err, "ignoring unparsable lease expiry");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_content_and_snapshot_references() {
        let labels = HashMap::from([
            (
                "containerd.io/gc.ref.content.config".to_string(),
                "sha256:aa".to_string(),
            ),
            (
                "containerd.io/gc.ref.content.l.0".to_string(),
                "sha256:bb".to_string(),
            ),
            (
                "containerd.io/gc.ref.snapshot.overlayfs".to_string(),
                "k1".to_string(),
            ),
            (
                "containerd.io/gc.ref.snapshot.native/1".to_string(),
                "k2".to_string(),
            ),
            ("other".to_string(), "sha256:cc".to_string()),
        ]);
        let mut refs: Vec<_> = references(&labels).collect();
        refs.sort();
        assert_eq!(
            refs,
            vec![
                Reference::Content("sha256:aa".into()),
                Reference::Content("sha256:bb".into()),
                Reference::Snapshot {
                    snapshotter: "native".into(),
                    key: "k2".into()
                },
                Reference::Snapshot {
                    snapshotter: "overlayfs".into(),
                    key: "k1".into()
                },
            ]
        );
    }

    #[test]
    fn parses_expiry_with_offsets() {
        let utc = HashMap::from([(EXPIRE.to_string(), "2030-01-01T00:00:00Z".to_string())]);
        let plus = HashMap::from([(EXPIRE.to_string(), "2030-01-01T01:00:00+01:00".to_string())]);
        assert_eq!(expiry(&utc), expiry(&plus));
        assert!(expiry(&utc).is_some());
        let bad = HashMap::from([(EXPIRE.to_string(), "soon".to_string())]);
        assert_eq!(expiry(&bad), None);
    }
}
