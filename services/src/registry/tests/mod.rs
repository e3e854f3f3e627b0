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
