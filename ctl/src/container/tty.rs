//! The local terminal of `run -t`/`exec -t`/`start --attach`: raw mode (restored on drop, so
//! on every way out) and its window size, sent at start and on every SIGWINCH.

use std::io::IsTerminal as _;

use containerd_client::services::v1::{ResizePtyRequest, tasks_client::TasksClient};
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use tokio::{
    signal::unix::{SignalKind, signal},
    task::JoinHandle,
};

use crate::client::Client;

/// The terminal in raw mode; the original settings come back on drop.
pub struct RawMode {
    original: Termios,
}

impl RawMode {
    /// Puts our stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let original = tcgetattr(&stdin).ok()?;
        let mut raw = original.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.original);
    }
}

/// The window size (columns, rows) of whichever of our stdout or stdin is a terminal.
fn window_size() -> Option<(u32, u32)> {
    let size = tcgetwinsize(std::io::stdout()).or_else(|_| tcgetwinsize(std::io::stdin()));
    size.ok()
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map(|w| (u32::from(w.ws_col), u32::from(w.ws_row)))
}

/// Sends our window size to the process's pty (nothing when we have no terminal).
pub async fn resize(client: &Client, id: &str, exec_id: &str) {
    if let Some((width, height)) = window_size() {
        let _ = TasksClient::new(client.channel.clone())
            .resize_pty(client.request(ResizePtyRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                width,
                height,
            }))
            .await;
    }
}

/// Sends the window size now and after every SIGWINCH, until the handle is aborted.
pub fn follow_resizes(client: &Client, id: &str, exec_id: &str) -> JoinHandle<()> {
    let client = client.clone();
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        let mut winch = signal(SignalKind::window_change()).ok();
        resize(&client, &id, &exec_id).await;
        while let Some(w) = winch.as_mut() {
            if w.recv().await.is_none() {
                break;
            }
            resize(&client, &id, &exec_id).await;
        }
    })
}
