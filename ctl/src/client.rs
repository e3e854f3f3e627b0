//! The connection to berthd and the namespace every request carries.

use anyhow::Context as _;
use containerd_client::tonic::{Request, transport::Channel};

/// A connected client (cheap to clone: the channel is shared).
#[derive(Clone)]
pub struct Client {
    /// The gRPC channel to berthd.
    pub channel: Channel,
    namespace: String,
}

impl Client {
    /// Connects to berthd at `address` (a socket path, `unix://` optional).
    pub async fn connect(address: &str, namespace: &str) -> anyhow::Result<Client> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        if std::os::unix::net::UnixStream::connect(path).is_err() {
            anyhow::bail!(
                "cannot reach berthd at {path}: is it running? (start it with `berthd` or `systemctl start berthd`)"
            );
        }
        let channel = containerd_client::connect(path)
            .await
            .with_context(|| format!("connecting to berthd at {path}"))?;
        Ok(Client {
            channel,
            namespace: namespace.to_string(),
        })
    }

    /// The namespace every request carries.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Wraps `msg` in a request for the client's namespace.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        req
    }
}
