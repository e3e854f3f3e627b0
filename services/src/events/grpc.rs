//! `containerd.services.events.v1.Events` over the [`Exchange`](super::Exchange).

use std::{pin::Pin, sync::Arc};

use berth_proto::{
    errdefs::Error,
    filters::Filter,
    server::events::v1::events_server::Events,
    services::v1::{ForwardRequest, PublishRequest, SubscribeRequest},
    types::Envelope,
};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{Exchange, validate_topic};
use crate::{metadata::Timestamp, request};

/// The gRPC face of the exchange.
pub struct Service {
    exchange: Arc<Exchange>,
}

impl Service {
    /// Serves `exchange`.
    pub fn new(exchange: Arc<Exchange>) -> Service {
        Service { exchange }
    }
}

#[tonic::async_trait]
impl Events for Service {
    async fn publish(&self, req: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let namespace = request::namespace(&req)?;
        let req = req.into_inner();
        validate_topic(&req.topic)?;
        let event = req
            .event
            .ok_or_else(|| Error::invalid("publish request must carry an event"))?;
        self.exchange.forward(Envelope {
            timestamp: Some(Timestamp::now().to_proto()),
            namespace,
            topic: req.topic,
            event: Some(event),
        })?;
        Ok(Response::new(()))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let envelope = req
            .into_inner()
            .envelope
            .ok_or_else(|| Error::invalid("forward request must carry an envelope"))?;
        self.exchange.forward(envelope)?;
        Ok(Response::new(()))
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<Envelope, Status>> + Send>>;

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let stream = self.exchange.subscribe(filter).map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }
}
