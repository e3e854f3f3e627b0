//! `containerd.services.content.v1.Content`: validate, convert, call [`Content`], map errors.
//!
//! `Write` and `Read` move their bytes on a blocking thread fed through a small channel, so
//! receiving the next message overlaps with hashing and writing the last one.

use std::{collections::HashMap, io::Read as _, pin::Pin, sync::Arc};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
    filters::Filter,
    server::content::v1::content_server,
    services::v1::{
        AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
        ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
        ReadContentResponse, Status as IngestStatusProto, StatusRequest, StatusResponse,
        UpdateRequest, UpdateResponse, WriteAction, WriteContentRequest, WriteContentResponse,
    },
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Content, LabelUpdate, store::IngestStatus};
use crate::{
    blocking::run as blocking,
    metadata::{ContentRecord, Timestamp},
    request::{self, Scope},
};

/// Bytes per `Read` response, as containerd sends them.
const READ_CHUNK: usize = 1 << 20;
/// Infos per `List` response, as containerd batches them.
const LIST_BATCH: usize = 100;

/// The gRPC face of [`Content`].
pub struct Service {
    content: Arc<Content>,
}

impl Service {
    /// Serves `content`.
    pub fn new(content: Arc<Content>) -> Service {
        Service { content }
    }
}

fn info_to_proto(digest: String, r: ContentRecord) -> Info {
    Info {
        digest,
        size: r.size,
        created_at: Some(r.created_at.to_proto()),
        updated_at: Some(r.updated_at.to_proto()),
        labels: r.labels,
    }
}

fn status_to_proto(s: IngestStatus) -> IngestStatusProto {
    IngestStatusProto {
        started_at: Some(Timestamp::from(s.started_at).to_proto()),
        updated_at: Some(Timestamp::from(s.updated_at).to_proto()),
        r#ref: s.reference,
        offset: s.offset,
        total: s.total,
        expected: s.expected.map(|d| d.to_string()).unwrap_or_default(),
    }
}

fn digest(s: &str) -> Result<Digest, Error> {
    Digest::parse(s).map_err(|e| Error::invalid(format!("{s:?} failed validation: {}", e.message)))
}

fn optional_digest(s: &str) -> Result<Option<Digest>, Error> {
    if s.is_empty() {
        Ok(None)
    } else {
        digest(s).map(Some)
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl content_server::Content for Service {
    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let ns = request::namespace(&req)?;
        let d = digest(&req.into_inner().digest)?;
        let record = self.content.info(&ns, &d)?;
        Ok(Response::new(InfoResponse {
            info: Some(info_to_proto(d.to_string(), record)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        let info = req
            .info
            .ok_or_else(|| Error::invalid("update request must carry info"))?;
        let d = digest(&info.digest)?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut keys = Vec::new();
        let mut replace = paths.is_empty();
        for path in &paths {
            if path == "labels" {
                replace = true;
            } else if let Some(key) = path.strip_prefix("labels.") {
                keys.push((
                    key.to_string(),
                    info.labels.get(key).cloned().unwrap_or_default(),
                ));
            } else {
                return Err(Error::invalid(format!(
                    "cannot update {path:?} field on content info {d:?}: invalid argument"
                ))
                .into());
            }
        }
        let change = if replace {
            LabelUpdate::ReplaceAll(info.labels)
        } else {
            LabelUpdate::Keys(keys)
        };
        let record = self.content.update(&ns, &d, change)?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_to_proto(d.to_string(), record)),
        }))
    }

    type ListStream = BoxStream<ListContentResponse>;

    async fn list(
        &self,
        req: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let infos: Vec<Info> = self
            .content
            .list(&ns, &filter)?
            .into_iter()
            .map(|(d, r)| info_to_proto(d, r))
            .collect();
        let batches: Vec<Result<ListContentResponse, Status>> = infos
            .chunks(LIST_BATCH)
            .map(|c| Ok(ListContentResponse { info: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn delete(&self, req: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let d = digest(&req.into_inner().digest)?;
        self.content.delete(&ns, &d)?;
        Ok(Response::new(()))
    }

    type ReadStream = BoxStream<ReadContentResponse>;

    async fn read(
        &self,
        req: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        let d = digest(&req.digest)?;
        let content = self.content.clone();
        let (mut file, size) = blocking(move || content.reader(&ns, &d)).await?;
        let offset = req.offset.max(0);
        if offset > size {
            return Err(Status::out_of_range(format!(
                "read past object length {size} bytes"
            )));
        }
        let length = if req.size <= 0 || offset + req.size > size {
            size - offset
        } else {
            req.size
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::{Seek, SeekFrom};
            if let Err(e) = file.seek(SeekFrom::Start(offset as u64)) {
                let _ = tx.blocking_send(Err(Status::internal(format!("seek: {e}"))));
                return;
            }
            let mut left = length;
            let mut at = offset;
            while left > 0 {
                let mut buf = vec![0u8; READ_CHUNK.min(left as usize)];
                match file.read(&mut buf) {
                    Ok(0) => {
                        let _ =
                            tx.blocking_send(Err(Status::data_loss("blob shorter than recorded")));
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        let msg = ReadContentResponse {
                            offset: at,
                            data: buf,
                        };
                        if tx.blocking_send(Ok(msg)).is_err() {
                            return;
                        }
                        at += n as i64;
                        left -= n as i64;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!("read: {e}"))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let ns = request::namespace(&req)?;
        let reference = req.into_inner().r#ref;
        let status = self
            .content
            .status(&ns, &reference)
            .map_err(|e| e.context(format!("could not get status for ref {reference:?}")))?;
        Ok(Response::new(StatusResponse {
            status: Some(status_to_proto(status)),
        }))
    }

    async fn list_statuses(
        &self,
        req: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let statuses = self
            .content
            .list_statuses(&ns, &filter)?
            .into_iter()
            .map(status_to_proto)
            .collect();
        Ok(Response::new(ListStatusesResponse { statuses }))
    }

    type WriteStream = BoxStream<WriteContentResponse>;

    async fn write(
        &self,
        req: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let scope = Scope::of(&req)?;
        let mut inbound = req.into_inner();
        let (req_tx, req_rx) = mpsc::channel::<WriteContentRequest>(4);
        let (resp_tx, resp_rx) = mpsc::channel(4);
        let content = self.content.clone();
        let errors = resp_tx.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(msg)) => {
                        if req_tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "content write stream ended");
                        let _ = errors.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        tokio::task::spawn_blocking(move || {
            let mut session = WriteSession {
                content,
                scope,
                rx: req_rx,
                tx: resp_tx.clone(),
            };
            if let Err(err) = session.run() {
                if err.kind != Kind::AlreadyExists {
                    tracing::warn!(%err, "content write failed");
                }
                let _ = resp_tx.blocking_send(Err(err.into()));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(resp_rx))))
    }

    async fn abort(&self, req: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let scope = Scope::of(&req)?;
        let reference = req.into_inner().r#ref;
        let content = self.content.clone();
        blocking(move || content.abort(&scope, &reference)).await?;
        Ok(Response::new(()))
    }
}

/// One `Write` stream, run on a blocking thread (containerd's state machine).
struct WriteSession {
    content: Arc<Content>,
    scope: Scope,
    rx: mpsc::Receiver<WriteContentRequest>,
    tx: mpsc::Sender<Result<WriteContentResponse, Status>>,
}

impl WriteSession {
    fn run(&mut self) -> Result<(), Error> {
        let Some(mut req) = self.rx.blocking_recv() else {
            return Ok(());
        };
        let reference = req.r#ref.clone();
        if reference.is_empty() {
            return Err(Error::invalid("first message must have a reference"));
        }
        let mut total = req.total;
        let mut expected = optional_digest(&req.expected)?;
        let mut writer = self
            .content
            .writer(&self.scope, &reference, total, expected.clone())?;
        loop {
            let action = WriteAction::try_from(req.action)
                .map_err(|_| Error::invalid(format!("unknown write action {}", req.action)))?;
            let status = writer.status();
            let mut msg = WriteContentResponse {
                action: req.action,
                offset: status.offset,
                ..Default::default()
            };
            if let Some(e) = optional_digest(&req.expected)? {
                if self.content.info(&self.scope.namespace, &e).is_ok() {
                    drop(writer);
                    if let Err(err) = self.content.abort(&self.scope, &reference)
                        && err.kind != Kind::NotFound
                    {
                        tracing::warn!(%err, "aborting superseded ingest");
                    }
                    return Err(Error::already_exists(format!(
                        "blob with expected digest {e} exists"
                    )));
                }
                expected = Some(e);
            }
            if req.total > 0 {
                total = req.total;
                writer.set_total(total);
            }
            match action {
                WriteAction::Stat => {
                    msg.digest = writer.digest().to_string();
                    msg.started_at = Some(Timestamp::from(status.started_at).to_proto());
                    msg.updated_at = Some(Timestamp::from(status.updated_at).to_proto());
                    msg.total = total;
                }
                WriteAction::Write | WriteAction::Commit => {
                    if req.offset > 0 && req.offset != status.offset {
                        return Err(Error::new(
                            Kind::OutOfRange,
                            format!(
                                "write @{} must occur at current offset {}",
                                req.offset, status.offset
                            ),
                        ));
                    }
                    if req.offset == 0 && status.offset > 0 {
                        writer.truncate(0)?;
                        msg.offset = 0;
                    }
                    if !req.data.is_empty() {
                        let n = writer.write(&req.data)?;
                        if n != req.data.len() {
                            return Err(Error::new(
                                Kind::DataLoss,
                                format!("wrote {n} of {} bytes", req.data.len()),
                            ));
                        }
                        msg.offset += n as i64;
                    }
                    if action == WriteAction::Commit {
                        let labels: HashMap<String, String> = std::mem::take(&mut req.labels);
                        writer.commit(total, expected.as_ref(), labels)?;
                    }
                    msg.digest = writer.digest().to_string();
                }
            }
            if self.tx.blocking_send(Ok(msg)).is_err() {
                return Ok(());
            }
            if action == WriteAction::Commit {
                return Ok(());
            }
            match self.rx.blocking_recv() {
                Some(next) => req = next,
                None => return Ok(()),
            }
        }
    }
}
