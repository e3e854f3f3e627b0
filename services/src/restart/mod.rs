//! The restart monitor: containers that ask for it keep a running task, and containers that
//! ask to be removed after their task exits are.
//!
//! containerd 1.7 polls every container with `containerd.io/restart.status=running` from a
//! client-side plugin; Berth's monitor lives in the daemon and is driven by events. It
//! follows `/tasks/exit` of init processes (subscribed while the daemon starts, so the exits
//! the runtime manager publishes for shims that died while berthd was down are normally
//! seen), and reconciles every watched container once at start-up (each decision waits
//! until the runtime manager has restored the shims) and then every [`INTERVAL`], which also
//! covers events missed by a lagging subscriber.
//!
//! What a container's labels ask for and what is decided are [`policy`]'s pure functions. The
//! actions ([`act`]) go through the same stores the gRPC services use, so clients see the
//! usual events (`/tasks/create`, `/containers/update`, …):
//!
//! * **restart**: delete the exited task, create one from the container (its snapshot's
//!   mounts; stdio from `containerd.io/restart.loguri` or empty, so that the daemon's log
//!   driver applies), start it, and set `containerd.io/restart.count` one higher;
//! * **remove** (`berth.io/auto-remove=true`): delete the task, the container and its
//!   snapshot.
//!
//! The monitor never fights a client: a task that is being created, created, running or
//! paused is left alone, a container created in the last few seconds without a task is
//! left to its creator, and the errors a concurrent client causes (NotFound,
//! AlreadyExists) end the attempt quietly. One job runs per container at a time, and a
//! crash-looping task is restarted with growing pauses ([`backoff`]).

mod act;
pub mod backoff;
pub mod policy;

use std::{sync::Arc, time::Duration};

use berth_proto::{
    errdefs::Error,
    events::TaskExit,
    filters::Filter,
    labels::{berth, restart},
    types::Envelope,
};
use futures::{Stream, StreamExt as _};
use prost::Message as _;

use crate::{
    containers::Containers, events::Exchange, namespaces::Namespaces, runtime::Manager,
    snapshots::Snapshots, tasks::Tasks,
};
use backoff::{Key, Tracker};

/// How often every watched container is looked at, events or not.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The restart monitor.
pub struct Monitor {
    tasks: Arc<Tasks>,
    runtime: Arc<Manager>,
    containers: Arc<Containers>,
    snapshots: Arc<Snapshots>,
    namespaces: Arc<Namespaces>,
    tracker: Tracker,
}

impl Monitor {
    /// A monitor acting through `tasks` (whose tasks `runtime` runs), `containers` and
    /// `snapshots`, over every namespace of `namespaces`.
    pub fn new(
        tasks: Arc<Tasks>,
        runtime: Arc<Manager>,
        containers: Arc<Containers>,
        snapshots: Arc<Snapshots>,
        namespaces: Arc<Namespaces>,
    ) -> Monitor {
        Monitor {
            tasks,
            runtime,
            containers,
            snapshots,
            namespaces,
            tracker: Tracker::default(),
        }
    }

    /// Subscribes to task exits on `exchange` at once, then follows them and reconciles in
    /// the background.
    pub fn start(self: Arc<Self>, exchange: &Exchange) -> Result<(), Error> {
        let exits = exchange.subscribe(Filter::parse(r#"topic=="/tasks/exit""#)?);
        tokio::spawn(self.clone().follow(exits));
        tokio::spawn(self.reconcile_forever());
        Ok(())
    }

    async fn follow(self: Arc<Self>, exits: impl Stream<Item = Envelope>) {
        let mut exits = std::pin::pin!(exits);
        while let Some(envelope) = exits.next().await {
            let Some(exit) = envelope
                .event
                .as_ref()
                .and_then(|any| TaskExit::decode(any.value.as_slice()).ok())
            else {
                tracing::warn!(namespace = %envelope.namespace, "undecodable /tasks/exit event");
                continue;
            };
            // Exits of exec processes carry their exec id; the init process's is the
            // container's id (or empty).
            if !exit.id.is_empty() && exit.id != exit.container_id {
                continue;
            }
            tracing::debug!(namespace = %envelope.namespace, id = %exit.container_id,
                status = exit.exit_status, "task exited");
            self.clone().settle((envelope.namespace, exit.container_id));
        }
        tracing::warn!("restart monitor: event stream ended");
    }

    async fn reconcile_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.reconcile() {
                tracing::warn!(error = %e, "restart monitor: reconciling");
            }
        }
    }

    /// Settles every container that asks for a running task or for removal.
    fn reconcile(self: &Arc<Self>) -> Result<(), Error> {
        self.tracker.forget_idle();
        let filter = Filter::parse_all(&[
            format!(r#"labels."{}"==running"#, restart::STATUS),
            format!(r#"labels."{}"==true"#, berth::AUTO_REMOVE),
        ])?;
        for (ns, _) in self.namespaces.list()? {
            for c in self.containers.list(&ns, &filter)? {
                self.clone().settle((ns.clone(), c.id));
            }
        }
        Ok(())
    }

    /// Brings container `key` where its labels want it, in the background; if a job is
    /// already on it, that job looks again when done.
    fn settle(self: Arc<Self>, key: Key) {
        if !self.tracker.claim(&key) {
            return;
        }
        tokio::spawn(async move {
            loop {
                self.settle_once(&key).await;
                if !self.tracker.release(&key) {
                    break;
                }
            }
        });
    }
}
