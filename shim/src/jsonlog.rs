//! Docker's `json-file` log format, written by the shim: one JSON object per line,
//! `{"log":"<text>","stream":"stdout"|"stderr","time":"<RFC 3339, nanoseconds, UTC>"}`,
//! in a file that is rotated by size.
//!
//! A container's stdout and stderr share one [`JsonLog`] (behind a mutex), so entries keep
//! the order in which the shim read them and rotation sees every byte. When the file would
//! grow past `max_size`, `path` becomes `path.1`, `path.1` becomes `path.2` and so on up to
//! `path.<max_file - 1>` (older files are overwritten) and a fresh `path` is opened.
//!
//! A failed write (a full disk) is logged and its entry dropped: the container must never
//! block on its log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// Which of a process's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The name the log format uses.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Where a json-file log goes and how it rotates, as the stdout URI's query names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The current log file.
    pub path: PathBuf,
    /// Rotate before the file would exceed this many bytes; 0 never rotates.
    pub max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    pub max_file: u32,
}

/// An open json-file log.
pub struct JsonLog {
    config: LogConfig,
    file: Option<File>,
    size: u64,
    entry: Vec<u8>,
    failing: bool,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::io(format!("open log {}", path.display()), e))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl JsonLog {
    /// Opens (or creates) the log file for appending.
    pub fn open(config: LogConfig) -> Result<JsonLog> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        }
        let file = open_append(&config.path)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", config.path.display()), e))?
            .len();
        Ok(JsonLog {
            config,
            file: Some(file),
            size,
            entry: Vec::new(),
            failing: false,
        })
    }

    /// Appends one entry for `text` read from `stream` at `at`; a failure is logged and the
    /// entry dropped.
    pub fn write(&mut self, stream: Stream, text: &[u8], at: SystemTime) {
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        format_entry(&mut entry, stream, text, at);
        match self.append(&entry) {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(path = %self.config.path.display(), "log writes work again");
            }
            Ok(()) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "dropping log output until writes work again");
            }
            Err(_) => {}
        }
        // One long line must not pin a large buffer for the container's lifetime.
        if entry.capacity() > 4096 {
            entry = Vec::new();
        }
        self.entry = entry;
    }

    fn append(&mut self, entry: &[u8]) -> Result<()> {
        let len = entry.len() as u64;
        if self.config.max_size > 0 && self.size > 0 && self.size + len > self.config.max_size {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.file = Some(open_append(&self.config.path)?);
            self.size = 0;
        }
        let path = &self.config.path;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Runtime(format!("log {} is not open", path.display())))?;
        let written = file.write_all(entry);
        // Even a partial write moved the end of the file.
        self.size = file.metadata().map(|m| m.len()).unwrap_or(self.size + len);
        written.map_err(|e| Error::io(format!("write log {}", path.display()), e))
    }

    /// Shifts the rotated files by one and starts a fresh current file.
    fn rotate(&mut self) -> Result<()> {
        self.file = None;
        let path = &self.config.path;
        if self.config.max_file <= 1 {
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(|e| Error::io(format!("truncate log {}", path.display()), e))?;
            drop(file);
        } else {
            for n in (1..self.config.max_file - 1).rev() {
                match std::fs::rename(rotated(path, n), rotated(path, n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(format!("rotate log {}.{n}", path.display()), e));
                    }
                    _ => {}
                }
            }
            std::fs::rename(path, rotated(path, 1))
                .map_err(|e| Error::io(format!("rotate log {}", path.display()), e))?;
        }
        self.file = Some(open_append(path)?);
        self.size = 0;
        Ok(())
    }
}

/// Appends the JSON line for one entry (with its trailing newline) to `out`. Text that is not
/// UTF-8 is logged with replacement characters, as Docker does.
pub fn format_entry(out: &mut Vec<u8>, stream: Stream, text: &[u8], at: SystemTime) {
    out.extend_from_slice(b"{\"log\":");
    let text = String::from_utf8_lossy(text);
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(rfc3339_nanos(at).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// `at` in UTC as RFC 3339 with nine fractional digits: `2026-11-29T05:00:00.123456789Z`.
pub fn rfc3339_nanos(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in 400-year eras of
/// 146097 days that start on March 1st (so the leap day ends a year).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn times_are_rfc3339_utc_with_nanoseconds() {
        assert_eq!(rfc3339_nanos(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(at(1_951_016_400, 123_456_789)),
            "2031-10-29T05:00:00.123456789Z"
        );
        // A leap day and the day after it.
        assert_eq!(
            rfc3339_nanos(at(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339_nanos(at(951_868_799, 0)),
            "2000-02-29T23:59:59.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(at(951_868_800, 0)),
            "2000-03-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(at(1_798_761_599, 0)),
            "2026-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn entries_are_escaped_json_lines() {
        let mut out = Vec::new();
        format_entry(&mut out, Stream::Stderr, b"a \"q\"\t\\ \x01\n", at(0, 1));
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"log\":\"a \\\"q\\\"\\t\\\\ \\u0001\\n\",\"stream\":\"stderr\",\
             \"time\":\"1970-01-01T00:00:00.000000001Z\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["log"], "a \"q\"\t\\ \x01\n");
        out.clear();
        format_entry(&mut out, Stream::Stdout, b"bad \xff utf8", at(0, 0));
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["log"], "bad \u{fffd} utf8");
        assert_eq!(parsed["stream"], "stdout");
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["log"].as_str().unwrap().trim_end().to_string()
            })
            .collect()
    }

    #[test]
    fn rotation_keeps_max_file_files_newest_in_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/json.log");
        let one = {
            let mut v = Vec::new();
            format_entry(&mut v, Stream::Stdout, b"line 00\n", at(0, 0));
            v.len() as u64
        };
        let config = LogConfig {
            path: path.clone(),
            max_size: 2 * one,
            max_file: 3,
        };
        let mut log = JsonLog::open(config.clone()).unwrap();
        for i in 0..9 {
            log.write(
                Stream::Stdout,
                format!("line {i:02}\n").as_bytes(),
                at(0, 0),
            );
        }
        assert_eq!(lines(&path), ["line 08"]);
        assert_eq!(lines(&rotated(&path, 1)), ["line 06", "line 07"]);
        assert_eq!(lines(&rotated(&path, 2)), ["line 04", "line 05"]);
        assert!(!rotated(&path, 3).exists());
        drop(log);
        // Reopening continues the current file and counts its size.
        let mut log = JsonLog::open(config).unwrap();
        log.write(Stream::Stderr, b"line 09\n", at(0, 0));
        log.write(Stream::Stderr, b"line 10\n", at(0, 0));
        assert_eq!(lines(&path), ["line 10"]);
        assert_eq!(lines(&rotated(&path, 1)), ["line 08", "line 09"]);
    }

    #[test]
    fn one_file_is_truncated_and_zero_size_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut log = JsonLog::open(LogConfig {
            path: path.clone(),
            max_size: 100,
            max_file: 1,
        })
        .unwrap();
        for i in 0..5 {
            log.write(Stream::Stdout, format!("{i}\n").as_bytes(), at(0, 0));
        }
        assert_eq!(lines(&path), ["4"]);
        assert!(!rotated(&path, 1).exists());
        let path = dir.path().join("big.log");
        let mut log = JsonLog::open(LogConfig {
            path: path.clone(),
            max_size: 0,
            max_file: 3,
        })
        .unwrap();
        for i in 0..50 {
            log.write(Stream::Stdout, format!("{i}\n").as_bytes(), at(0, 0));
        }
        assert_eq!(lines(&path).len(), 50);
    }
}
