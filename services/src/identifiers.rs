//! containerd's identifier rules for namespaces, leases, containers and topic components:
//! alphanumerics separated by single `.`, `_` or `-`, at most 76 characters.

use berth_proto::errdefs::Error;

/// The longest identifier containerd accepts.
pub const MAX_LENGTH: usize = 76;

/// Checks `s` against containerd's identifier grammar; the error is InvalidArgument.
pub fn validate(s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::invalid("identifier must not be empty"));
    }
    if s.len() > MAX_LENGTH {
        return Err(Error::invalid(format!(
            "identifier {s:?} greater than maximum length ({MAX_LENGTH} characters)"
        )));
    }
    let mut prev_sep = true;
    for b in s.bytes() {
        let sep = matches!(b, b'.' | b'_' | b'-');
        if sep && prev_sep || !sep && !b.is_ascii_alphanumeric() {
            return Err(Error::invalid(format!(
                "identifier {s:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
            )));
        }
        prev_sep = sep;
    }
    if prev_sep {
        return Err(Error::invalid(format!(
            "identifier {s:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_containerd_identifiers() {
        for ok in ["default", "k8s.io", "moby", "a-b_c.d", "A1"] {
            validate(ok).unwrap();
        }
    }

    #[test]
    fn rejects_others() {
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a/b",
            "../x",
            "a b",
            &"x".repeat(77),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
