//! Container operations that are one runc command each: pause, resume, update, ps and
//! checkpoint.

use std::path::PathBuf;

use containerd_shim_protos::api::Status;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::shim::oci::{CheckpointOptions, ProcessDetails};
use containerd_shim_protos::types::task::ProcessInfo;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::runtime;

/// Type URL of the per-process details in `Pids`.
pub const PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";

impl Container {
    /// Freezes the container (`runc pause`).
    pub async fn pause(&self) -> Result<()> {
        if self.init.status() != Status::RUNNING {
            return Err(Error::FailedPrecondition("container is not running".into()));
        }
        self.runc
            .pause(&self.id)
            .await
            .map_err(|e| runtime::runc_error(&self.bundle, "pause", e))?;
        self.init.set_status(Status::PAUSED);
        Ok(())
    }

    /// Thaws the container (`runc resume`).
    pub async fn resume(&self) -> Result<()> {
        if self.init.status() != Status::PAUSED {
            return Err(Error::FailedPrecondition("container is not paused".into()));
        }
        self.runc
            .resume(&self.id)
            .await
            .map_err(|e| runtime::runc_error(&self.bundle, "resume", e))?;
        self.init.set_status(Status::RUNNING);
        Ok(())
    }

    /// Applies new resources (`runc update`); `resources` is the JSON of a LinuxResources.
    pub async fn update(&self, resources: &[u8]) -> Result<()> {
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(resources)
            .map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;
        self.runc
            .update(&self.id, &res)
            .await
            .map_err(|e| runtime::runc_error(&self.bundle, "update", e))
    }

    /// The container's processes (`runc ps`), exec processes tagged with their exec id.
    pub async fn pids(&self) -> Result<Vec<ProcessInfo>> {
        let pids = self
            .runc
            .ps(&self.id)
            .await
            .map_err(|e| runtime::runc_error(&self.bundle, "ps", e))?;
        let execs = self.exec_pids();
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids {
            let mut info = ProcessInfo::new();
            info.pid = pid as u32;
            if let Some(exec_id) = execs.get(&(pid as u32)) {
                let details = ProcessDetails {
                    exec_id: exec_id.clone(),
                    ..Default::default()
                };
                let mut any = Any::new();
                any.type_url = PROCESS_DETAILS.to_string();
                any.value = details
                    .write_to_bytes()
                    .map_err(|e| Error::Runtime(e.to_string()))?;
                info.info = Some(any).into();
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Checkpoints the container into `path` (`runc checkpoint`).
    pub async fn checkpoint(&self, path: &str, options: Option<&Any>) -> Result<()> {
        let opts = match options.filter(|a| !a.type_url.is_empty()) {
            Some(any) => CheckpointOptions::parse_from_bytes(&any.value)
                .map_err(|e| Error::InvalidArgument(format!("checkpoint options: {e}")))?,
            None => CheckpointOptions::default(),
        };
        let image = if !path.is_empty() {
            PathBuf::from(path)
        } else if !opts.image_path.is_empty() {
            PathBuf::from(&opts.image_path)
        } else if !self.options.criu_image_path.is_empty() {
            PathBuf::from(&self.options.criu_image_path)
        } else {
            return Err(Error::InvalidArgument(
                "checkpoint image path is empty".into(),
            ));
        };
        let work = if !opts.work_path.is_empty() {
            PathBuf::from(&opts.work_path)
        } else if !self.options.criu_work_path.is_empty() {
            PathBuf::from(&self.options.criu_work_path)
        } else {
            self.bundle.join("criu-work")
        };
        let mut args = runtime::global_args(&self.options, &self.namespace, &self.bundle);
        args.extend(checkpoint_args(&opts, &image, &work));
        args.push(self.id.clone());
        let mut cmd = runc::Command::new(runtime::runc_binary(&self.options));
        cmd.args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let (status, _, stdout, stderr) =
            runc::Spawner::execute(&crate::spawner::ReaperSpawner, cmd)
                .await
                .map_err(|e| Error::Runtime(format!("runc checkpoint: {e}")))?;
        if !status.success() {
            let detail = runtime::last_log_message(
                &std::fs::read_to_string(self.bundle.join(runtime::RUNC_LOG)).unwrap_or_default(),
            )
            .unwrap_or_else(|| format!("{stdout}{stderr}").trim().to_string());
            return Err(Error::Runtime(format!(
                "{detail}: path= {}",
                work.join("dump.log").display()
            )));
        }
        Ok(())
    }
}

/// `runc checkpoint` options for `opts`.
pub fn checkpoint_args(
    opts: &CheckpointOptions,
    image: &std::path::Path,
    work: &std::path::Path,
) -> Vec<String> {
    let mut args = vec![
        "checkpoint".to_string(),
        "--image-path".to_string(),
        image.display().to_string(),
        "--work-path".to_string(),
        work.display().to_string(),
    ];
    let flags = [
        (!opts.exit, "--leave-running"),
        (opts.open_tcp, "--tcp-established"),
        (opts.external_unix_sockets, "--ext-unix-sk"),
        (opts.terminal, "--shell-job"),
        (opts.file_locks, "--file-locks"),
    ];
    args.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f.to_string()),
    );
    for ns in &opts.empty_namespaces {
        args.push("--empty-ns".to_string());
        args.push(ns.clone());
    }
    if !opts.cgroups_mode.is_empty() {
        args.push("--manage-cgroups-mode".to_string());
        args.push(opts.cgroups_mode.clone());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_flags() {
        let opts = CheckpointOptions {
            exit: true,
            open_tcp: true,
            empty_namespaces: vec!["network".into()],
            ..Default::default()
        };
        let args = checkpoint_args(&opts, "/img".as_ref(), "/work".as_ref());
        assert_eq!(
            args,
            [
                "checkpoint",
                "--image-path",
                "/img",
                "--work-path",
                "/work",
                "--tcp-established",
                "--empty-ns",
                "network"
            ]
        );
        let leave = checkpoint_args(&CheckpointOptions::default(), "/i".as_ref(), "/w".as_ref());
        assert!(leave.contains(&"--leave-running".to_string()));
    }
}
