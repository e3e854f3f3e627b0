//! Where a process's stdio goes, as containerd names it.
//!
//! containerd passes one string per stream: empty (nothing: `/dev/null`), a FIFO path,
//! `file:///path` (stdout and stderr are appended to that file) or `binary:///path?k=v`
//! (a logging binary receives stdout and stderr as fds 3 and 4 and closes fd 5 when it is
//! ready). [`Destination::parse`] reads those forms; [`crate::pipes`] wires them up.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// What one stdout URI of a create or exec request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Nothing: the stream goes to `/dev/null`.
    Null,
    /// A FIFO the client reads (stdout, stderr) or writes (stdin).
    Fifo(PathBuf),
    /// A file both stdout and stderr are appended to.
    File(PathBuf),
    /// A logging binary and its arguments.
    Binary {
        /// The binary.
        path: PathBuf,
        /// Its arguments: each query key, then its value if it has one.
        args: Vec<String>,
    },
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
            "file" => Ok(Destination::File(path)),
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
        assert!(Destination::parse("file:///bad%zz").is_err());
    }
}
