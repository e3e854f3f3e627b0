//! `berth.transfer.v1.Transfer`: pulls and pushes run as daemon tasks; their progress streams
//! back, followed by the error if one ends them.

use std::{pin::Pin, sync::Arc};

use berth_proto::berth::transfer::v1::{
    ExportChunk, ExportRequest, ImportRequest, Progress, PullRequest, PushRequest, transfer_server,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{ImportOptions, PullOptions, PushOptions, Transfer};
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
        let transfer = self.transfer.clone();
        Ok(Response::new(run_streamed(move |tx| async move {
            transfer.pull(&ns, opts, tx).await.map(|_| ())
        })))
    }

    type PushStream = BoxStream<Progress>;

    async fn push(&self, req: Request<PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let registry = r.registry.unwrap_or_default();
        let opts = PushOptions {
            image: r.image,
            reference: r.reference,
            platform: r.platform,
            plain_http: registry.plain_http,
            credentials: (!registry.username.is_empty())
                .then_some((registry.username, registry.password)),
        };
        let transfer = self.transfer.clone();
        Ok(Response::new(run_streamed(move |tx| async move {
            transfer.push(&ns, opts, tx).await.map(|_| ())
        })))
    }

    type ImportStream = BoxStream<Progress>;

    async fn import(
        &self,
        req: Request<Streaming<ImportRequest>>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        let ns = request::namespace(&req)?;
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("import stream is empty"))?;
        let opts = Service::import_options(&first);
        let (data_tx, data_rx) = mpsc::channel::<bytes::Bytes>(8);
        tokio::spawn(async move {
            if !first.data.is_empty() && data_tx.send(first.data.into()).await.is_err() {
                return;
            }
            while let Ok(Some(msg)) = inbound.message().await {
                if !msg.data.is_empty() && data_tx.send(msg.data.into()).await.is_err() {
                    return;
                }
            }
        });
        let transfer = self.transfer.clone();
        Ok(Response::new(run_streamed(move |tx| async move {
            transfer.import(&ns, opts, data_rx, tx).await
        })))
    }

    type ExportStream = BoxStream<ExportChunk>;

    async fn export(
        &self,
        req: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let (mut data, mut failed) = self.transfer.export(&ns, r.images, &r.platform)?;
        let stream = async_stream::stream! {
            while let Some(chunk) = data.recv().await {
                yield Ok(ExportChunk { data: chunk.to_vec() });
            }
            if let Ok(err) = failed.try_recv() {
                yield Err(Status::from(err));
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

impl Service {
    fn import_options(first: &ImportRequest) -> ImportOptions {
        let o = first.options.clone().unwrap_or_default();
        ImportOptions {
            format: o.format,
            name: o.name,
            skip_unpack: o.skip_unpack,
            snapshotter: o.snapshotter,
            platform: o.platform,
        }
    }
}

/// Runs a transfer that reports progress, streaming the reports and then its error, if any.
fn run_streamed<F, Fut>(f: F) -> BoxStream<Progress>
where
    F: FnOnce(mpsc::Sender<Progress>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), berth_proto::errdefs::Error>> + Send + 'static,
{
    let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(64);
    let (out_tx, out_rx) = mpsc::channel::<Result<Progress, Status>>(64);
    tokio::spawn(async move {
        let forward_tx = out_tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = progress_rx.recv().await {
                if forward_tx.send(Ok(p)).await.is_err() {
                    break;
                }
            }
        });
        let result = f(progress_tx).await;
        let _ = forward.await;
        if let Err(err) = result {
            tracing::warn!(%err, "transfer failed");
            let _ = out_tx.send(Err(err.into())).await;
        }
    });
    Box::pin(ReceiverStream::new(out_rx))
}
