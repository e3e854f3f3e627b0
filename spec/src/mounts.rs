//! Bind mounts asked for by the caller, and how they join the defaults.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::SpecError;

/// A host path bind-mounted into the container (Docker's `-v src:dst[:ro]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    /// Absolute host path.
    pub source: PathBuf,
    /// Absolute path inside the container, without `..`.
    pub destination: PathBuf,
    /// Mount read-only (`ro`) instead of read-write (`rw`).
    pub readonly: bool,
    /// Include submounts (`rbind`, Docker's default) rather than `bind`.
    pub recursive: bool,
}

impl BindMount {
    /// A read-write, recursive bind of `source` at `destination`.
    pub fn new(source: impl Into<PathBuf>, destination: impl Into<PathBuf>) -> Self {
        Self {
            source: source.into(),
            destination: destination.into(),
            readonly: false,
            recursive: true,
        }
    }

    /// Sets whether the mount is read-only.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Sets whether submounts of the source come along (`rbind`).
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Validates the paths and renders the OCI mount.
    fn to_oci(&self) -> Result<Mount, SpecError> {
        check_destination(&self.destination)?;
        if !self.source.is_absolute() {
            return Err(SpecError::invalid(
                "mount source",
                format!("{:?} is not an absolute host path", self.source),
            ));
        }
        let bind = if self.recursive { "rbind" } else { "bind" };
        let mode = if self.readonly { "ro" } else { "rw" };
        let mut m = Mount::default();
        m.set_destination(self.destination.clone());
        m.set_typ(Some("bind".to_string()));
        m.set_source(Some(self.source.clone()));
        m.set_options(Some(vec![
            bind.to_string(),
            "rprivate".to_string(),
            mode.to_string(),
        ]));
        Ok(m)
    }
}

/// Refuses destinations that are relative, `/` itself, or use `..`.
fn check_destination(dest: &Path) -> Result<(), SpecError> {
    let reason = if !dest.is_absolute() {
        "it must be an absolute path"
    } else if dest.components().any(|c| c == Component::ParentDir) {
        "it must not contain '..'"
    } else if dest.components().all(|c| c == Component::RootDir) {
        "it must not be '/'"
    } else {
        return Ok(());
    };
    Err(SpecError::InvalidMount {
        destination: dest.to_path_buf(),
        reason,
    })
}

/// The default mounts followed by `binds`; a bind replaces any default at
/// the same destination (e.g. a caller's own `/dev/shm`).
pub fn merge(defaults: Vec<Mount>, binds: &[BindMount]) -> Result<Vec<Mount>, SpecError> {
    let binds = binds
        .iter()
        .map(BindMount::to_oci)
        .collect::<Result<Vec<_>, _>>()?;
    let taken = |m: &Mount| {
        binds.iter().any(|b| {
            b.destination()
                .components()
                .eq(m.destination().components())
        })
    };
    Ok(defaults
        .into_iter()
        .filter(|m| !taken(m))
        .chain(binds.iter().cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;

    #[test]
    fn options_follow_the_flags() {
        let m = merge(vec![], &[BindMount::new("/data", "/mnt").readonly(true)]).unwrap();
        assert_eq!(m[0].typ().as_deref(), Some("bind"));
        assert_eq!(
            m[0].options().as_ref().unwrap(),
            &["rbind", "rprivate", "ro"]
        );
        let m = merge(vec![], &[BindMount::new("/data", "/mnt").recursive(false)]).unwrap();
        assert_eq!(
            m[0].options().as_ref().unwrap(),
            &["bind", "rprivate", "rw"]
        );
    }

    #[test]
    fn bind_replaces_default_at_same_destination() {
        let all = merge(
            defaults::mounts(false),
            &[BindMount::new("/host/shm", "/dev/shm/")],
        )
        .unwrap();
        let shm: Vec<_> = all
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].typ().as_deref(), Some("bind"));
        assert_eq!(all.len(), defaults::mounts(false).len());
    }

    #[test]
    fn bad_destinations_and_sources() {
        for dest in ["relative/path", "/a/../../etc", "/", "//"] {
            let err = merge(vec![], &[BindMount::new("/src", dest)]).unwrap_err();
            assert!(
                matches!(err, SpecError::InvalidMount { .. }),
                "{dest}: {err}"
            );
        }
        assert!(matches!(
            merge(vec![], &[BindMount::new("src", "/dst")]),
            Err(SpecError::InvalidValue { .. })
        ));
    }
}
