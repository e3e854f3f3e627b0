//! containerd's label rules: a key and its value together may hold at most 4096 bytes, and a
//! key may not be empty.

use std::collections::HashMap;

use crate::errdefs::Error;

/// The most bytes a label's key and value may take together.
pub const MAX_LABEL_SIZE: usize = 4096;

/// Checks one label; the error is InvalidArgument, phrased as containerd phrases it.
pub fn validate(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid("label key must not be empty"));
    }
    let size = key.len() + value.len();
    if size > MAX_LABEL_SIZE {
        let shown: String = key.chars().take(10).collect();
        return Err(Error::invalid(format!(
            "label key and value length ({size} bytes) greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {shown}: invalid argument"
        )));
    }
    Ok(())
}

/// Checks every label of a map.
pub fn validate_all(labels: &HashMap<String, String>) -> Result<(), Error> {
    labels.iter().try_for_each(|(k, v)| validate(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_size_limit() {
        assert!(validate("k", &"v".repeat(4095)).is_ok());
        assert!(validate("k", &"v".repeat(4096)).is_err());
        assert!(validate("", "v").is_err());
    }
}
