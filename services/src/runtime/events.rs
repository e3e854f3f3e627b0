//! The ttrpc endpoint shims publish to: `containerd.services.events.ttrpc.v1.Events/Forward`
//! on `<grpc socket>.ttrpc` (0600). Forwarded envelopes go into the [`Exchange`] unchanged,
//! so `/tasks/*` events reach gRPC subscribers exactly as the shim wrote them.

use std::{os::unix::fs::PermissionsExt as _, path::Path, sync::Arc};

use berth_proto::{errdefs::Error, types::Envelope};
use containerd_shim_protos::{
    api::ForwardRequest,
    protobuf::well_known_types::empty::Empty,
    shim_async::{Events, create_events},
    ttrpc::{self, r#async::TtrpcContext},
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::events::Exchange;

/// Receives shims' events.
struct Forwarder {
    exchange: Arc<Exchange>,
}

#[async_trait::async_trait]
impl Events for Forwarder {
    async fn forward(&self, _: &TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
        let envelope = req.envelope.into_option().ok_or_else(|| {
            ttrpc::Error::RpcStatus(ttrpc::get_status(
                ttrpc::Code::INVALID_ARGUMENT,
                "forward request carries no envelope",
            ))
        })?;
        let converted = Envelope {
            timestamp: envelope
                .timestamp
                .into_option()
                .map(|t| prost_types::Timestamp {
                    seconds: t.seconds,
                    nanos: t.nanos,
                }),
            namespace: envelope.namespace,
            topic: envelope.topic,
            event: envelope.event.into_option().map(|a| prost_types::Any {
                type_url: a.type_url,
                value: a.value,
            }),
        };
        tracing::debug!(namespace = %converted.namespace, topic = %converted.topic, "shim event");
        self.exchange.forward(converted).map_err(|e| {
            ttrpc::Error::RpcStatus(ttrpc::get_status(
                <ttrpc::Code as containerd_shim_protos::protobuf::Enum>::from_i32(
                    e.kind.code() as i32
                )
                .unwrap_or(ttrpc::Code::UNKNOWN),
                e.message,
            ))
        })?;
        Ok(Empty::new())
    }
}

/// Binds the events socket at `path` (0600), replacing a stale one.
pub fn bind(path: &Path) -> Result<UnixListener, Error> {
    let io = |what: &str, e: std::io::Error| {
        berth_proto::errdefs::io_error(format!("{what} {}", path.display()), e)
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove stale", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| io("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod", e))?;
    Ok(listener)
}

/// Serves the events endpoint on `listener`; it stops when the returned server is dropped.
pub async fn serve(
    listener: UnixListener,
    exchange: Arc<Exchange>,
) -> Result<ttrpc::r#async::Server, Error> {
    let mut server = ttrpc::r#async::Server::new()
        .add_listener(ttrpc::r#async::transport::Listener::new(
            UnixListenerStream::new(listener),
        ))
        .register_service(create_events(Arc::new(Forwarder { exchange })));
    server
        .start()
        .await
        .map_err(|e| Error::internal(format!("serve shim events: {e}")))?;
    Ok(server)
}
