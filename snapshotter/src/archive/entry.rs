//! Reading one tar entry: its cleaned path, its type and its metadata (PAX records included).

use std::{borrow::Cow, io::Read};

use berth_proto::errdefs::Error;
use rustix::fs::Timespec;
use tar::EntryType;

use super::{Xattrs, is_overlay_xattr, stream::stream_error};

/// A path inside the root, cleaned: no empty, `.` or `..` components, no leading or trailing
/// `/`. The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(super) struct RelPath(Vec<u8>);

impl RelPath {
    /// Cleans a name from a tar: `..` never climbs above the root and absolute names are
    /// taken relative to it (see the module doc). Names with a NUL byte are rejected.
    pub(super) fn clean(raw: &[u8]) -> Result<RelPath, Error> {
        if raw.contains(&0) {
            return Err(Error::invalid(format!(
                "tar entry name {:?} contains a NUL byte",
                String::from_utf8_lossy(raw)
            )));
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                _ => parts.push(part),
            }
        }
        Ok(RelPath(parts.join(&b'/')))
    }

    /// Whether this is the root itself.
    pub(super) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as bytes, `""` for the root.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The parent path and the last component (the root's parent is the root, its name empty).
    pub(super) fn split(&self) -> (RelPath, &[u8]) {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => (RelPath(self.0[..i].to_vec()), &self.0[i + 1..]),
            None => (RelPath::default(), &self.0),
        }
    }

    /// This path with `name` (one component) appended.
    pub(super) fn join(&self, name: &[u8]) -> RelPath {
        if self.0.is_empty() {
            return RelPath(name.to_vec());
        }
        let mut joined = Vec::with_capacity(self.0.len() + 1 + name.len());
        joined.extend_from_slice(&self.0);
        joined.push(b'/');
        joined.extend_from_slice(name);
        RelPath(joined)
    }

    /// The path as `openat2` wants it: `.` for the root.
    pub(super) fn as_arg(&self) -> &[u8] {
        if self.0.is_empty() { b"." } else { &self.0 }
    }

    /// Number of components (0 for the root).
    pub(super) fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            1 + self.0.iter().filter(|&&b| b == b'/').count()
        }
    }

    /// All proper ancestors, nearest first, ending with the root.
    pub(super) fn ancestors(&self) -> impl Iterator<Item = RelPath> + '_ {
        let cuts = self.0.iter().enumerate().rev().filter(|&(_, &b)| b == b'/');
        cuts.map(|(i, _)| RelPath(self.0[..i].to_vec()))
            .chain((!self.0.is_empty()).then(RelPath::default))
    }

    /// For messages.
    pub(super) fn display(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

/// What an entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file whose data follows the header (GNU sparse files arrive expanded).
    File,
    /// A directory.
    Dir,
    /// A symbolic link with its target, stored verbatim.
    Symlink(Vec<u8>),
    /// A hard link to another path inside the root.
    Hardlink(RelPath),
    /// A character device (major, minor).
    Char(u32, u32),
    /// A block device (major, minor).
    Block(u32, u32),
    /// A named pipe.
    Fifo,
}

/// Ownership, permissions, times and xattrs of an entry.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: Timespec,
    /// `SCHILY.xattr.*` records, minus overlayfs' own namespaces.
    pub(super) xattrs: Xattrs,
}

/// One entry of the layer, ready to apply.
pub(super) struct Parsed {
    pub(super) path: RelPath,
    pub(super) kind: Kind,
    pub(super) meta: Meta,
    /// Bytes of data that follow (for regular files).
    pub(super) size: u64,
    /// A GNU sparse file: its holes arrive as zeros and may become holes again.
    pub(super) sparse: bool,
}

/// Reads the header of `entry`; `None` for entries that carry nothing to apply (PAX global
/// headers).
pub(super) fn parse<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Parsed>, Error> {
    let header = entry.header();
    let entry_type = header.entry_type();
    let raw_path = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw_path).into_owned();
    let invalid = |what: &str| Error::invalid(format!("tar entry {shown:?}: {what}"));
    let corrupt =
        |what: &str, e: std::io::Error| stream_error(format!("tar entry {shown:?}: {what}"), e);

    let link = || -> Result<Vec<u8>, Error> {
        match entry.link_name_bytes() {
            Some(name) if !name.is_empty() => Ok(name.into_owned()),
            _ => Err(invalid("link entry without a target")),
        }
    };
    let device = || -> Result<(u32, u32), Error> {
        let (major, minor) = match header.as_ustar().map(|h| (&h.dev_major, &h.dev_minor)) {
            Some(fields) => fields,
            None => match header.as_gnu() {
                Some(h) => (&h.dev_major, &h.dev_minor),
                None => return Err(invalid("device entry in a pre-POSIX header")),
            },
        };
        let major = number(major, header.device_major().map(|d| d.unwrap_or(0).into()));
        let minor = number(minor, header.device_minor().map(|d| d.unwrap_or(0).into()));
        let major = major.map_err(|e| corrupt("device major", e))?;
        let minor = minor.map_err(|e| corrupt("device minor", e))?;
        let fits = |n: u64| u32::try_from(n).map_err(|_| invalid("device number out of range"));
        Ok((fits(major)?, fits(minor)?))
    };
    let kind = match entry_type {
        EntryType::XGlobalHeader => return Ok(None),
        // Pre-POSIX tars mark directories only by the trailing slash.
        EntryType::Regular if raw_path.ends_with(b"/") => Kind::Dir,
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => Kind::Symlink(link()?),
        EntryType::Link => Kind::Hardlink(RelPath::clean(&link()?)?),
        EntryType::Char => {
            let (major, minor) = device()?;
            Kind::Char(major, minor)
        }
        EntryType::Block => {
            let (major, minor) = device()?;
            Kind::Block(major, minor)
        }
        EntryType::Fifo => Kind::Fifo,
        other => {
            return Err(invalid(&format!(
                "unsupported entry type {:?}",
                char::from(other.as_byte())
            )));
        }
    };
    if let Kind::Symlink(target) = &kind
        && target.contains(&0)
    {
        return Err(invalid("symlink target contains a NUL byte"));
    }

    let old = header.as_old();
    let mode = number(&old.mode, header.mode().map(u64::from)).map_err(|e| corrupt("mode", e))?;
    let mode = (mode & 0o7777) as u32;
    let uid = number(&old.uid, header.uid()).map_err(|e| corrupt("uid", e))?;
    let gid = number(&old.gid, header.gid()).map_err(|e| corrupt("gid", e))?;
    let uid = u32::try_from(uid).map_err(|_| invalid("uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| invalid("gid out of range"))?;
    let header_mtime = number(&old.mtime, header.mtime()).map_err(|e| corrupt("mtime", e))?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(header_mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };

    let mut xattrs = Vec::new();
    if let Some(records) = entry
        .pax_extensions()
        .map_err(|e| corrupt("PAX records", e))?
    {
        for record in records {
            let record = record.map_err(|e| corrupt("PAX record", e))?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if is_overlay_xattr(name) {
                    tracing::debug!(entry = %shown, "dropping overlayfs xattr from layer");
                } else {
                    xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
                }
            } else if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes())
                    .ok_or_else(|| invalid("malformed PAX mtime"))?;
            } else if key.starts_with(b"GNU.sparse.") {
                return Err(invalid("PAX sparse files are not supported"));
            }
        }
    }

    Ok(Some(Parsed {
        path: RelPath::clean(&raw_path)?,
        size: entry.size(),
        sparse: entry_type == EntryType::GNUSparse,
        kind,
        meta: Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        },
    }))
}

/// A numeric header field; like Go's archive/tar, a field left blank (all NUL or spaces) by
/// the writer reads as 0.
fn number(field: &[u8], parsed: std::io::Result<u64>) -> std::io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// Parses a PAX time, `[-]seconds[.fraction]`.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos = (frac.bytes().chain(std::iter::repeat(b'0')))
        .take(9)
        .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'));
    Some(if !negative {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        }
    } else if nanos == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        RelPath::clean(s.as_bytes()).unwrap().display().into_owned()
    }

    #[test]
    fn names_are_confined_to_the_root() {
        assert_eq!(clean("etc/passwd"), "etc/passwd");
        assert_eq!(clean("./etc//passwd/"), "etc/passwd");
        assert_eq!(clean("/etc/evil"), "etc/evil");
        assert_eq!(clean("../../etc/evil"), "etc/evil");
        assert_eq!(clean("a/../../b/./c/.."), "b");
        assert_eq!(clean("./"), "");
        assert!(RelPath::clean(b"a\0b").is_err());
    }

    #[test]
    fn paths_split_and_walk_up() {
        let p = RelPath::clean(b"a/b/c").unwrap();
        let (parent, name) = p.split();
        assert_eq!((parent.as_bytes(), name), (&b"a/b"[..], &b"c"[..]));
        let up: Vec<_> = p.ancestors().map(|a| a.display().into_owned()).collect();
        assert_eq!(up, ["a/b", "a", ""]);
        assert_eq!(p.depth(), 3);
        assert_eq!(RelPath::default().ancestors().count(), 0);
        assert_eq!(RelPath::default().join(b"x").join(b"y").as_bytes(), b"x/y");
    }

    #[test]
    fn pax_times_parse() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
        let t = parse_pax_time(b"42").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (42, 0));
        assert!(parse_pax_time(b"x1").is_none());
        assert!(parse_pax_time(b"").is_none());
    }
}
