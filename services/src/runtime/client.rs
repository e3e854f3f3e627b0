//! One ttrpc connection to a shim, speaking its task API.
//!
//! containerd 1.6 shims serve `containerd.task.v2.Task`; 2.x shims `containerd.task.v3.Task`.
//! The messages are the same, so requests are built here with the service name the shim chose
//! at start, over rust-protobuf types from `containerd-shim-protos`. Several tasks may share one
//! shim, hence one connection: it is reference counted by its users, and [`Connection::closed`]
//! resolves when the shim goes away (the socket reaches end of file or fails).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use berth_proto::errdefs::{Error, Kind};
use containerd_shim_protos::{
    protobuf::Message,
    ttrpc::{self, proto::RequestInit as _},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::UnixStream,
    sync::watch,
};

/// The ttrpc metadata key carrying the namespace.
const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";

/// Which task service a shim serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `containerd.task.v2.Task` (containerd 1.x shims).
    V2,
    /// `containerd.task.v3.Task` (containerd 2.x shims).
    V3,
}

impl Protocol {
    fn service(self) -> &'static str {
        match self {
            Protocol::V2 => "containerd.task.v2.Task",
            Protocol::V3 => "containerd.task.v3.Task",
        }
    }
}

/// A live connection to one shim.
pub struct Connection {
    client: ttrpc::r#async::Client,
    protocol: Protocol,
    address: String,
    closed: watch::Receiver<bool>,
}

impl Connection {
    /// Connects to the shim at `address` (`unix:///path` or `unix://@abstract`).
    pub async fn connect(address: &str, protocol: Protocol) -> Result<Connection, Error> {
        let stream = dial(address).await.map_err(|e| {
            Error::new(Kind::Unavailable, format!("connect to shim {address}: {e}"))
        })?;
        let (tx, closed) = watch::channel(false);
        let socket = ttrpc::r#async::transport::Socket::new(Watched {
            inner: stream,
            closed: tx,
        });
        Ok(Connection {
            client: ttrpc::r#async::Client::new(socket),
            protocol,
            address: address.to_string(),
            closed,
        })
    }

    /// The shim's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Resolves once the shim has closed the connection (it exited or was killed).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.clone();
        async move {
            // An error means the socket itself was dropped: closed as well.
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Calls `method` of the task service in `namespace`.
    pub async fn call<Req: Message, Resp: Message>(
        &self,
        namespace: &str,
        method: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        let payload = req
            .write_to_bytes()
            .map_err(|e| Error::internal(format!("encode {method} request: {e}")))?;
        let mut request = ttrpc::Request::init_request(
            self.protocol.service().to_string(),
            method.to_string(),
            0,
            vec![{
                let mut kv = ttrpc::proto::KeyValue::new();
                kv.key = NAMESPACE_KEY.to_string();
                kv.value = namespace.to_string();
                kv
            }],
        );
        request.set_payload(payload);
        let response = self.client.request(request).await.map_err(from_ttrpc)?;
        let mut out = Resp::new();
        out.merge_from_bytes(&response.payload)
            .map_err(|e| Error::internal(format!("decode {method} response: {e}")))?;
        Ok(out)
    }
}

/// Whether `err` says the shim connection is gone rather than that the shim refused.
pub fn is_closed(err: &Error) -> bool {
    err.kind == Kind::Unavailable
}

/// Maps a ttrpc failure to containerd's class: status codes are gRPC's numbers; a broken
/// connection is Unavailable.
pub fn from_ttrpc(err: ttrpc::Error) -> Error {
    match err {
        ttrpc::Error::RpcStatus(status) => {
            let code = tonic::Code::from_i32(status.code.value());
            Error::new(Kind::from_code(code), status.message.clone())
        }
        other => Error::new(
            Kind::Unavailable,
            format!("ttrpc: shim connection: {other}"),
        ),
    }
}

async fn dial(address: &str) -> io::Result<UnixStream> {
    let path = address.strip_prefix("unix://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported shim address {address:?}"),
        )
    })?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
        stream.set_nonblocking(true)?;
        return UnixStream::from_std(stream);
    }
    UnixStream::connect(path).await
}

/// A socket that reports, once, when reading reaches end of file or fails.
struct Watched {
    inner: UnixStream,
    closed: watch::Sender<bool>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let eof = matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0;
        if eof || matches!(polled, Poll::Ready(Err(_))) {
            self.closed.send_replace(true);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
