//! Volume names: Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so a name is always one plain
//! path component below the volumes directory (no `/`, never `.` or `..`, never hidden).

use berth_proto::errdefs::Error;

/// The longest name accepted: one path component on every Linux filesystem.
pub const MAX_LENGTH: usize = 255;

/// Checks `name` against Docker's volume name rule; the error is InvalidArgument.
pub fn validate(name: &str) -> Result<(), Error> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || name.len() < 2 {
        return Err(Error::invalid(format!(
            "volume name {name:?} includes invalid characters: only [a-zA-Z0-9][a-zA-Z0-9_.-] \
             are allowed, at least two characters"
        )));
    }
    if name.len() > MAX_LENGTH {
        return Err(Error::invalid(format!(
            "volume name longer than {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

/// A random name for a volume created without one: 64 hex digits, as Docker's.
pub fn random() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_names() {
        for ok in [
            "v1",
            "my-vol",
            "a.b_c-d",
            "0x",
            "A..",
            &"x".repeat(MAX_LENGTH),
        ] {
            validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "a",
            ".",
            "..",
            ".hidden",
            "-a",
            "_a",
            "a/b",
            "../etc",
            "a b",
            "a\0b",
            "vol/../../x",
            "é1",
            &"x".repeat(MAX_LENGTH + 1),
        ] {
            let err = validate(bad).unwrap_err();
            assert_eq!(
                err.kind,
                berth_proto::errdefs::Kind::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn random_names_are_valid_and_distinct() {
        let (a, b) = (random(), random());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        validate(&a).unwrap();
        assert_ne!(a, b);
    }
}
