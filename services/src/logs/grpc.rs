//! `berth.logs.v1.Logs`.

use std::{pin::Pin, sync::Arc};

use berth_proto::{
    berth::logs::v1::{LogEntry, ReadRequest, logs_server},
    errdefs::Error,
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Logs, Query, reader::Entry};
use crate::request;

/// The gRPC face of [`Logs`].
pub struct Service {
    logs: Arc<Logs>,
}

impl Service {
    /// Serves `logs`.
    pub fn new(logs: Arc<Logs>) -> Service {
        Service { logs }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A request's time bound; an unset or zero timestamp is no bound.
fn bound(ts: Option<prost_types::Timestamp>, what: &str) -> Result<Option<DateTime<Utc>>, Error> {
    match ts {
        None => Ok(None),
        Some(t) if t.seconds == 0 && t.nanos == 0 => Ok(None),
        Some(t) => u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("{what}: invalid timestamp {t}"))),
    }
}

/// The query a request asks for.
pub fn query(r: &ReadRequest) -> Result<Query, Error> {
    Ok(Query {
        follow: r.follow,
        tail: usize::try_from(r.tail).ok(),
        since: bound(r.since, "since")?,
        until: bound(r.until, "until")?,
    })
}

fn entry(e: Entry) -> LogEntry {
    LogEntry {
        stream: e.stream,
        time: Some(prost_types::Timestamp {
            seconds: e.time.timestamp(),
            nanos: e.time.timestamp_subsec_nanos() as i32,
        }),
        data: e.data,
    }
}

#[tonic::async_trait]
impl logs_server::Logs for Service {
    type ReadStream = BoxStream<LogEntry>;

    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let ns = request::namespace(&req)?;
        let r = req.into_inner();
        let query = query(&r)?;
        let rx = self.logs.read(&ns, &r.container_id, query)?;
        let stream = ReceiverStream::new(rx).map(|r| r.map(entry).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_queries() {
        let q = query(&ReadRequest {
            container_id: "c".into(),
            follow: true,
            tail: -1,
            since: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 5,
            }),
            until: Some(prost_types::Timestamp::default()),
        })
        .unwrap();
        assert!(q.follow);
        assert_eq!(q.tail, None);
        assert_eq!(q.since, DateTime::from_timestamp(10, 5));
        assert_eq!(q.until, None);
        let q = query(&ReadRequest {
            tail: 3,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.tail, Some(3));
        assert!(
            query(&ReadRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -1
                }),
                ..Default::default()
            })
            .is_err()
        );
    }
}
