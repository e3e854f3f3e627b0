//! When to collect garbage: containerd's scheduler, simplified.
//!
//! * after a deletion, once `schedule_delay` has passed (deletions close together share one run);
//! * once at start-up, after `startup_delay`;
//! * when the earliest lease expiry passes;
//! * at once, for a caller that waits for the result (synchronous deletes).
//!
//! Collections run one at a time on a blocking thread.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use berth_proto::errdefs::Error;
use tokio::sync::{mpsc, oneshot};

use super::{Collector, Stats};

/// Timing of the scheduler (the `[gc]` table of the config).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Wait after a deletion before collecting.
    pub schedule_delay: Duration,
    /// Wait after start-up before the first collection.
    pub startup_delay: Duration,
}

enum Request {
    Deleted,
    Now(oneshot::Sender<Result<Stats, Error>>),
    ExpiresAt(SystemTime),
}

/// A handle to ask the scheduler for collections; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Request>,
}

impl Scheduler {
    /// Starts the scheduler task for `collector`.
    pub fn start(collector: Arc<Collector>, timing: Timing) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(collector, timing, rx));
        Scheduler { tx }
    }

    /// Notes a deletion: a collection follows after the schedule delay.
    pub fn deleted(&self) {
        let _ = self.tx.send(Request::Deleted);
    }

    /// Notes that something expires at `at`, so a collection runs then.
    pub fn expires_at(&self, at: SystemTime) {
        let _ = self.tx.send(Request::ExpiresAt(at));
    }

    /// Runs a collection now and waits for it.
    pub async fn collect_now(&self) -> Result<Stats, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Now(tx))
            .map_err(|_| Error::internal("garbage collector is not running"))?;
        rx.await
            .map_err(|_| Error::internal("garbage collector stopped"))?
    }
}

async fn collect(collector: &Arc<Collector>) -> Result<Stats, Error> {
    let collector = collector.clone();
    match tokio::task::spawn_blocking(move || collector.collect()).await {
        Ok(result) => result,
        Err(err) => Err(Error::internal(format!(
            "garbage collection panicked: {err}"
        ))),
    }
}

async fn run(collector: Arc<Collector>, timing: Timing, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut due: Option<tokio::time::Instant> =
        Some(tokio::time::Instant::now() + timing.startup_delay);
    let mut expiry: Option<SystemTime> = None;
    loop {
        let wake = earliest(due, expiry);
        let request = match wake {
            Some(at) => tokio::select! {
                r = rx.recv() => r,
                _ = tokio::time::sleep_until(at) => {
                    due = None;
                    expiry = None;
                    after_run(collect(&collector).await, &mut expiry);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match request {
            None => return,
            Some(Request::Deleted) => {
                let at = tokio::time::Instant::now() + timing.schedule_delay;
                due = Some(due.map_or(at, |d| d.min(at)));
            }
            Some(Request::ExpiresAt(at)) => {
                expiry = Some(expiry.map_or(at, |e| e.min(at)));
            }
            Some(Request::Now(reply)) => {
                due = None;
                let result = collect(&collector).await;
                after_run(result.clone(), &mut expiry);
                let _ = reply.send(result);
            }
        }
    }
}

fn after_run(result: Result<Stats, Error>, expiry: &mut Option<SystemTime>) {
    match result {
        Ok(stats) => {
            if let Some(at) = stats.next_expiry {
                *expiry = Some(expiry.map_or(at, |e| e.min(at)));
            }
        }
        Err(err) => tracing::error!(%err, "garbage collection failed"),
    }
}

fn earliest(
    due: Option<tokio::time::Instant>,
    expiry: Option<SystemTime>,
) -> Option<tokio::time::Instant> {
    let expiry = expiry.map(|at| {
        let wait = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + wait
    });
    match (due, expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
