//! Content digests in OCI's `algorithm:encoded` form.
//!
//! Berth stores and verifies `sha256` content. `sha384` and `sha512` digests parse (the OCI
//! image spec registers them) so that requests naming them are answered with a precise error
//! instead of a parse failure.

use std::{fmt, str::FromStr};

use sha2::Digest as _;

use crate::errdefs::Error;

/// A digest algorithm registered by the OCI image spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters; the one Berth stores.
    Sha256,
    /// SHA-384, 96 hex characters.
    Sha384,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest, e.g. `sha256:e3b0c442…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    encoded: String,
}

impl Digest {
    /// Parses and validates `s`; the error is InvalidArgument and says why.
    pub fn parse(s: &str) -> Result<Digest, Error> {
        let Some((alg, encoded)) = s.split_once(':') else {
            return Err(Error::invalid(format!(
                "invalid digest {s:?}: invalid checksum digest format"
            )));
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            "" => {
                return Err(Error::invalid(format!(
                    "invalid digest {s:?}: invalid checksum digest format"
                )));
            }
            _ => {
                return Err(Error::invalid(format!(
                    "invalid digest {s:?}: unsupported digest algorithm"
                )));
            }
        };
        if encoded.len() != algorithm.hex_len()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::invalid(format!(
                "invalid digest {s:?}: invalid checksum digest length or characters"
            )));
        }
        Ok(Digest {
            algorithm,
            encoded: encoded.to_string(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::from_sha256(sha2::Sha256::digest(data).into())
    }

    /// Wraps a finished sha256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            encoded: hex::encode(hash),
        }
    }

    /// The algorithm before the colon.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part after the colon.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.encoded)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::Kind;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_sha256() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::sha256_of(b""), d);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../etc/passwd",
        ] {
            let err = Digest::parse(bad).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument, "{bad}");
        }
    }
}
