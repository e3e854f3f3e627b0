//! Between containerd's API v1 messages (prost) and the shim task API (rust-protobuf).

use berth_proto::types::{Mount as ApiMount, v1::Process};
use containerd_shim_protos::{
    api::{Mount, StateResponse},
    protobuf::{
        MessageField,
        well_known_types::{any::Any, timestamp::Timestamp},
    },
};

/// A prost `Any` as rust-protobuf's.
pub fn any_to_shim(any: &prost_types::Any) -> Any {
    let mut out = Any::new();
    out.type_url = any.type_url.clone();
    out.value = any.value.clone();
    out
}

/// An optional prost `Any` as the field rust-protobuf messages hold.
pub fn any_field(any: Option<&prost_types::Any>) -> MessageField<Any> {
    any.map(any_to_shim).into()
}

/// A rust-protobuf `Any` as prost's, bytes copied as they are.
pub fn any_from_shim(any: MessageField<Any>) -> Option<prost_types::Any> {
    any.into_option().map(|a| prost_types::Any {
        type_url: a.type_url,
        value: a.value,
    })
}

/// A rust-protobuf `Timestamp` as prost's.
pub fn time_from_shim(t: MessageField<Timestamp>) -> Option<prost_types::Timestamp> {
    t.into_option().map(|t| prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

/// API mounts as the shim's.
pub fn mounts_to_shim(mounts: &[ApiMount]) -> Vec<Mount> {
    mounts
        .iter()
        .map(|m| {
            let mut out = Mount::new();
            out.type_ = m.r#type.clone();
            out.source = m.source.clone();
            out.target = m.target.clone();
            out.options = m.options.clone();
            out
        })
        .collect()
}

/// Snapshotter mounts as the shim's.
pub fn snapshot_mounts_to_shim(mounts: Vec<berth_snapshotter::mount::Mount>) -> Vec<Mount> {
    mounts
        .into_iter()
        .map(|m| {
            let mut out = Mount::new();
            out.type_ = m.kind;
            out.source = m.source;
            out.options = m.options;
            out
        })
        .collect()
}

/// A shim's `State` answer as the process containerd reports for `container_id`.
pub fn process(container_id: &str, state: StateResponse) -> Process {
    Process {
        container_id: container_id.to_string(),
        id: if state.exec_id.is_empty() {
            container_id.to_string()
        } else {
            state.exec_id.clone()
        },
        pid: state.pid,
        // The shim's Status enum and the API's share their numbers.
        status: state.status.value(),
        stdin: state.stdin,
        stdout: state.stdout,
        stderr: state.stderr,
        terminal: state.terminal,
        exit_status: state.exit_status,
        exited_at: time_from_shim(state.exited_at),
    }
}
