//! `containerd-shim-berth-v2 … delete`: clean up after a shim that died (cwd = bundle):
//! force-delete the runc container, unmount the rootfs, remove the dead shim's socket (a
//! killed shim cannot), report a SIGKILL exit.

use std::io::Write;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use runc::options::DeleteOpts;

use crate::process::to_timestamp;
use crate::start::ADDRESS_FILE;
use crate::{address, rootfs, runtime};

/// The exit status reported for a container whose shim is gone: 128 + SIGKILL.
pub const KILLED: u32 = 128 + libc::SIGKILL as u32;

/// Runs the `delete` action for container `id` of `namespace`.
pub async fn run(id: &str, namespace: &str) -> anyhow::Result<()> {
    let bundle = std::env::current_dir()?;
    let options = runtime::read_options(&bundle);
    let runc = runtime::client(&options, namespace, &bundle)?;
    if let Err(e) = runc.delete(id, Some(&DeleteOpts::new().force(true))).await {
        tracing::warn!(id, error = %e, "runc delete");
    }
    rootfs::unmount(&bundle.join("rootfs"));
    if let Ok(addr) = std::fs::read_to_string(bundle.join(ADDRESS_FILE)) {
        address::remove_dead(addr.trim());
    }
    let response = DeleteResponse {
        exit_status: KILLED,
        exited_at: Some(to_timestamp(std::time::SystemTime::now())).into(),
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&response.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}
