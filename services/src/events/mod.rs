//! The event exchange: every change berthd makes is published here under containerd's topic
//! names (`/namespaces/create`, `/content/delete`, …) and fanned out to subscribers.
//!
//! Publishing never blocks: subscribers read from a bounded broadcast channel, and one that
//! falls too far behind loses the oldest events (logged) rather than slowing the daemon.

pub mod grpc;

use std::sync::Arc;

use berth_proto::{
    errdefs::Error,
    filters::{Adaptor, Filter},
    types::Envelope,
};
use futures::Stream;
use tokio::sync::broadcast;

use crate::{identifiers, metadata::Timestamp};

/// How many events a slow subscriber may lag behind before it loses some.
const BACKLOG: usize = 4096;

/// The in-process event bus.
pub struct Exchange {
    tx: broadcast::Sender<Arc<Envelope>>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange::new()
    }
}

impl Exchange {
    /// An exchange with no subscribers.
    pub fn new() -> Exchange {
        let (tx, _) = broadcast::channel(BACKLOG);
        Exchange { tx }
    }

    /// Publishes `event` under `topic` in `namespace`, stamped now.
    pub fn publish<T: prost::Message + prost::Name>(
        &self,
        namespace: &str,
        topic: &str,
        event: &T,
    ) {
        tracing::debug!(namespace, topic, "event");
        let envelope = Envelope {
            timestamp: Some(Timestamp::now().to_proto()),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(berth_proto::to_any(event)),
        };
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(Arc::new(envelope));
    }

    /// Forwards an envelope made elsewhere (a shim, a client) after validating it.
    pub fn forward(&self, envelope: Envelope) -> Result<(), Error> {
        identifiers::validate(&envelope.namespace).map_err(|e| e.context("envelope namespace"))?;
        validate_topic(&envelope.topic)?;
        if envelope.event.is_none() {
            return Err(Error::invalid("envelope must carry an event"));
        }
        let _ = self.tx.send(Arc::new(envelope));
        Ok(())
    }

    /// The events matching `filter`, from now on.
    pub fn subscribe(&self, filter: Filter) -> impl Stream<Item = Envelope> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async_stream::stream! {
            loop {
                match rx.recv().await {
                    Ok(envelope) => {
                        if filter.matches(&EnvelopeFields(&envelope)) {
                            yield (*envelope).clone();
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    }
}

/// containerd's topic rules: `/` then one or more identifier components joined by `/`.
pub fn validate_topic(topic: &str) -> Result<(), Error> {
    if topic.is_empty() {
        return Err(Error::invalid("must not be empty"));
    }
    let Some(rest) = topic.strip_prefix('/') else {
        return Err(Error::invalid(format!(
            "topic {topic:?} must start with '/'"
        )));
    };
    if rest.is_empty() {
        return Err(Error::invalid(format!(
            "topic {topic:?} must have at least one component"
        )));
    }
    for component in rest.split('/') {
        identifiers::validate(component)
            .map_err(|e| e.context(format!("failed validation on component {component:?}")))?;
    }
    Ok(())
}

/// Filter fields of an envelope: `namespace`, `topic`.
struct EnvelopeFields<'a>(&'a Envelope);

impl Adaptor for EnvelopeFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("namespace") if path.len() == 1 => Some(self.0.namespace.clone()),
            Some("topic") if path.len() == 1 => Some(self.0.topic.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::events::NamespaceCreate;
    use futures::StreamExt;

    #[test]
    fn topics_follow_containerd_rules() {
        validate_topic("/namespaces/create").unwrap();
        for bad in ["", "x", "/", "/a//b", "/a/b c"] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn subscribers_see_matching_events_only() {
        let exchange = Exchange::new();
        let filter = Filter::parse(r#"topic=="/namespaces/create""#).unwrap();
        let mut events = Box::pin(exchange.subscribe(filter));
        exchange.publish("a", "/namespaces/delete", &NamespaceCreate::default());
        exchange.publish(
            "b",
            "/namespaces/create",
            &NamespaceCreate {
                name: "b".into(),
                ..Default::default()
            },
        );
        let got = events.next().await.unwrap();
        assert_eq!(got.namespace, "b");
        assert_eq!(
            got.event.unwrap().type_url,
            "containerd.events.NamespaceCreate"
        );
    }
}
