//! Signals: docker's names for them, and forwarding the ones we receive to a task (docker's
//! sig-proxy).

use anyhow::bail;
use containerd_client::services::v1::{KillRequest, tasks_client::TasksClient};
use tokio::{
    signal::unix::{SignalKind, signal},
    task::JoinHandle,
};

use crate::client::Client;

/// Linux's signal names and numbers (x86 and arm numbering).
const SIGNALS: [(&str, u32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses `KILL`, `SIGKILL`, `sigkill` or `9` (real-time signals as numbers up to 64).
pub fn parse(text: &str) -> anyhow::Result<u32> {
    if let Ok(n) = text.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n}: use 1 to 64");
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    match SIGNALS.iter().find(|(n, _)| *n == name) {
        Some((_, num)) => Ok(*num),
        None => bail!("invalid signal {text:?}: use a name like TERM or KILL, or a number"),
    }
}

/// Sends `signal` to process `exec_id` (the init process when empty) of container `id`.
pub async fn kill(client: &Client, id: &str, exec_id: &str, signal: u32) -> anyhow::Result<()> {
    TasksClient::new(client.channel.clone())
        .kill(client.request(KillRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            signal,
            all: false,
        }))
        .await?;
    Ok(())
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 that we receive to the
/// process, until the handle is aborted.
pub fn forward(client: &Client, id: &str, exec_id: &str) -> JoinHandle<()> {
    let client = client.clone();
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), 2),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
            (SignalKind::quit(), 3),
            (SignalKind::user_defined1(), 10),
            (SignalKind::user_defined2(), 12),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (kind, number) in kinds {
            let Ok(mut stream) = signal(kind) else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(number).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        while let Some(number) = rx.recv().await {
            let _ = kill(&client, &id, &exec_id, number).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sighup").unwrap(), 1);
        assert_eq!(parse("10").unwrap(), 10);
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
    }
}
