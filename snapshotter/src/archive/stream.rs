//! Byte streams around the tar: compression detection and the sha256 that becomes a diff ID.

use std::io::{self, BufReader, Cursor, Read, Write};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
};
use sha2::{Digest as _, Sha256};

use super::Applied;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Buffer size for plain tar input; the tar parser reads 512-byte headers.
const PLAIN_BUFFER: usize = 128 * 1024;

/// The compression of a layer stream, as detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    /// A plain tar.
    None,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// zstd, possibly several frames.
    Zstd,
}

/// Reads the magic bytes of `reader` and returns a reader of the uncompressed stream.
pub(super) fn decompress<'a, R: Read + 'a>(
    mut reader: R,
) -> Result<(Compression, Box<dyn Read + 'a>), Error> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match reader.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error("reading layer stream", e)),
        }
    }
    let head = &magic[..filled];
    let chained = Cursor::new(head.to_vec()).chain(reader);
    Ok(if head.starts_with(GZIP_MAGIC) {
        let decoder = flate2::read::MultiGzDecoder::new(chained);
        (Compression::Gzip, Box::new(decoder))
    } else if head.starts_with(ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::new(chained)
            .map_err(|e| stream_error("starting zstd decoder", e))?;
        (Compression::Zstd, Box::new(decoder))
    } else {
        let buffered = BufReader::with_capacity(PLAIN_BUFFER, chained);
        (Compression::None, Box::new(buffered))
    })
}

/// A failure reading the layer stream (decompression, tar structure, truncation): DataLoss.
pub(super) fn stream_error(context: impl std::fmt::Display, err: io::Error) -> Error {
    Error::new(Kind::DataLoss, format!("{context}: {err}"))
}

/// Counts and hashes every byte read through it.
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub(super) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Reads what is left of the stream (trailing zero blocks, padding) so the digest covers
    /// it all, and returns the digest and size.
    pub(super) fn finish(mut self) -> Result<Applied, Error> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| stream_error("reading the end of the layer stream", e))?;
        Ok(Applied {
            diff_id: Digest::from_sha256(self.hasher.finalize().into()),
            size: self.size,
        })
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Counts and hashes every byte written through it.
pub(super) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub(super) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Flushes the inner writer and returns the digest and size of what was written.
    pub(super) fn finish(mut self) -> io::Result<Applied> {
        self.inner.flush()?;
        Ok(Applied {
            diff_id: Digest::from_sha256(self.hasher.finalize().into()),
            size: self.size,
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
