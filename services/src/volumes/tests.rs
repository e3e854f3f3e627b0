//! The volume store against a fake list of users.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use berth_proto::{errdefs::Kind, filters::Filter};

use super::{
    Volumes,
    users::{ContainerRef, Users},
};

#[derive(Default)]
struct FakeUsers(Mutex<HashMap<String, Vec<ContainerRef>>>);

impl FakeUsers {
    fn set(&self, volume: &str, ns: &str, id: &str) {
        self.0.lock().unwrap().insert(
            volume.to_string(),
            vec![ContainerRef {
                namespace: ns.to_string(),
                id: id.to_string(),
            }],
        );
    }
}

impl Users for FakeUsers {
    fn users(&self) -> Result<HashMap<String, Vec<ContainerRef>>, berth_proto::errdefs::Error> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn store() -> (tempfile::TempDir, Arc<FakeUsers>, Volumes) {
    let tmp = tempfile::tempdir().unwrap();
    let users = Arc::new(FakeUsers::default());
    let volumes = Volumes::open(&tmp.path().join("volumes"), users.clone()).unwrap();
    (tmp, users, volumes)
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn names(volumes: &Volumes, filter: &str) -> Vec<String> {
    let filter = Filter::parse(filter).unwrap();
    volumes
        .list(&filter, false)
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

#[test]
fn create_is_idempotent() {
    let (tmp, _, volumes) = store();
    let first = volumes
        .create("data", labels(&[("a", "1")]), false)
        .unwrap();
    assert_eq!(first.mountpoint, tmp.path().join("volumes/data/_data"));
    assert!(first.mountpoint.is_dir());
    assert_eq!(first.size, None);
    let again = volumes.create("data", labels(&[("b", "2")]), true).unwrap();
    assert_eq!(again, first);
    assert_eq!(volumes.get("data", false).unwrap(), first);
}

#[test]
fn empty_name_gets_a_random_one() {
    let (_tmp, _, volumes) = store();
    let v = volumes.create("", HashMap::new(), true).unwrap();
    assert_eq!(v.name.len(), 64);
    assert!(v.anonymous);
    assert_ne!(
        volumes.create("", HashMap::new(), true).unwrap().name,
        v.name
    );
}

#[test]
fn bad_names_are_refused_and_write_nothing() {
    let (tmp, _, volumes) = store();
    for bad in ["../x", "a/b", "..", ".x", "x", "/abs"] {
        let err = volumes.create(bad, HashMap::new(), false).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument, "{bad}");
        assert_eq!(
            volumes.get(bad, false).unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(
            volumes.remove(bad, true).unwrap_err().kind,
            Kind::InvalidArgument
        );
    }
    assert!(!tmp.path().join("x").exists());
    assert!(
        std::fs::read_dir(tmp.path().join("volumes"))
            .unwrap()
            .next()
            .is_none()
    );
    let err = volumes
        .create("ok1", labels(&[("", "v")]), false)
        .unwrap_err();
    assert_eq!(err.kind, Kind::InvalidArgument);
}

#[test]
fn get_and_remove_missing_are_not_found() {
    let (_tmp, _, volumes) = store();
    assert_eq!(volumes.get("nope", false).unwrap_err().kind, Kind::NotFound);
    assert_eq!(
        volumes.remove("nope", false).unwrap_err().kind,
        Kind::NotFound
    );
}

#[test]
fn list_filters_by_name_labels_and_dangling() {
    let (_tmp, users, volumes) = store();
    volumes
        .create("v1", labels(&[("env", "prod")]), false)
        .unwrap();
    volumes
        .create("v2", labels(&[("env", "dev")]), false)
        .unwrap();
    volumes.create("v3", HashMap::new(), false).unwrap();
    users.set("v2", "default", "c1");
    assert_eq!(names(&volumes, ""), ["v1", "v2", "v3"]);
    assert_eq!(names(&volumes, "name==v3"), ["v3"]);
    assert_eq!(names(&volumes, "labels.env==prod"), ["v1"]);
    assert_eq!(names(&volumes, "labels.env"), ["v1", "v2"]);
    assert_eq!(names(&volumes, "dangling==true"), ["v1", "v3"]);
    assert_eq!(names(&volumes, "dangling==false"), ["v2"]);
    let listed = volumes.list(&Filter::always(), true).unwrap();
    assert!(listed.iter().all(|v| v.size == Some(0)));
    assert_eq!(listed[1].used_by[0].id, "c1");
}

#[test]
fn remove_refuses_volumes_in_use_unless_forced() {
    let (_tmp, users, volumes) = store();
    let v = volumes.create("v1", HashMap::new(), false).unwrap();
    std::fs::write(v.mountpoint.join("f"), b"data").unwrap();
    users.set("v1", "other", "c9");
    let err = volumes.remove("v1", false).unwrap_err();
    assert_eq!(err.kind, Kind::FailedPrecondition);
    assert_eq!(err.message, "volume v1 is in use by container(s) c9");
    assert_eq!(volumes.get("v1", true).unwrap().size, Some(4));
    volumes.remove("v1", true).unwrap();
    assert!(!v.mountpoint.exists());
}

#[test]
fn prune_keeps_used_and_named_volumes() {
    let (_tmp, users, volumes) = store();
    let anon = volumes.create("", HashMap::new(), true).unwrap();
    std::fs::write(anon.mountpoint.join("f"), vec![0u8; 10]).unwrap();
    let used_anon = volumes.create("", HashMap::new(), true).unwrap();
    users.set(&used_anon.name, "default", "c1");
    let named = volumes.create("named", HashMap::new(), false).unwrap();
    std::fs::write(named.mountpoint.join("f"), vec![0u8; 5]).unwrap();
    let pruned = volumes.prune(false).unwrap();
    assert_eq!(pruned.removed, std::slice::from_ref(&anon.name));
    assert_eq!(pruned.space_reclaimed, 10);
    let pruned = volumes.prune(true).unwrap();
    assert_eq!(pruned.removed, ["named"]);
    assert_eq!(pruned.space_reclaimed, 5);
    assert_eq!(names(&volumes, ""), [used_anon.name]);
}
