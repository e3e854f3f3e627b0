//! Which containers use which volumes: a container uses every volume named in its
//! `berth.io/volumes` label (comma-separated), whatever its namespace.

use std::{collections::HashMap, sync::Arc};

use berth_proto::{errdefs::Error, filters::Filter, labels};

use crate::{containers::Containers, namespaces::Namespaces};

/// A container, by namespace and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerRef {
    /// Its namespace.
    pub namespace: String,
    /// Its id.
    pub id: String,
}

/// Finds the users of volumes.
pub trait Users: Send + Sync {
    /// Every container using a volume, by volume name (each list sorted).
    fn users(&self) -> Result<HashMap<String, Vec<ContainerRef>>, Error>;
}

/// The volume names a `berth.io/volumes` label value lists.
pub fn named_in(label: &str) -> impl Iterator<Item = &str> {
    label.split(',').map(str::trim).filter(|n| !n.is_empty())
}

/// Users as the container records of every namespace tell them.
pub struct ContainerUsers {
    namespaces: Arc<Namespaces>,
    containers: Arc<Containers>,
}

impl ContainerUsers {
    /// Reads the containers of every namespace in `namespaces` from `containers`.
    pub fn new(namespaces: Arc<Namespaces>, containers: Arc<Containers>) -> ContainerUsers {
        ContainerUsers {
            namespaces,
            containers,
        }
    }
}

impl Users for ContainerUsers {
    fn users(&self) -> Result<HashMap<String, Vec<ContainerRef>>, Error> {
        let filter = Filter::parse(&format!("labels.\"{}\"", labels::berth::VOLUMES))?;
        let mut out: HashMap<String, Vec<ContainerRef>> = HashMap::new();
        for (ns, _) in self.namespaces.list()? {
            for c in self.containers.list(&ns, &filter)? {
                let label = c
                    .labels
                    .get(labels::berth::VOLUMES)
                    .map_or("", String::as_str);
                for volume in named_in(label) {
                    out.entry(volume.to_string())
                        .or_default()
                        .push(ContainerRef {
                            namespace: ns.clone(),
                            id: c.id.clone(),
                        });
                }
            }
        }
        for list in out.values_mut() {
            list.sort();
            list.dedup();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::named_in;

    #[test]
    fn label_lists_names() {
        let names: Vec<&str> = named_in("v1, v2,,v3 ").collect();
        assert_eq!(names, ["v1", "v2", "v3"]);
        assert_eq!(named_in("").count(), 0);
    }
}
