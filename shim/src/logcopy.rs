//! Copying a process's output into its [`JsonLog`]: one task per stream reads the pipe (or
//! the terminal) and cuts what it reads into entries.
//!
//! Each complete line is an entry. A partial line waits for the rest while more output is
//! pending, and becomes an entry of its own once a read comes back short (the pipe had
//! nothing more) or it reaches [`MAX_ENTRY`] bytes. Reads are [`READ_SIZE`] bytes, so an idle
//! copy holds a few KiB.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::task::JoinSet;

use crate::jsonlog::{JsonLog, Stream};

/// How much one read takes from the pipe.
pub const READ_SIZE: usize = 4096;
/// The longest entry: a partial line this long is written without waiting for its end.
pub const MAX_ENTRY: usize = 16 * 1024;

/// A log shared by the copies of one process's streams.
pub type SharedLog = Arc<Mutex<JsonLog>>;

/// The log copies of one process, drained when it exits.
#[derive(Clone, Default)]
pub struct LogCopies(Arc<Mutex<JoinSet<()>>>);

impl LogCopies {
    fn set(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts copying `from` into `log` as `stream`, and into `also` when given.
    pub fn spawn<R>(&self, from: R, stream: Stream, log: SharedLog, also: Option<pipe::Sender>)
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        self.set().spawn(copy(from, stream, log, also));
    }

    /// Waits until every copy has reached the end of its stream. Dropping this future
    /// before then (a drain timeout) aborts the copies.
    pub async fn finish(&self) {
        let mut set = std::mem::take(&mut *self.set());
        while set.join_next().await.is_some() {}
    }

    /// Stops the copies at once.
    pub fn abort(&self) {
        self.set().abort_all();
    }
}

/// Copies `from` into `log` until the end of the stream; every read also goes, as it came,
/// to `also` (a foreground client's FIFO), which is closed at the end. When that FIFO fails,
/// the log goes on alone.
pub async fn copy<R>(mut from: R, stream: Stream, log: SharedLog, mut also: Option<pipe::Sender>)
where
    R: AsyncRead + Unpin,
{
    let mut chunk = vec![0u8; READ_SIZE];
    let mut cutter = Cutter::default();
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            // A terminal reports its hang-up as EIO.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = stream.name(), error = %e, "reading output for the log");
                break;
            }
        };
        let now = SystemTime::now();
        {
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            cutter.feed(&chunk[..n], n < chunk.len(), |entry| {
                log.write(stream, entry, now)
            });
        }
        if let Some(fifo) = also.as_mut()
            && let Err(e) = fifo.write_all(&chunk[..n]).await
        {
            tracing::warn!(stream = stream.name(), error = %e, "copying output to the client");
            also = None;
        }
    }
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    cutter.flush(|entry| log.write(stream, entry, SystemTime::now()));
}

/// Cuts a byte stream into log entries: lines, and partial lines that have waited enough.
#[derive(Default)]
pub struct Cutter {
    pending: Vec<u8>,
}

impl Cutter {
    /// Takes one read's `data`; `drained` says nothing more was waiting in the pipe. Calls
    /// `emit` with each finished entry.
    pub fn feed(&mut self, data: &[u8], drained: bool, mut emit: impl FnMut(&[u8])) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(i + 1);
            if self.pending.is_empty() {
                emit(line);
            } else {
                self.pending.extend_from_slice(line);
                emit(&self.pending);
                self.pending.clear();
            }
            rest = after;
        }
        self.pending.extend_from_slice(rest);
        if drained || self.pending.len() >= MAX_ENTRY {
            self.flush(emit);
        }
    }

    /// Emits what is pending as an entry of its own.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
        if self.pending.capacity() > READ_SIZE {
            self.pending = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonlog::LogConfig;

    fn cut(reads: &[(&[u8], bool)]) -> Vec<String> {
        let mut out = Vec::new();
        let mut cutter = Cutter::default();
        for (data, drained) in reads {
            cutter.feed(data, *drained, |e| {
                out.push(String::from_utf8_lossy(e).into_owned())
            });
        }
        cutter.flush(|e| out.push(String::from_utf8_lossy(e).into_owned()));
        out
    }

    #[test]
    fn lines_are_entries_and_partial_lines_wait_while_output_is_pending() {
        assert_eq!(cut(&[(b"a\nb\n", true)]), ["a\n", "b\n"]);
        assert_eq!(
            cut(&[(b"a\nhal", false), (b"f\n", true)]),
            ["a\n", "half\n"]
        );
        assert_eq!(
            cut(&[(b"prompt> ", true), (b"x\n", true)]),
            ["prompt> ", "x\n"]
        );
        assert_eq!(cut(&[(b"no newline at end", false)]), ["no newline at end"]);
        assert_eq!(cut(&[(b"\n\n", true)]), ["\n", "\n"]);
    }

    #[test]
    fn long_partial_lines_are_cut_at_the_entry_limit() {
        let block = vec![b'x'; READ_SIZE];
        let reads: Vec<(&[u8], bool)> = (0..5).map(|_| (block.as_slice(), false)).collect();
        let out = cut(&reads);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_ENTRY);
        assert_eq!(out[1].len(), READ_SIZE);
    }

    #[tokio::test]
    async fn both_streams_of_a_pipe_pair_end_up_in_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let log = Arc::new(Mutex::new(
            JsonLog::open(LogConfig {
                path: path.clone(),
                max_size: 0,
                max_file: 1,
            })
            .unwrap(),
        ));
        let copies = LogCopies::default();
        let (out_r, mut out_w) = tokio::io::duplex(64);
        let (err_r, mut err_w) = tokio::io::duplex(64);
        copies.spawn(out_r, Stream::Stdout, log.clone(), None);
        copies.spawn(err_r, Stream::Stderr, log, None);
        use tokio::io::AsyncWriteExt;
        out_w.write_all(b"out\n").await.unwrap();
        tokio::task::yield_now().await;
        err_w.write_all(b"err").await.unwrap();
        drop((out_w, err_w));
        copies.finish().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let entries: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["stream"].to_string(), v["log"].to_string())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("\"stdout\"".into(), "\"out\\n\"".into()),
                ("\"stderr\"".into(), "\"err\"".into())
            ]
        );
    }
}
