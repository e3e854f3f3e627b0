//! Reading a container's log files: which files there are (oldest first) and their entries,
//! batch by batch, from the last position on, so that a follower can come back for more.
//!
//! `json.log*` files hold one JSON object per line as Berth's shim writes them; a line that
//! does not parse (torn by a crash, cut by a full disk) is skipped. `raw.log` holds raw
//! output; each of its lines is a `stdout` entry stamped with the file's modification time.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use berth_proto::errdefs::{Error, io_error};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{JSON_LOG, RAW_LOG};

/// The longest line kept whole: a longer raw line is cut into entries of this size, a longer
/// JSON line is garbage (the shim's entries are at most a few hundred KiB escaped).
pub const MAX_LINE: usize = 1 << 20;

/// How much is read from a file at a time.
const READ_BUFFER: usize = 64 << 10;

/// One piece of logged output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the shim read it (raw logs: the file's modification time).
    pub time: DateTime<Utc>,
    /// The output, usually one line with its newline.
    pub data: Vec<u8>,
}

/// How a log file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON lines (Berth's shim).
    Json,
    /// Raw output (other shims).
    Raw,
}

impl Format {
    /// The format of the file at `path`, by its name.
    pub fn of(path: &Path) -> Format {
        if path.file_name() == Some(RAW_LOG.as_ref()) {
            Format::Raw
        } else {
            Format::Json
        }
    }
}

/// The log files in `dir`, oldest first: `raw.log`, then `json.log.N` … `json.log.1`, then
/// `json.log`. A missing dir has none.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format!("list {}", dir.display()), e)),
    };
    let mut rotated = Vec::new();
    let (mut raw, mut current) = (false, false);
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == RAW_LOG {
            raw = true;
        } else if name == JSON_LOG {
            current = true;
        } else if let Some(n) = name
            .strip_prefix(JSON_LOG)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse::<u32>().ok())
        {
            rotated.push(n);
        }
    }
    rotated.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<PathBuf> = Vec::new();
    if raw {
        out.push(dir.join(RAW_LOG));
    }
    out.extend(rotated.iter().map(|n| dir.join(format!("{JSON_LOG}.{n}"))));
    if current {
        out.push(dir.join(JSON_LOG));
    }
    Ok(out)
}

/// One JSON line as the shim writes it.
#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
}

/// Parses one JSON line; None when it is garbage.
pub fn parse_json(line: &[u8]) -> Option<Entry> {
    let parsed: JsonLine = serde_json::from_slice(line).ok()?;
    let time = DateTime::parse_from_rfc3339(&parsed.time).ok()?;
    Some(Entry {
        stream: parsed.stream,
        time: time.with_timezone(&Utc),
        data: parsed.log.into_bytes(),
    })
}

/// An open log file and how far it has been read.
pub struct LogFile {
    path: PathBuf,
    format: Format,
    reader: BufReader<tokio::fs::File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

impl LogFile {
    /// Opens the log file at `path` at its start; None when it does not exist.
    pub async fn open(path: &Path) -> Result<Option<LogFile>, Error> {
        let file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("open {}", path.display()), e)),
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| io_error(format!("stat {}", path.display()), e))?;
        Ok(Some(LogFile {
            path: path.to_path_buf(),
            format: Format::of(path),
            reader: BufReader::with_capacity(READ_BUFFER, file),
            inode: inode(&meta),
            offset: 0,
            partial: Vec::new(),
        }))
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The complete entries written since the last call, at most about `max`; empty when
    /// there is nothing more (a line still being written stays for the next call).
    pub async fn read(&mut self, max: usize) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        let stamp = self.stamp().await;
        while out.len() < max {
            let buf = self
                .reader
                .fill_buf()
                .await
                .map_err(|e| io_error(format!("read {}", self.path.display()), e))?;
            if buf.is_empty() {
                break;
            }
            let line_end = buf
                .iter()
                .position(|b| *b == b'\n')
                .map_or(buf.len(), |i| i + 1);
            // What is pending is always shorter than MAX_LINE: it is emitted on reaching it.
            let take = line_end.min(MAX_LINE - self.partial.len());
            self.partial.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            self.offset += take as u64;
            if self.partial.last() == Some(&b'\n') || self.partial.len() >= MAX_LINE {
                out.extend(self.parse(stamp));
                self.partial.clear();
            }
        }
        Ok(out)
    }

    /// The torn last line, once nothing more will be written to the file.
    pub async fn finish(&mut self) -> Option<Entry> {
        if self.partial.is_empty() {
            return None;
        }
        let stamp = self.stamp().await;
        let entry = self.parse(stamp);
        self.partial = Vec::new();
        entry
    }

    /// Whether the path now names a different file (rotated or recreated) or the file was
    /// cut shorter than what has been read (truncated in place).
    pub async fn replaced(&self) -> bool {
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) => inode(&meta) != self.inode || meta.len() < self.offset,
            Err(_) => true,
        }
    }

    /// The time of raw entries: the file's modification time (zero when unknown).
    async fn stamp(&self) -> DateTime<Utc> {
        if self.format == Format::Json {
            return DateTime::<Utc>::UNIX_EPOCH;
        }
        let modified = self
            .reader
            .get_ref()
            .metadata()
            .await
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        DateTime::<Utc>::from(modified)
    }

    fn parse(&self, stamp: DateTime<Utc>) -> Option<Entry> {
        match self.format {
            Format::Json => {
                let entry = parse_json(&self.partial);
                if entry.is_none() {
                    tracing::debug!(path = %self.path.display(), "skipping a garbled log line");
                }
                entry
            }
            Format::Raw => Some(Entry {
                stream: "stdout".to_string(),
                time: stamp,
                data: self.partial.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(stream: &str, log: &str, time: &str) -> String {
        format!(
            "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n",
            serde_json::to_string(log).unwrap()
        )
    }

    #[test]
    fn json_lines_parse_and_garbage_does_not() {
        let e =
            parse_json(line("stderr", "a\n", "2026-11-29T05:00:00.123456789Z").as_bytes()).unwrap();
        assert_eq!(e.stream, "stderr");
        assert_eq!(e.data, b"a\n");
        assert_eq!(e.time.timestamp(), 1_795_928_400);
        assert_eq!(e.time.timestamp_subsec_nanos(), 123_456_789);
        assert!(parse_json(b"{\"log\":\"a\\n\",\"stream\":\"std").is_none());
        assert!(parse_json(line("stdout", "x", "yesterday").as_bytes()).is_none());
    }

    #[test]
    fn files_are_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        assert!(files(&dir.path().join("missing")).unwrap().is_empty());
        for name in [
            "json.log",
            "json.log.1",
            "json.log.10",
            "json.log.2",
            "other",
            "raw.log",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "raw.log",
                "json.log.10",
                "json.log.2",
                "json.log.1",
                "json.log"
            ]
        );
    }

    #[tokio::test]
    async fn reading_resumes_where_it_stopped_and_keeps_torn_lines_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut f = std::fs::File::create(&path).unwrap();
        let t = "2026-01-01T00:00:00.000000001Z";
        write!(
            f,
            "{}{}",
            line("stdout", "one\n", t),
            line("stderr", "two\n", t)
        )
        .unwrap();
        writeln!(f, "not json").unwrap();
        let third = line("stdout", "three\n", t);
        f.write_all(&third.as_bytes()[..10]).unwrap();
        let mut log = LogFile::open(&path).await.unwrap().unwrap();
        let got: Vec<Vec<u8>> = log
            .read(100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(got, [b"one\n".to_vec(), b"two\n".to_vec()]);
        assert!(log.read(100).await.unwrap().is_empty());
        assert!(!log.replaced().await);
        f.write_all(&third.as_bytes()[10..]).unwrap();
        let got = log.read(100).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, b"three\n");
        f.write_all(b"{\"torn").unwrap();
        assert!(log.read(100).await.unwrap().is_empty());
        assert_eq!(log.finish().await, None);

        std::fs::rename(&path, dir.path().join("json.log.1")).unwrap();
        assert!(log.replaced().await);
        std::fs::write(&path, "").unwrap();
        assert!(log.replaced().await);
        assert!(
            LogFile::open(&dir.path().join("nope"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn raw_lines_are_stdout_entries_and_a_torn_one_comes_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.log");
        std::fs::write(&path, "a\nb\nc").unwrap();
        let mut log = LogFile::open(&path).await.unwrap().unwrap();
        let got = log.read(1).await.unwrap();
        assert_eq!(got.len(), 1, "batches stop at the limit");
        let got = log.read(100).await.unwrap();
        assert_eq!(got[0].data, b"b\n");
        assert_eq!(got[0].stream, "stdout");
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(got[0].time, DateTime::<Utc>::from(mtime));
        assert_eq!(log.finish().await.unwrap().data, b"c");
        assert_eq!(log.finish().await, None);
    }

    #[tokio::test]
    async fn overlong_raw_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.log");
        let mut text = vec![b'x'; MAX_LINE + 10];
        text.push(b'\n');
        std::fs::write(&path, &text).unwrap();
        let mut log = LogFile::open(&path).await.unwrap().unwrap();
        let got = log.read(100).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data.len(), MAX_LINE);
        assert_eq!(got[1].data.len(), 11);
    }
}
