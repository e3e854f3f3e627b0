//! `containerd-shim-berth-v2 … start`: find or start the shim serving this container's
//! group, write its address to `address` in the bundle and print it.
//!
//! The server is this binary again (no action, `-socket ADDR`), in its own session. It
//! reports readiness by writing `ok` (or an error) on its stdout pipe once the socket
//! listens, so `start` never polls. containerd 1.6/1.7 get the plain address; a daemon
//! that sent bootstrap parameters on stdin (containerd 2.x) gets a `BootstrapResult`.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use containerd_shim::Flags;
use containerd_shim_protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::protobuf::well_known_types::any::Any;

use crate::address;

/// The file in the bundle that names the shim's socket.
pub const ADDRESS_FILE: &str = "address";

/// How the daemon asked to be answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// containerd 1.x: environment and flags; stdin may carry runtime options.
    Legacy {
        /// Runtime options sent on stdin, if any.
        options: Option<Any>,
    },
    /// containerd 2.x bootstrap parameters.
    Bootstrap(BootstrapParams),
}

/// Reads what the daemon wrote on stdin.
pub fn parse_request(input: &[u8], flags: &Flags) -> Request {
    if !input.is_empty()
        && let Ok(params) = BootstrapParams::parse_from_bytes(input)
        && params.instance_id == flags.id
        && params.namespace == flags.namespace
        && !params.containerd_ttrpc_address.is_empty()
    {
        return Request::Bootstrap(params);
    }
    let options = Any::parse_from_bytes(input)
        .ok()
        .filter(|a| !a.type_url.is_empty());
    Request::Legacy { options }
}

/// The bytes printed on stdout for `address`.
pub fn reply(request: &Request, address: &str) -> anyhow::Result<Vec<u8>> {
    Ok(match request {
        Request::Legacy { .. } => address.as_bytes().to_vec(),
        Request::Bootstrap(_) => BootstrapResult {
            version: 3,
            address: address.to_string(),
            protocol: "ttrpc".to_string(),
            ..Default::default()
        }
        .write_to_bytes()?,
    })
}

/// Runs the `start` action.
pub fn run(flags: &Flags) -> anyhow::Result<()> {
    let mut input = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin().take(1 << 20).read_to_end(&mut input)?;
    }
    let request = parse_request(&input, flags);
    let (ttrpc_address, socket_dir, options) = match &request {
        Request::Bootstrap(p) => (
            p.containerd_ttrpc_address.clone(),
            p.socket_dir.clone(),
            p.extensions
                .iter()
                .filter_map(|e| e.value.as_ref())
                .find(|a| a.type_url.ends_with("containerd.runc.v1.Options"))
                .cloned(),
        ),
        Request::Legacy { options } => (
            std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
            None,
            options.clone(),
        ),
    };
    let cwd = std::env::current_dir()?;
    let group = address::bundle_group(&cwd, &flags.id);
    let addr = address::socket_address(
        &flags.address,
        &flags.namespace,
        &group,
        socket_dir.as_deref(),
    );
    if !address::is_live(&addr) {
        spawn_server(flags, &addr, &ttrpc_address, options.as_ref())?;
    }
    std::fs::write(cwd.join(ADDRESS_FILE), &addr)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply(&request, &addr)?)?;
    out.flush()?;
    Ok(())
}

fn spawn_server(
    flags: &Flags,
    addr: &str,
    ttrpc_address: &str,
    options: Option<&Any>,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "-namespace",
        &flags.namespace,
        "-id",
        &flags.id,
        "-address",
        &flags.address,
    ])
    .args(["-publish-binary", &flags.publish_binary, "-socket", addr])
    .env("TTRPC_ADDRESS", ttrpc_address)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if flags.debug {
        cmd.arg("-debug");
    }
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let shim_cgroup = options
        .and_then(|a| crate::runtime::parse_options(Some(a)).ok())
        .map(|o| o.shim_cgroup)
        .unwrap_or_default();
    if !shim_cgroup.is_empty()
        && let Err(e) = crate::cgroups::join(child.id(), &shim_cgroup, Path::new("/sys/fs/cgroup"))
    {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("placing the shim in cgroup {shim_cgroup}: {e}");
    }
    // The shim goes before the daemon when memory runs out; raising a score never needs
    // privileges, so a failure here is only worth a warning.
    if let Err(e) = containerd_shim::cgroup::adjust_oom_score(child.id()) {
        tracing::warn!(error = %e, "shim oom score");
    }
    let mut status = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut status)?;
    }
    if status.trim() != "ok" {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("shim server failed to start: {}", status.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            id: "c1".into(),
            namespace: "default".into(),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_gets_the_plain_address() {
        let req = parse_request(b"", &flags());
        assert_eq!(req, Request::Legacy { options: None });
        assert_eq!(reply(&req, "unix:///run/x").unwrap(), b"unix:///run/x");
    }

    #[test]
    fn bootstrap_gets_a_result_message() {
        let params = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "default".into(),
            containerd_ttrpc_address: "/run/c.sock.ttrpc".into(),
            ..Default::default()
        };
        let req = parse_request(&params.write_to_bytes().unwrap(), &flags());
        assert!(matches!(req, Request::Bootstrap(_)));
        let bytes = reply(&req, "unix:///run/x").unwrap();
        let result = BootstrapResult::parse_from_bytes(&bytes).unwrap();
        assert_eq!(result.address, "unix:///run/x");
        assert_eq!(result.protocol, "ttrpc");
        assert_eq!(result.version, 3);
    }
}
