//! One settling job: observe the container's task, decide, act.

use std::{collections::HashMap, time::Duration};

use berth_proto::{
    errdefs::{Error, Kind},
    labels::restart,
    services::v1::{Container, CreateTaskRequest},
};
use containerd_shim_protos::{api, types::task::Status};

use super::{
    Monitor,
    backoff::Key,
    policy::{Decision, Observed, Wanted, decide},
};
use crate::{blocking, metadata::Timestamp};

/// A container younger than this without a task is left to the client creating it (`ctr run`
/// creates the container, then its task).
const CREATE_GRACE: Duration = Duration::from_secs(5);

/// Whether `e` is what a client acting at the same time causes.
fn raced(e: &Error) -> bool {
    matches!(e.kind, Kind::NotFound | Kind::AlreadyExists)
}

impl Monitor {
    /// Settles container `key` once: after a back-off pause, the container is looked at
    /// again before it is restarted.
    pub(super) async fn settle_once(&self, key: &Key) {
        let (ns, id) = (key.0.as_str(), key.1.as_str());
        let mut paused = false;
        loop {
            let (c, decision) = match self.evaluate(ns, id).await {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(namespace = ns, id, error = %e, "restart monitor: looking at container");
                    return;
                }
            };
            tracing::debug!(namespace = ns, id, ?decision, "restart monitor");
            match decision {
                Decision::Nothing => return,
                Decision::Remove => {
                    if let Err(e) = self.remove(ns, &c).await {
                        tracing::warn!(namespace = ns, id, error = %e, "auto-remove failed");
                    }
                    return;
                }
                Decision::Restart => {
                    let delay = if paused {
                        Duration::ZERO
                    } else {
                        self.tracker.delay(key)
                    };
                    if !delay.is_zero() {
                        tracing::info!(namespace = ns, id, delay = ?delay, "backing off before restarting");
                        tokio::time::sleep(delay).await;
                        paused = true;
                        continue;
                    }
                    self.tracker.restarted(key);
                    match self.restart(ns, &c).await {
                        Ok(Some(pid)) => tracing::info!(namespace = ns, id, pid, "task restarted"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(namespace = ns, id, error = %e, "restart failed"),
                    }
                    return;
                }
            }
        }
    }

    /// The container (None when it is gone or not watched) and what to do about it.
    async fn evaluate(&self, ns: &str, id: &str) -> Result<Option<(Container, Decision)>, Error> {
        let c = match self.containers.get(ns, id) {
            Ok(c) => c,
            Err(e) if e.kind == Kind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let wanted = Wanted::from_labels(id, &c.labels);
        if !wanted.watched() {
            return Ok(None);
        }
        let observed = self.observe(ns, &c).await?;
        Ok(Some((c, decide(&wanted, observed))))
    }

    async fn observe(&self, ns: &str, c: &Container) -> Result<Observed, Error> {
        let task = match self.tasks.task(ns, &c.id).await {
            Ok(task) => task,
            Err(e) if e.kind == Kind::NotFound => {
                let young = c.created_at.as_ref().is_some_and(|t| {
                    Timestamp::now().seconds.saturating_sub(t.seconds)
                        < CREATE_GRACE.as_secs() as i64
                });
                return Ok(if young || self.runtime.exists(ns, &c.id).await {
                    Observed::Live
                } else {
                    Observed::Absent
                });
            }
            Err(e) => return Err(e),
        };
        let state = self.tasks.state(&task, "").await?;
        Ok(if state.status.value() == Status::STOPPED as i32 {
            Observed::Exited(state.exit_status)
        } else {
            Observed::Live
        })
    }

    /// Replaces the exited task of `c` with a started one; returns its pid, or None when a
    /// client got there first.
    async fn restart(&self, ns: &str, c: &Container) -> Result<Option<u32>, Error> {
        match self.tasks.delete(ns, &c.id).await {
            Ok(exit) => {
                tracing::debug!(namespace = ns, id = %c.id, status = exit.status, "exited task deleted")
            }
            Err(e) if e.kind == Kind::NotFound => {}
            Err(e) => return Err(e.context("deleting the exited task")),
        }
        let log_uri = c.labels.get(restart::LOG_URI).cloned().unwrap_or_default();
        let req = CreateTaskRequest {
            container_id: c.id.clone(),
            stdout: log_uri.clone(),
            stderr: log_uri,
            ..Default::default()
        };
        match self.tasks.create(ns, req).await {
            Ok(_) => {}
            Err(e) if raced(&e) => {
                tracing::info!(namespace = ns, id = %c.id, error = %e, "not restarting: a client acted first");
                return Ok(None);
            }
            Err(e) => return Err(e.context("creating the task")),
        }
        let task = self.tasks.task(ns, &c.id).await?;
        let start = api::StartRequest {
            id: c.id.clone(),
            ..Default::default()
        };
        let started: Result<api::StartResponse, Error> = task.call("Start", &start).await;
        let pid = match started {
            Ok(r) => r.pid,
            Err(e) => {
                if let Err(d) = self.tasks.delete(ns, &c.id).await {
                    tracing::warn!(namespace = ns, id = %c.id, error = %d, "deleting the task that failed to start");
                }
                return Err(e.context("starting the task"));
            }
        };
        self.count_restart(ns, c)?;
        Ok(Some(pid))
    }

    /// Sets `containerd.io/restart.count` one higher, through the containers store (which
    /// publishes `/containers/update`).
    fn count_restart(&self, ns: &str, c: &Container) -> Result<(), Error> {
        let count: u32 = c
            .labels
            .get(restart::COUNT)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let change = Container {
            id: c.id.clone(),
            labels: HashMap::from([(restart::COUNT.to_string(), (count + 1).to_string())]),
            ..Default::default()
        };
        match self
            .containers
            .update(ns, change, &[format!("labels.{}", restart::COUNT)])
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::NotFound => Ok(()),
            Err(e) => Err(e.context("counting the restart")),
        }
    }

    /// Removes the exited task of `c`, then `c` and its snapshot, unless a client started a
    /// new task meanwhile.
    async fn remove(&self, ns: &str, c: &Container) -> Result<(), Error> {
        match self.tasks.delete(ns, &c.id).await {
            Ok(_) => {}
            Err(e) if e.kind == Kind::NotFound => {}
            Err(e) => return Err(e.context("deleting the exited task")),
        }
        if self.runtime.exists(ns, &c.id).await {
            tracing::info!(namespace = ns, id = %c.id, "not removing: it has a new task");
            return Ok(());
        }
        match self.containers.delete(ns, &c.id) {
            Ok(()) => {}
            Err(e) if e.kind == Kind::NotFound => return Ok(()),
            Err(e) => return Err(e.context("deleting the container")),
        }
        if !c.snapshot_key.is_empty() {
            let (snapshots, ns2, c2) = (self.snapshots.clone(), ns.to_string(), c.clone());
            let removed =
                blocking::run(move || snapshots.remove(&ns2, &c2.snapshotter, &c2.snapshot_key))
                    .await;
            match removed {
                Ok(()) => {}
                Err(e) if e.kind == Kind::NotFound => {}
                Err(e) => return Err(e.context(format!("removing snapshot {}", c.snapshot_key))),
            }
        }
        tracing::info!(namespace = ns, id = %c.id, "container removed after its task exited");
        Ok(())
    }
}
