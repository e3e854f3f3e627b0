//! Writing tar entries: ustar headers, with PAX records for whatever does not fit.

use std::{
    borrow::Cow,
    io::{self, Read, Write},
};

use berth_proto::errdefs::{Error, Kind, io_error};
use tar::{EntryType, Header};

use super::{Applied, Xattrs, stream::HashingWriter};

/// A PAX record: key and value.
type PaxRecord<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Largest value of an 8-byte octal field (uid, gid, device numbers).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;
/// Length of the ustar name and linkname fields.
const NAME_LEN: usize = 100;
const BLOCK: usize = 512;

/// The type of an entry we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TarKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// One entry to write. `path` is relative, without a leading `/`; directories end in `/`.
#[derive(Debug, Clone)]
pub(super) struct TarEntry {
    pub(super) path: Vec<u8>,
    pub(super) kind: TarKind,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Seconds since the epoch (sub-second precision is not kept, for reproducible diffs).
    pub(super) mtime: i64,
    /// Data bytes; only regular files have any.
    pub(super) size: u64,
    /// Symlink target or hard link target path.
    pub(super) link: Vec<u8>,
    pub(super) device: (u32, u32),
    /// Sorted by name.
    pub(super) xattrs: Xattrs,
}

impl TarEntry {
    /// A whiteout (or opaque marker) entry: an empty regular file, mode 0, owned by root,
    /// mtime 0, so diffs stay reproducible.
    pub(super) fn marker(path: Vec<u8>) -> TarEntry {
        TarEntry {
            path,
            kind: TarKind::File,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: Vec::new(),
            device: (0, 0),
            xattrs: Vec::new(),
        }
    }
}

/// Writes a tar stream, hashing it on the way.
pub(super) struct TarWriter<W: Write> {
    out: HashingWriter<W>,
}

impl<W: Write> TarWriter<W> {
    /// A writer emitting to `out`.
    pub(super) fn new(out: W) -> Self {
        TarWriter {
            out: HashingWriter::new(out),
        }
    }

    /// Writes `entry`, then exactly `entry.size` bytes of `data` (regular files only).
    pub(super) fn append(
        &mut self,
        entry: &TarEntry,
        data: Option<&mut dyn Read>,
    ) -> Result<(), Error> {
        let shown = String::from_utf8_lossy(&entry.path).into_owned();
        let mut records: Vec<PaxRecord<'_>> = Vec::new();
        let mut record = |key: &'static str, value: Vec<u8>| {
            records.push((Cow::Borrowed(key.as_bytes()), Cow::Owned(value)));
        };
        if entry.path.len() > NAME_LEN {
            record("path", entry.path.clone());
        }
        if entry.link.len() > NAME_LEN {
            record("linkpath", entry.link.clone());
        }
        if entry.size > MAX_OCTAL_12 {
            record("size", entry.size.to_string().into_bytes());
        }
        if u64::from(entry.uid) > MAX_OCTAL_8 {
            record("uid", entry.uid.to_string().into_bytes());
        }
        if u64::from(entry.gid) > MAX_OCTAL_8 {
            record("gid", entry.gid.to_string().into_bytes());
        }
        let mtime_fits = u64::try_from(entry.mtime).is_ok_and(|t| t <= MAX_OCTAL_12);
        if !mtime_fits {
            record("mtime", entry.mtime.to_string().into_bytes());
        }
        for (name, value) in &entry.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            records.push((Cow::Owned(key), Cow::Borrowed(value)));
        }
        if !records.is_empty() {
            self.write_pax(&entry.path, &records)?;
        }

        let mut header = Header::new_ustar();
        set_name(&mut header, &entry.path, false);
        set_name(&mut header, &entry.link, true);
        header.set_mode(entry.mode & 0o7777);
        header.set_uid(if u64::from(entry.uid) > MAX_OCTAL_8 {
            0
        } else {
            entry.uid.into()
        });
        header.set_gid(if u64::from(entry.gid) > MAX_OCTAL_8 {
            0
        } else {
            entry.gid.into()
        });
        header.set_size(if entry.size > MAX_OCTAL_12 {
            0
        } else {
            entry.size
        });
        header.set_mtime(if mtime_fits {
            entry.mtime.unsigned_abs()
        } else {
            0
        });
        header.set_entry_type(match entry.kind {
            TarKind::File => EntryType::Regular,
            TarKind::Dir => EntryType::Directory,
            TarKind::Symlink => EntryType::Symlink,
            TarKind::Hardlink => EntryType::Link,
            TarKind::Char => EntryType::Char,
            TarKind::Block => EntryType::Block,
            TarKind::Fifo => EntryType::Fifo,
        });
        if matches!(entry.kind, TarKind::Char | TarKind::Block) {
            let (major, minor) = entry.device;
            if u64::from(major.max(minor)) > MAX_OCTAL_8 {
                return Err(Error::invalid(format!(
                    "device numbers of {shown:?} do not fit a tar header"
                )));
            }
            let fail = |e| io_error(format!("writing header of {shown:?}"), e);
            header.set_device_major(major).map_err(fail)?;
            header.set_device_minor(minor).map_err(fail)?;
        }
        header.set_cksum();
        let fail = |e| io_error("writing layer tar", e);
        self.out.write_all(header.as_bytes()).map_err(fail)?;

        let size = if entry.kind == TarKind::File {
            entry.size
        } else {
            0
        };
        if size > 0 {
            let data = data.ok_or_else(|| Error::internal(format!("no data for {shown:?}")))?;
            let copied = io::copy(&mut data.take(size), &mut self.out)
                .map_err(|e| io_error(format!("copying {shown:?} into the layer"), e))?;
            if copied != size {
                return Err(Error::new(
                    Kind::FailedPrecondition,
                    format!(
                        "{shown:?} shrank while the layer was written ({copied} of {size} bytes)"
                    ),
                ));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    /// Writes a PAX extended header carrying `records` for the entry at `path`.
    fn write_pax(&mut self, path: &[u8], records: &[PaxRecord<'_>]) -> Result<(), Error> {
        let mut body = Vec::new();
        for (key, value) in records {
            pax_record(&mut body, key, value);
        }
        let base = path
            .strip_suffix(b"/")
            .unwrap_or(path)
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or_default();
        let mut name = b"PaxHeaders.0/".to_vec();
        name.extend_from_slice(base);
        let mut header = Header::new_ustar();
        set_name(&mut header, &name, false);
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        header.set_entry_type(EntryType::XHeader);
        header.set_cksum();
        let fail = |e| io_error("writing layer tar", e);
        self.out.write_all(header.as_bytes()).map_err(fail)?;
        self.out.write_all(&body).map_err(fail)?;
        self.pad(body.len() as u64)
    }

    /// Zero-fills the data just written up to the next 512-byte boundary.
    fn pad(&mut self, written: u64) -> Result<(), Error> {
        let rem = (written % BLOCK as u64) as usize;
        if rem != 0 {
            let zeros = [0u8; BLOCK];
            self.out
                .write_all(&zeros[..BLOCK - rem])
                .map_err(|e| io_error("writing layer tar", e))?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns digest and size.
    pub(super) fn finish(mut self) -> Result<Applied, Error> {
        let fail = |e| io_error("finishing layer tar", e);
        self.out.write_all(&[0u8; 2 * BLOCK]).map_err(fail)?;
        self.out.finish().map_err(fail)
    }
}

/// Copies `name` (truncated to 100 bytes; the full name goes in a PAX record) into the
/// header's name or linkname field.
fn set_name(header: &mut Header, name: &[u8], link: bool) {
    let Some(ustar) = header.as_ustar_mut() else {
        return;
    };
    let field = if link {
        &mut ustar.linkname
    } else {
        &mut ustar.name
    };
    let len = name.len().min(NAME_LEN);
    field[..len].copy_from_slice(&name[..len]);
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts itself.
fn pax_record(body: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    body.extend_from_slice(len.to_string().as_bytes());
    body.push(b' ');
    body.extend_from_slice(key);
    body.push(b'=');
    body.extend_from_slice(value);
    body.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value_len in [0, 1, 80, 85, 86, 87, 990, 995, 996, 9990] {
            let mut body = Vec::new();
            pax_record(&mut body, b"path", &vec![b'a'; value_len]);
            let text = String::from_utf8(body.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), body.len(), "{value_len}");
        }
    }
}
