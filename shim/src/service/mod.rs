//! The task service: containerd's `Task` API over the containers this shim serves.
//!
//! [`Service`] holds the containers by id (one shim can serve a whole pod); the `Task`
//! implementation in [`task`] validates, finds the container or process and calls
//! [`Container`]. Methods not overridden answer Unimplemented, like the generated default.

mod task;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::events::Publisher;
use crate::memory::Trimmer;

/// The containers of this shim and what they share.
pub struct Service {
    namespace: String,
    publisher: Publisher,
    /// Shared with work that outlives its request (see [`to_completion`]).
    containers: Arc<Mutex<HashMap<String, Arc<Container>>>>,
    shutdown: Arc<Notify>,
    /// The socket file this shim listens on, withdrawn as soon as it agrees to shut down.
    socket: PathBuf,
    trimmer: Trimmer,
}

impl Service {
    /// A service for `namespace` that publishes through `publisher`, signals `shutdown`
    /// once asked to exit with no containers left (removing `socket` first), and trims its
    /// memory through `trimmer` after each burst of requests.
    pub fn new(
        namespace: &str,
        publisher: Publisher,
        shutdown: Arc<Notify>,
        socket: PathBuf,
        trimmer: Trimmer,
    ) -> Service {
        Service {
            namespace: namespace.to_string(),
            publisher,
            containers: Arc::new(Mutex::new(HashMap::new())),
            shutdown,
            socket,
            trimmer,
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        lock(&self.containers)
    }

    /// The container `id`; every request but Create starts here, so this is also where
    /// activity is recorded for the trimmer.
    fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.trimmer.touch();
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound("container not created".into()))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `work` on a task of its own and waits for it.
///
/// ttrpc drops a request's handler when the client's connection closes, as when berthd dies
/// in the middle of a `Create` or `Start`. Work that drives runc must not stop half way: runc
/// would go on to create a container this shim never registered (berthd, reconnecting, finds
/// a shim that does not know its task, and a runc container nobody owns), or start one the
/// shim still reports as created. On its own task it finishes whatever happens to the
/// request.
async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
) -> crate::error::Result<T> {
    tokio::spawn(work).await.map_err(|e| {
        crate::error::Error::Runtime(format!("task operation did not complete: {e}"))
    })?
}
