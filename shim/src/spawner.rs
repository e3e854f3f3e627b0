//! Runs runc's command lines for the `runc` crate, with exits collected by the
//! [`reaper`](crate::reaper) instead of tokio's own child tracking (which would race with
//! the subreaper's `waitpid(-1)`).

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use async_trait::async_trait;
use runc::error::Error as RuncError;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::reaper;

/// The `runc` crate's [`runc::Spawner`], backed by the shim's reaper.
#[derive(Debug, Default)]
pub struct ReaperSpawner;

async fn read_all(fd: Option<OwnedFd>) -> String {
    let Some(fd) = fd else {
        return String::new();
    };
    let mut out = Vec::new();
    if let Ok(mut rx) = pipe::Receiver::from_owned_fd(fd) {
        let _ = rx.read_to_end(&mut out).await;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl runc::Spawner for ReaperSpawner {
    async fn execute(
        &self,
        mut cmd: runc::Command,
    ) -> runc::Result<(ExitStatus, u32, String, String)> {
        let mut child = cmd
            .as_std_mut()
            .spawn()
            .map_err(RuncError::ProcessSpawnFailed)?;
        drop(cmd);
        let pid = child.id();
        // Registered before the first await: the reaper cannot have seen this exit yet.
        let exit = reaper::watch(pid);
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let (stdout, stderr) = tokio::join!(read_all(stdout), read_all(stderr));
        let raw = exit
            .await
            .map_err(|_| RuncError::InvalidCommand(std::io::Error::other("child lost")))?;
        Ok((ExitStatus::from_raw(raw), pid, stdout, stderr))
    }
}
