//! Streaming a container's log: everything already written (filtered, tailed), then, when
//! following, what is appended, until the container stops.
//!
//! Following polls the current file every [`POLL`]. When the shim rotates it (the path
//! names a new file, or the file was truncated in place), the old file is read to its end
//! before the new one is opened. The stream ends once the container has no running task and
//! the file is drained (both shims finish writing a process's output before they report it
//! stopped), once `until` has passed, or as soon as the client goes away.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use berth_proto::errdefs::Error;
use chrono::{DateTime, Utc};
use containerd_shim_protos::{
    api::{StateRequest, StateResponse},
    types::task::Status,
};
use tokio::sync::mpsc;

use super::{
    JSON_LOG, RAW_LOG,
    reader::{self, Entry, LogFile},
};
use crate::runtime::Manager;

/// How often a follower looks for new output.
pub const POLL: Duration = Duration::from_millis(100);
/// How many idle polls pass between asking whether the container still runs.
const POLLS_PER_CHECK: u32 = 5;
/// Entries read from a file at a time.
const BATCH: usize = 256;

/// What part of a log to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Keep sending new output until the container stops.
    pub follow: bool,
    /// Only the last this many entries of what is already written.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
}

impl Query {
    fn wants(&self, e: &Entry) -> bool {
        self.since.is_none_or(|s| e.time >= s) && self.until.is_none_or(|u| e.time < u)
    }
}

/// Whether a container still has a running task; the follower's signal to stop.
#[async_trait::async_trait]
pub trait Liveness: Send + Sync + 'static {
    /// Whether container `id` of `ns` has a task that has not stopped.
    async fn running(&self, ns: &str, id: &str) -> bool;
}

#[async_trait::async_trait]
impl Liveness for Manager {
    async fn running(&self, ns: &str, id: &str) -> bool {
        let Ok(task) = self.get(ns, id).await else {
            return false;
        };
        let req = StateRequest {
            id: id.to_string(),
            ..Default::default()
        };
        let state: Result<StateResponse, Error> = task.call("State", &req).await;
        match state {
            Ok(s) => s.status.value() != Status::STOPPED as i32,
            Err(e) => {
                tracing::debug!(namespace = ns, id, error = %e, "task state for a log follower");
                false
            }
        }
    }
}

/// One container's log, to be streamed.
pub struct Source {
    /// Its log directory.
    pub dir: PathBuf,
    /// Its namespace.
    pub namespace: String,
    /// Its id.
    pub id: String,
    /// Whether it still runs.
    pub liveness: Arc<dyn Liveness>,
}

/// Where entries go: the tail buffer while reading what is written, then the client.
struct Out<'a> {
    query: Query,
    tail: Option<VecDeque<Entry>>,
    tx: &'a mpsc::Sender<Result<Entry, Error>>,
}

/// The client went away.
struct Gone;

impl Out<'_> {
    async fn push(&mut self, e: Entry) -> Result<(), Gone> {
        if !self.query.wants(&e) {
            return Ok(());
        }
        match (&mut self.tail, self.query.tail) {
            (Some(buf), Some(n)) => {
                if n > 0 {
                    if buf.len() == n {
                        buf.pop_front();
                    }
                    buf.push_back(e);
                }
                Ok(())
            }
            _ => self.tx.send(Ok(e)).await.map_err(|_| Gone),
        }
    }

    async fn push_all(&mut self, entries: Vec<Entry>) -> Result<(), Gone> {
        for e in entries {
            self.push(e).await?;
        }
        Ok(())
    }

    /// Sends the tail kept so far; from now on entries go straight to the client.
    async fn flush_tail(&mut self) -> Result<(), Gone> {
        for e in self.tail.take().unwrap_or_default() {
            self.tx.send(Ok(e)).await.map_err(|_| Gone)?;
        }
        Ok(())
    }
}

/// Whether `path` is a file the shim writes to (not one rotated away).
fn is_live(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == JSON_LOG || n == RAW_LOG)
}

/// Reads `file` to its current end into `out`; whether anything was read.
async fn drain(file: &mut LogFile, out: &mut Out<'_>) -> Result<Result<bool, Gone>, Error> {
    let mut any = false;
    loop {
        let batch = file.read(BATCH).await?;
        if batch.is_empty() {
            return Ok(Ok(any));
        }
        any = true;
        if out.push_all(batch).await.is_err() {
            return Ok(Err(Gone));
        }
    }
}

/// Reads `file` to its end for good, torn last line included.
async fn finish(mut file: LogFile, out: &mut Out<'_>) -> Result<Result<(), Gone>, Error> {
    if drain(&mut file, out).await?.is_err() {
        return Ok(Err(Gone));
    }
    match file.finish().await {
        Some(e) => Ok(out.push(e).await),
        None => Ok(Ok(())),
    }
}

impl Source {
    /// Sends the log to `tx` as `query` asks; returns when done or when `tx` is closed.
    pub async fn send(
        &self,
        query: Query,
        tx: &mpsc::Sender<Result<Entry, Error>>,
    ) -> Result<(), Error> {
        let follow = query.follow;
        let mut out = Out {
            tail: query.tail.map(|n| VecDeque::with_capacity(n.min(1024))),
            query,
            tx,
        };
        let mut files = reader::files(&self.dir)?;
        let last = files.pop();
        for path in files {
            if let Some(file) = LogFile::open(&path).await?
                && finish(file, &mut out).await?.is_err()
            {
                return Ok(());
            }
        }
        let mut current = match &last {
            Some(path) => LogFile::open(path).await?,
            None => None,
        };
        if let Some(file) = current.as_mut()
            && drain(file, &mut out).await?.is_err()
        {
            return Ok(());
        }
        if !follow {
            if let Some(file) = current
                && finish(file, &mut out).await?.is_err()
            {
                return Ok(());
            }
            let _ = out.flush_tail().await;
            return Ok(());
        }
        if out.flush_tail().await.is_err() {
            return Ok(());
        }
        let _ = self.follow(current, &mut out).await?;
        Ok(())
    }

    /// Opens the file the shim writes now, if there is one yet.
    async fn open_current(&self) -> Result<Option<LogFile>, Error> {
        for name in [JSON_LOG, RAW_LOG] {
            if let Some(file) = LogFile::open(&self.dir.join(name)).await? {
                return Ok(Some(file));
            }
        }
        Ok(None)
    }

    /// Reads what is new in `current` (and whatever replaces it) until the container stops.
    async fn follow(
        &self,
        mut current: Option<LogFile>,
        out: &mut Out<'_>,
    ) -> Result<Result<(), Gone>, Error> {
        let mut idle = 0u32;
        let mut stopping = false;
        loop {
            let mut progressed = false;
            if let Some(file) = current.as_mut() {
                match drain(file, out).await? {
                    Ok(any) => progressed = any,
                    Err(Gone) => return Ok(Err(Gone)),
                }
            }
            let rotated = match &current {
                Some(file) => !is_live(file.path()) || file.replaced().await,
                None => true,
            };
            if rotated {
                let next = self.open_current().await?;
                // Between the shim's rename and its open there is no current file yet.
                let between = current.is_some() && next.is_none();
                if !between {
                    if let Some(old) = current.take()
                        && finish(old, out).await?.is_err()
                    {
                        return Ok(Err(Gone));
                    }
                    progressed |= next.is_some();
                    current = next;
                }
            }
            if progressed {
                idle = 0;
                continue;
            }
            if stopping {
                if let Some(file) = current {
                    return finish(file, out).await;
                }
                return Ok(Ok(()));
            }
            if out.query.until.is_some_and(|u| Utc::now() >= u) {
                stopping = true;
                continue;
            }
            if idle.is_multiple_of(POLLS_PER_CHECK)
                && !self.liveness.running(&self.namespace, &self.id).await
            {
                // Everything the task wrote is on disk now: one more pass reads it.
                stopping = true;
                continue;
            }
            idle += 1;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = out.tx.closed() => return Ok(Err(Gone)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Switch(AtomicBool);

    #[async_trait::async_trait]
    impl Liveness for Switch {
        async fn running(&self, _: &str, _: &str) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn line(text: &str, secs: i64) -> String {
        format!(
            "{{\"log\":\"{text}\\n\",\"stream\":\"stdout\",\"time\":\"{}\"}}\n",
            at(secs).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        )
    }

    fn append(path: &std::path::Path, lines: &[(&str, i64)]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for (text, secs) in lines {
            f.write_all(line(text, *secs).as_bytes()).unwrap();
        }
    }

    fn source(dir: &std::path::Path, running: bool) -> (Source, Arc<Switch>) {
        let switch = Arc::new(Switch(AtomicBool::new(running)));
        let source = Source {
            dir: dir.to_path_buf(),
            namespace: "default".into(),
            id: "c".into(),
            liveness: switch.clone(),
        };
        (source, switch)
    }

    async fn collect(source: &Source, query: Query) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(8);
        let send = async move { source.send(query, &tx).await };
        let (sent, got) = tokio::join!(send, async {
            let mut out = Vec::new();
            while let Some(e) = rx.recv().await {
                out.push(
                    String::from_utf8(e.unwrap().data)
                        .unwrap()
                        .trim_end()
                        .to_string(),
                );
                if out.len() > 100 {
                    break;
                }
            }
            out
        });
        sent.unwrap();
        got
    }

    fn rotated_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("json.log.2"), &[("a", 1), ("b", 2)]);
        append(&dir.path().join("json.log.1"), &[("c", 3), ("d", 4)]);
        let current = dir.path().join("json.log");
        append(&current, &[("e", 5), ("f", 6)]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(current)
            .unwrap();
        f.write_all(b"{\"log\":\"torn").unwrap();
        dir
    }

    #[tokio::test]
    async fn rotated_files_read_oldest_first_with_tail_since_and_until() {
        let dir = rotated_dir();
        let (src, _) = source(dir.path(), false);
        let all = collect(&src, Query::default()).await;
        assert_eq!(all, ["a", "b", "c", "d", "e", "f"]);
        let tail = Query {
            tail: Some(3),
            ..Default::default()
        };
        assert_eq!(collect(&src, tail).await, ["d", "e", "f"]);
        let none = Query {
            tail: Some(0),
            ..Default::default()
        };
        assert!(collect(&src, none).await.is_empty());
        let window = Query {
            since: Some(at(2)),
            until: Some(at(5)),
            ..Default::default()
        };
        assert_eq!(collect(&src, window).await, ["b", "c", "d"]);
        let since_tail = Query {
            since: Some(at(2)),
            tail: Some(10),
            ..Default::default()
        };
        assert_eq!(collect(&src, since_tail).await, ["b", "c", "d", "e", "f"]);
    }

    #[tokio::test]
    async fn a_container_that_never_ran_has_an_empty_log_even_when_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (src, _) = source(&dir.path().join("never"), false);
        assert!(collect(&src, Query::default()).await.is_empty());
        let follow = Query {
            follow: true,
            ..Default::default()
        };
        assert!(collect(&src, follow).await.is_empty());
    }

    #[tokio::test]
    async fn following_reads_appends_across_rotations_until_the_task_stops() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("json.log");
        append(&current, &[("old", 1)]);
        let (src, switch) = source(dir.path(), true);
        let query = Query {
            follow: true,
            tail: Some(1),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::channel(8);
        let reader = tokio::spawn(async move { src.send(query, &tx).await });
        let mut next = async || {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("an entry in time");
            e.map(|e| String::from_utf8(e.unwrap().data).unwrap())
        };
        assert_eq!(next().await.as_deref(), Some("old\n"));
        append(&current, &[("new", 2)]);
        assert_eq!(next().await.as_deref(), Some("new\n"));
        // The shim writes one more line, rotates, and goes on in a fresh file.
        append(&current, &[("last in old file", 3)]);
        std::fs::rename(&current, dir.path().join("json.log.1")).unwrap();
        append(&current, &[("first in new file", 4)]);
        assert_eq!(next().await.as_deref(), Some("last in old file\n"));
        assert_eq!(next().await.as_deref(), Some("first in new file\n"));
        // Written just before the task stopped: still delivered, then the stream ends.
        append(&current, &[("bye", 5)]);
        switch.0.store(false, Ordering::SeqCst);
        assert_eq!(next().await.as_deref(), Some("bye\n"));
        assert_eq!(next().await, None);
        reader.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_follower_stops_when_its_client_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("json.log"), &[("x", 1)]);
        let (src, _) = source(dir.path(), true);
        let query = Query {
            follow: true,
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::channel(8);
        let reader = tokio::spawn(async move { src.send(query, &tx).await });
        assert!(rx.recv().await.is_some());
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .expect("follower ended")
            .unwrap()
            .unwrap();
    }
}
