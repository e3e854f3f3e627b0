//! Events for the daemon: `containerd.services.events.ttrpc.v1.Events/Forward` on
//! `TTRPC_ADDRESS`.
//!
//! [`Publisher::publish`] only queues; one task connects when it has something to send,
//! reconnects after failures and gives up on an event after a few tries, so task
//! operations never wait for the daemon and a daemon restart costs no container.

use std::time::Duration;

use containerd_shim::util::timestamp;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::{Client, EventsClient};
use containerd_shim_protos::ttrpc::context;
use tokio::sync::mpsc;

/// Events waiting for the daemon before new ones are dropped.
const QUEUE: usize = 128;
/// Attempts per event.
const TRIES: u32 = 4;
/// Deadline of one Forward call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Queues events for the daemon.
#[derive(Clone)]
pub struct Publisher {
    namespace: String,
    tx: mpsc::Sender<Envelope>,
}

/// An event payload: any generated containerd event message.
pub type Event = Box<dyn MessageDyn>;

/// Wraps `event` in an Any whose type URL is the plain message name, like containerd.
pub fn to_any(event: &dyn MessageDyn) -> Any {
    let mut any = Any::new();
    any.type_url = event.descriptor_dyn().full_name().to_string();
    any.value = event.write_to_bytes_dyn().unwrap_or_default();
    any
}

impl Publisher {
    /// Starts the forwarding task for the daemon at `address` (a path or `unix://` URL).
    pub fn start(address: &str, namespace: &str) -> Publisher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let address = if address.starts_with("unix://") {
            address.to_string()
        } else {
            format!("unix://{address}")
        };
        tokio::spawn(forward(address, rx));
        Publisher {
            namespace: namespace.to_string(),
            tx,
        }
    }

    /// Queues `event` under `topic`; never waits.
    pub fn publish(&self, topic: &str, event: &dyn MessageDyn) {
        let mut envelope = Envelope::new();
        envelope.timestamp = timestamp().ok().into();
        envelope.namespace = self.namespace.clone();
        envelope.topic = topic.to_string();
        envelope.event = Some(to_any(event)).into();
        if self.tx.try_send(envelope).is_err() {
            tracing::warn!(topic, "event queue full, event dropped");
        }
    }
}

async fn forward(address: String, mut rx: mpsc::Receiver<Envelope>) {
    let mut client: Option<EventsClient> = None;
    while let Some(envelope) = rx.recv().await {
        let mut req = ForwardRequest::new();
        req.envelope = Some(envelope).into();
        for attempt in 0..TRIES {
            if client.is_none() {
                client = Client::connect(&address).await.ok().map(EventsClient::new);
            }
            if let Some(c) = &client {
                let ctx = context::with_duration(CALL_TIMEOUT);
                match c.forward(ctx, &req).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "forward event");
                        client = None;
                    }
                }
            }
            if attempt + 1 < TRIES {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            } else {
                tracing::warn!(topic = %req.envelope.topic, "daemon unreachable, event dropped");
            }
        }
    }
}
