//! Incremental digest computation for every algorithm [`Digest`] parses.

use std::fmt::Write as _;

use berth_proto::{
    digest::{Algorithm, Digest},
    errdefs::{Error, Kind},
};
use sha2::Digest as _;

/// Hashes bytes as they pass, in the algorithm of the digest they are checked against.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub(crate) fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds `data`.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub(crate) fn finish(self) -> Digest {
        let (name, bytes): (&str, Vec<u8>) = match self {
            Hasher::Sha256(h) => return Digest::from_sha256(h.finalize().into()),
            Hasher::Sha384(h) => ("sha384", h.finalize().to_vec()),
            Hasher::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let mut s = format!("{name}:");
        for b in bytes {
            write!(s, "{b:02x}").expect("writing to a String");
        }
        Digest::parse(&s).expect("a hex digest of the right length")
    }
}

/// The digest of `data` in `algorithm`.
pub(crate) fn digest_of(algorithm: Algorithm, data: &[u8]) -> Digest {
    let mut h = Hasher::new(algorithm);
    h.update(data);
    h.finish()
}

/// DataLoss unless `data` hashes to `expected`.
pub(crate) fn check(what: &str, expected: &Digest, data: &[u8]) -> Result<(), Error> {
    let actual = digest_of(expected.algorithm(), data);
    if &actual == expected {
        Ok(())
    } else {
        Err(mismatch(what, expected, &actual))
    }
}

/// The DataLoss error for content that hashed to `actual` instead of `expected`.
pub(crate) fn mismatch(what: &str, expected: &Digest, actual: &Digest) -> Error {
    Error::new(
        Kind::DataLoss,
        format!("{what}: digest mismatch: expected {expected}, got {actual}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_in_each_algorithm() {
        assert_eq!(digest_of(Algorithm::Sha256, b""), Digest::sha256_of(b""));
        let d = digest_of(Algorithm::Sha384, b"abc");
        assert_eq!(
            d.to_string(),
            "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(digest_of(Algorithm::Sha512, b"abc").encoded().len(), 128);
        assert!(check("x", &d, b"abc").is_ok());
        let err = check("blob", &d, b"abd").unwrap_err();
        assert_eq!(err.kind, Kind::DataLoss);
        assert!(err.message.starts_with("blob: digest mismatch"), "{err}");
    }
}
