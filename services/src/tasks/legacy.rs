//! containerd 1.x's legacy runtime, `io.containerd.runtime.v1.linux`.
//!
//! containerd 1.6 still accepts containers made for its v1 runtime, whose options are
//! `containerd.linux.runc.RuncOptions` (runc binary, runc root, systemd cgroups; its criu
//! path has no v2 counterpart and is dropped).
//! Berth has no v1 shim protocol: such containers run on Berth's own shim, with those
//! options carried over into the v2 form (`containerd.runc.v1.Options`), so a client that
//! names another runc binary still gets it (or the error of it missing).

use berth_proto::errdefs::Error;
use containerd_shim_protos::{protobuf::Message as _, shim::oci::Options};
use prost::Message as _;

/// The legacy runtime's name.
pub const LINUX_V1: &str = "io.containerd.runtime.v1.linux";
/// The runtime that serves it.
pub const SUBSTITUTE: &str = "io.containerd.berth.v2";
/// The type URL of the legacy runtime's options.
pub const RUNC_OPTIONS_V1: &str = "containerd.linux.runc.RuncOptions";

/// The legacy runtime's options message (`containerd.linux.runc.RuncOptions`).
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    #[prost(string, tag = "1")]
    runtime: String,
    #[prost(string, tag = "2")]
    runtime_root: String,
    #[prost(bool, tag = "4")]
    systemd_cgroup: bool,
}

/// The runtime and options to use for `runtime` with `options`: unchanged, except for the
/// legacy runtime, which becomes [`SUBSTITUTE`] with its options translated.
pub fn translate(
    runtime: String,
    options: Option<&prost_types::Any>,
) -> Result<(String, Option<prost_types::Any>), Error> {
    if runtime != LINUX_V1 {
        return Ok((runtime, options.cloned()));
    }
    let options = match options {
        Some(any)
            if any
                .type_url
                .trim_start_matches('/')
                .ends_with(RUNC_OPTIONS_V1) =>
        {
            let old = RuncOptions::decode(any.value.as_slice())
                .map_err(|e| Error::invalid(format!("invalid {RUNC_OPTIONS_V1}: {e}")))?;
            let new = Options {
                binary_name: old.runtime,
                root: old.runtime_root,
                systemd_cgroup: old.systemd_cgroup,
                ..Default::default()
            };
            Some(prost_types::Any {
                type_url: super::RUNC_OPTIONS.to_string(),
                value: new
                    .write_to_bytes()
                    .map_err(|e| Error::internal(format!("encode runc options: {e}")))?,
            })
        }
        other => other.cloned(),
    };
    Ok((SUBSTITUTE.to_string(), options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_runtimes_pass_through() {
        let (r, o) = translate("io.containerd.runc.v2".into(), None).unwrap();
        assert_eq!((r.as_str(), o), ("io.containerd.runc.v2", None));
    }

    #[test]
    fn legacy_options_become_runc_v2_options() {
        let old = RuncOptions {
            runtime: "no-runc".into(),
            runtime_root: "/run/x".into(),
            systemd_cgroup: true,
        };
        let any = prost_types::Any {
            type_url: RUNC_OPTIONS_V1.into(),
            value: old.encode_to_vec(),
        };
        let (r, o) = translate(LINUX_V1.into(), Some(&any)).unwrap();
        assert_eq!(r, SUBSTITUTE);
        let o = o.unwrap();
        assert_eq!(o.type_url, super::super::RUNC_OPTIONS);
        let new = Options::parse_from_bytes(&o.value).unwrap();
        assert_eq!(new.binary_name, "no-runc");
        assert_eq!(new.root, "/run/x");
        assert!(new.systemd_cgroup);
    }

    #[test]
    fn garbage_legacy_options_are_refused() {
        let any = prost_types::Any {
            type_url: RUNC_OPTIONS_V1.into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert!(translate(LINUX_V1.into(), Some(&any)).is_err());
    }
}
