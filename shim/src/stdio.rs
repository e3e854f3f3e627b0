//! Where a process's stdio goes, as containerd names it.
//!
//! containerd passes one string per stream: empty (nothing: `/dev/null`), a FIFO path,
//! `file:///path` (stdout and stderr are appended to that file) or `binary:///path?k=v`
//! (a logging binary receives stdout and stderr as fds 3 and 4 and closes fd 5 when it is
//! ready). [`Destination::parse`] reads those forms; [`crate::pipes`] wires them up.
//!
//! Berth adds one form, which berthd sends for containers using its `json-file` log driver:
//! `file:///path?format=json-file&max-size=N&max-file=M`. The shim then writes both streams
//! (or the terminal) to `path` as JSON lines, rotating it when it would exceed `N` bytes and
//! keeping `M` files ([`crate::jsonlog`]). Without `max-size` the file never rotates; without
//! `max-file` one file is kept. With `stdout-fifo=P` (and `stderr-fifo=Q`), the output is also
//! copied to those FIFOs, for a client that follows the container in the foreground.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::jsonlog::LogConfig;

/// What one stdout URI of a create or exec request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Nothing: the stream goes to `/dev/null`.
    Null,
    /// A FIFO the client reads (stdout, stderr) or writes (stdin).
    Fifo(PathBuf),
    /// A file both stdout and stderr are appended to.
    File(PathBuf),
    /// A json-file log both stdout and stderr are written to, and the FIFOs their output is
    /// also copied to.
    JsonLog(LogConfig, Tee),
    /// A logging binary and its arguments.
    Binary {
        /// The binary.
        path: PathBuf,
        /// Its arguments: each query key, then its value if it has one.
        args: Vec<String>,
    },
}

/// FIFOs a json-file log's streams are also copied to (a foreground client reads them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tee {
    /// Where stdout also goes.
    pub stdout: Option<PathBuf>,
    /// Where stderr also goes.
    pub stderr: Option<PathBuf>,
}

impl Destination {
    /// Parses a stdio string the way containerd's Go shim does: no scheme means a FIFO.
    pub fn parse(uri: &str) -> Result<Destination> {
        if uri.is_empty() {
            return Ok(Destination::Null);
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Ok(Destination::Fifo(PathBuf::from(uri)));
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let path = PathBuf::from(percent_decode(path)?);
        match scheme {
            "fifo" => Ok(Destination::Fifo(path)),
            "file" => file_destination(path, query),
            "binary" => {
                let mut args = Vec::new();
                for pair in query
                    .unwrap_or_default()
                    .split('&')
                    .filter(|p| !p.is_empty())
                {
                    let (k, v) = match pair.split_once('=') {
                        Some((k, v)) => (k, Some(v)),
                        None => (pair, None),
                    };
                    args.push(percent_decode(k)?);
                    if let Some(v) = v {
                        args.push(percent_decode(v)?);
                    }
                }
                Ok(Destination::Binary { path, args })
            }
            other => Err(Error::InvalidArgument(format!(
                "unsupported STDIO scheme {other}: {uri}"
            ))),
        }
    }
}

/// `file://` with `format=json-file` in its query is a json-file log; any other query is
/// ignored, as the Go shim ignores it.
fn file_destination(path: PathBuf, query: Option<&str>) -> Result<Destination> {
    let mut json = false;
    let mut tee = Tee::default();
    let mut config = LogConfig {
        path,
        max_size: 0,
        max_file: 1,
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |what: &str| {
            value.parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!("log file {what} {value:?} is not a number"))
            })
        };
        match key {
            "format" => json = value == "json-file",
            "max-size" => config.max_size = number("max-size")?,
            "max-file" => {
                config.max_file = u32::try_from(number("max-file")?.max(1)).unwrap_or(u32::MAX)
            }
            "stdout-fifo" => tee.stdout = Some(PathBuf::from(percent_decode(value)?)),
            "stderr-fifo" => tee.stderr = Some(PathBuf::from(percent_decode(value)?)),
            _ => {}
        }
    }
    Ok(if json {
        Destination::JsonLog(config, tee)
    } else {
        Destination::File(config.path)
    })
}

/// Decodes `%XX` escapes and `+` (query form) in a URI component.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::InvalidArgument(format!("bad escape in {s}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::InvalidArgument(format!("bad UTF-8 in {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_fifos_and_empty_is_null() {
        assert_eq!(Destination::parse("").unwrap(), Destination::Null);
        assert_eq!(
            Destination::parse("/run/ctr/t1-stdout").unwrap(),
            Destination::Fifo("/run/ctr/t1-stdout".into())
        );
        assert_eq!(
            Destination::parse("fifo:///run/x").unwrap(),
            Destination::Fifo("/run/x".into())
        );
    }

    #[test]
    fn file_and_binary_uris() {
        assert_eq!(
            Destination::parse("file:///var/log/c%201.log").unwrap(),
            Destination::File("/var/log/c 1.log".into())
        );
        assert_eq!(
            Destination::parse("binary:///usr/bin/logger?id=abc&debug").unwrap(),
            Destination::Binary {
                path: "/usr/bin/logger".into(),
                args: vec!["id".into(), "abc".into(), "debug".into()],
            }
        );
        assert!(Destination::parse("http://x/y").is_err());
        assert_eq!(
            Destination::parse("file:///l/json.log?format=json-file&max-size=200&max-file=3")
                .unwrap(),
            Destination::JsonLog(
                LogConfig {
                    path: "/l/json.log".into(),
                    max_size: 200,
                    max_file: 3,
                },
                Tee::default()
            )
        );
        assert_eq!(
            Destination::parse("file:///l/json.log?format=json-file").unwrap(),
            Destination::JsonLog(
                LogConfig {
                    path: "/l/json.log".into(),
                    max_size: 0,
                    max_file: 1,
                },
                Tee::default()
            )
        );
        assert_eq!(
            Destination::parse(
                "file:///l/json.log?format=json-file&stdout-fifo=%2Frun%2Fa%20b&stderr-fifo=/run/e"
            )
            .unwrap(),
            Destination::JsonLog(
                LogConfig {
                    path: "/l/json.log".into(),
                    max_size: 0,
                    max_file: 1,
                },
                Tee {
                    stdout: Some("/run/a b".into()),
                    stderr: Some("/run/e".into()),
                }
            )
        );
        assert_eq!(
            Destination::parse("file:///l/raw.log?other=1").unwrap(),
            Destination::File("/l/raw.log".into())
        );
        assert!(Destination::parse("file:///l/j?format=json-file&max-size=big").is_err());
        assert!(Destination::parse("file:///bad%zz").is_err());
    }
}
