//! Tar streams with raw names: the `tar` crate's `set_path` refuses `..` and absolute paths,
//! which are exactly the names a fuzz target wants to send.

use tar::{EntryType, Header};

/// Longest name or link target a plain header holds; longer ones are cut.
const NAME_FIELD: usize = 100;

/// Writes a tar stream entry by entry into memory.
#[derive(Default)]
pub struct TarStream {
    bytes: Vec<u8>,
}

impl TarStream {
    /// An empty stream.
    pub fn new() -> TarStream {
        TarStream::default()
    }

    /// Appends an entry named `name` (cut at 100 bytes, NULs and all) of type `kind`, with
    /// `link` as its link target, mode `mode`, owner 0:0, mtime 0, and `data` as its contents.
    pub fn entry(&mut self, name: &[u8], kind: EntryType, link: &[u8], mode: u32, data: &[u8]) {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        copy_cut(&mut old.name, name);
        copy_cut(&mut old.linkname, link);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.resize(self.bytes.len() + padding, 0);
    }

    /// The stream with its two terminating zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(self.bytes.len() + 1024, 0);
        self.bytes
    }
}

/// Copies as much of `from` as fits into the NUL-padded field `to`.
fn copy_cut(to: &mut [u8; NAME_FIELD], from: &[u8]) {
    let n = from.len().min(NAME_FIELD);
    to[..n].copy_from_slice(&from[..n]);
}
