//! A live task: its bundle, its shim connection and the shim's log copy.

use std::{path::PathBuf, sync::Arc};

use berth_proto::errdefs::Error;
use containerd_shim_protos::protobuf::Message;

use super::{bundle::Bundle, client::Connection, log::Copier};

/// One task, as the manager tracks it.
pub struct Task {
    /// The container id (and task id).
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    pub(super) bundle: Bundle,
    pub(super) binary: Option<PathBuf>,
    pub(super) shim: Arc<Connection>,
    pub(super) _log: Option<Copier>,
}

impl Task {
    /// Calls `method` of the shim's task service for this task.
    pub async fn call<Req: Message, Resp: Message>(
        &self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        self.shim.call(&self.namespace, method, req).await
    }
}
