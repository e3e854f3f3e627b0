//! Key construction for the metadata tree (see the module doc of `metadata`).

/// A key in the metadata tree: parts joined by NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

const SEP: u8 = 0;

impl Key {
    fn from_parts(parts: &[&str]) -> Key {
        let mut bytes = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                bytes.push(SEP);
            }
            bytes.extend_from_slice(part.as_bytes());
        }
        Key(bytes)
    }

    /// `meta ␀ <name>`: the store's own bookkeeping.
    pub fn meta(name: &str) -> Key {
        Key::from_parts(&["meta", name])
    }

    /// The parent of every namespace record.
    pub fn namespaces() -> Key {
        Key::from_parts(&["v1", "namespaces"])
    }

    /// The record of namespace `ns`.
    pub fn namespace(ns: &str) -> Key {
        Key::from_parts(&["v1", "namespaces", ns])
    }

    /// Everything that lives in namespace `ns`.
    pub fn namespace_objects(ns: &str) -> Key {
        Key::from_parts(&["v1", "ns", ns])
    }

    /// The bucket `bucket` (content, leases, images, …) of namespace `ns`.
    pub fn bucket(ns: &str, bucket: &str) -> Key {
        Key::from_parts(&["v1", "ns", ns, bucket])
    }

    /// Object `name` in bucket `bucket` of namespace `ns`.
    pub fn object(ns: &str, bucket: &str, name: &str) -> Key {
        Key::from_parts(&["v1", "ns", ns, bucket, name])
    }

    /// The parent of every snapshotter's records.
    pub fn snapshotters() -> Key {
        Key::from_parts(&["v1", "snapshotters"])
    }

    /// The records of snapshotter `name`.
    pub fn snapshots(name: &str) -> Key {
        Key::from_parts(&["v1", "snapshotters", name])
    }

    /// The record of snapshot `key` (already namespaced) of snapshotter `name`.
    pub fn snapshot(name: &str, key: &str) -> Key {
        Key::from_parts(&["v1", "snapshotters", name, key])
    }

    /// The id counter of snapshotter `name`.
    pub fn snapshot_counter(name: &str) -> Key {
        Key::from_parts(&["meta", "snapshot-id", name])
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The prefix that every child of this key starts with.
    pub fn as_prefix(&self) -> Vec<u8> {
        let mut p = self.0.clone();
        p.push(SEP);
        p
    }

    /// The first part of `full` below this key (the child's name).
    pub fn child_name(&self, full: &[u8]) -> String {
        let rest = &full[(self.0.len() + 1).min(full.len())..];
        let end = rest.iter().position(|b| *b == SEP).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_named_by_their_first_part() {
        let bucket = Key::bucket("default", "content");
        let obj = Key::object("default", "content", "sha256:ab");
        assert!(obj.as_bytes().starts_with(&bucket.as_prefix()));
        assert_eq!(bucket.child_name(obj.as_bytes()), "sha256:ab");
        // "content" must not match a sibling bucket named "contents".
        let sibling = Key::object("default", "contents", "x");
        assert!(!sibling.as_bytes().starts_with(&bucket.as_prefix()));
    }
}
