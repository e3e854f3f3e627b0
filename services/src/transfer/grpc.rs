//! `berth.transfer.v1.Transfer`: pulls run as daemon tasks; their progress streams back.

use std::{pin::Pin, sync::Arc};

use berth_proto::berth::transfer::v1::{Progress, PullRequest, PushRequest, transfer_server};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{PullOptions, Transfer};
use crate::request;

/// The gRPC face of [`Transfer`].
pub struct Service {
    transfer: Arc<Transfer>,
}

impl Service {
    /// Serves `transfer`.
    pub fn new(transfer: Arc<Transfer>) -> Service {
        Service { transfer }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl transfer_server::Transfer for Service {
    type PullStream = BoxStream<Progress>;

    async fn pull(&self, req: Request<PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let registry = r.registry.unwrap_or_default();
        let opts = PullOptions {
            reference: r.reference,
            platform: r.platform,
            snapshotter: r.snapshotter,
            skip_unpack: r.skip_unpack,
            plain_http: registry.plain_http,
            credentials: (!registry.username.is_empty())
                .then_some((registry.username, registry.password)),
        };
        let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(64);
        let (out_tx, out_rx) = mpsc::channel::<Result<Progress, Status>>(64);
        let transfer = self.transfer.clone();
        tokio::spawn(async move {
            let forward_tx = out_tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(p) = progress_rx.recv().await {
                    if forward_tx.send(Ok(p)).await.is_err() {
                        break;
                    }
                }
            });
            let result = transfer.pull(&ns, opts, progress_tx).await;
            let _ = forward.await;
            if let Err(err) = result {
                tracing::warn!(%err, "pull failed");
                let _ = out_tx.send(Err(err.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    type PushStream = BoxStream<Progress>;

    async fn push(&self, _req: Request<PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        Err(Status::unimplemented(
            "daemon-side push is not available yet: push with `ctr images push`",
        ))
    }
}
