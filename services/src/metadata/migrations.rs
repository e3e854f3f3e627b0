//! Ordered schema migrations. Each entry upgrades the tree from version `i` to `i + 1`; the
//! current version lives at `meta ␀ schema`. A database newer than this binary is refused.

use berth_proto::errdefs::{Error, Kind};

use super::{Key, Store, Update};

/// One migration step.
type Step = fn(&mut Update<'_>) -> Result<(), Error>;

/// The steps, oldest first. Version 1 is the initial layout and needs no data change.
const STEPS: &[Step] = &[initial_layout];

fn initial_layout(_: &mut Update<'_>) -> Result<(), Error> {
    Ok(())
}

/// The schema version this binary writes.
pub fn current_version() -> u32 {
    STEPS.len() as u32
}

/// Brings the database up to [`current_version`].
pub fn run(store: &Store) -> Result<(), Error> {
    store.update(|u| {
        let key = Key::meta("schema");
        let mut version: u32 = u.get(&key)?.unwrap_or(0);
        if version > current_version() {
            return Err(Error::new(
                Kind::FailedPrecondition,
                format!(
                    "metadata schema version {version} is newer than this berthd supports ({})",
                    current_version()
                ),
            ));
        }
        while (version as usize) < STEPS.len() {
            STEPS[version as usize](u)?;
            version += 1;
        }
        u.put(&key, &version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_layout_sets_version_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let v: Option<u32> = store.view().get(&Key::meta("schema")).unwrap();
        assert_eq!(v, Some(1));
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .update(|u| u.put(&Key::meta("schema"), &99u32))
                .unwrap();
        }
        let err = Store::open(dir.path()).err().unwrap();
        assert_eq!(err.kind, Kind::FailedPrecondition);
    }
}
