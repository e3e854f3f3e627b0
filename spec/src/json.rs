//! The spec as containerd stores it: JSON bytes inside a protobuf `Any`.

use oci_spec::runtime::Spec;

use crate::SpecError;

/// Type URL of the `Any` that carries a runtime spec in containerd's API
/// (`Container.spec`), whose value is the spec's JSON.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Encodes `spec` as the JSON bytes that go into the `Any` value (and into a
/// bundle's `config.json`).
pub fn to_json(spec: &Spec) -> Result<Vec<u8>, SpecError> {
    Ok(serde_json::to_vec(spec)?)
}

/// Decodes a spec from JSON bytes, the inverse of [`to_json`].
pub fn from_json(bytes: &[u8]) -> Result<Spec, SpecError> {
    Ok(serde_json::from_slice(bytes)?)
}
