//! End-to-end tests of the registry client.
//!
//! `live` runs against Debian's `docker-registry` (distribution 2.8), started privately on
//! 127.0.0.1 with a temp storage folder; without the package these tests are skipped with a
//! message, unless `CI` is set, where they fail. `scripted` runs against a fake registry
//! written here, for behaviour a real registry will not show on demand (bearer tokens, 5xx,
//! redirects, schema 1, corrupt content). All traffic stays on 127.0.0.1.

mod live;
mod scripted;
mod support;

/// Every operation's future is `Send`, so the daemon can spawn pulls and pushes.
#[test]
fn operation_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let client = crate::registry::RegistryClient::new().unwrap();
    let r = crate::registry::Reference::parse("127.0.0.1:1/x:1").unwrap();
    let d = berth_proto::digest::Digest::sha256_of(b"");
    is_send(&client.resolve(&r));
    is_send(&client.fetch_manifest(&r, &d));
    is_send(&client.fetch_blob(&r, &d, 0));
    is_send(&client.blob_exists(&r, &d));
    is_send(&client.push_manifest(&r, "x", bytes::Bytes::new()));
    is_send(&client.push_blob(&r, &d, 0, futures::stream::empty(), None));
}
