//! The task service: containerd's `Task` API over the containers this shim serves.
//!
//! [`Service`] holds the containers by id (one shim can serve a whole pod); the `Task`
//! implementation in [`task`] validates, finds the container or process and calls
//! [`Container`]. Methods not overridden answer Unimplemented, like the generated default.

mod task;

use std::collections::HashMap;
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
    containers: Mutex<HashMap<String, Arc<Container>>>,
    shutdown: Arc<Notify>,
    trimmer: Trimmer,
}

impl Service {
    /// A service for `namespace` that publishes through `publisher`, signals `shutdown`
    /// once asked to exit with no containers left, and trims its memory through `trimmer`
    /// after each burst of requests.
    pub fn new(
        namespace: &str,
        publisher: Publisher,
        shutdown: Arc<Notify>,
        trimmer: Trimmer,
    ) -> Service {
        Service {
            namespace: namespace.to_string(),
            publisher,
            containers: Mutex::new(HashMap::new()),
            shutdown,
            trimmer,
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
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
