//! Running filesystem work off the async runtime.

use berth_proto::errdefs::Error;

/// Runs `f` on a blocking thread and returns its result (a panic becomes an Internal error).
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}
