//! docker-style `--filter key=value` options: the same key given twice means either value
//! (OR), different keys must all match (AND). Commands match them client-side against their
//! own fields.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};

/// Parsed `--filter` options.
#[derive(Debug, Default)]
pub struct Filters {
    by_key: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `key=value` options; keys outside `allowed` are refused by name.
    pub fn parse(options: &[String], allowed: &[&str]) -> anyhow::Result<Filters> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for option in options {
            let (key, value) = option
                .split_once('=')
                .with_context(|| format!("bad filter {option:?}: expected KEY=VALUE"))?;
            if !allowed.contains(&key) {
                bail!(
                    "invalid filter {key:?}: this command knows {}",
                    allowed.join(", ")
                );
            }
            by_key
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        Ok(Filters { by_key })
    }

    /// Whether filter `key` accepts the item: true when the key was not given, else when
    /// `test` holds for one of its values.
    pub fn accepts(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        self.by_key
            .get(key)
            .is_none_or(|values| values.iter().any(|v| test(v)))
    }

    /// The values given for `key` (none when it was not given).
    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether `label=KEY` / `label=KEY=VALUE` filters accept an item with `labels`.
    pub fn accepts_labels(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        self.accepts("label", |want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(want),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_ors_different_keys_and() {
        let f = Filters::parse(
            &["name=a".into(), "name=b".into(), "label=x=1".into()],
            &["name", "label"],
        )
        .unwrap();
        let labels = [("x".to_string(), "1".to_string())].into_iter().collect();
        assert!(f.accepts("name", |v| v == "b"));
        assert!(!f.accepts("name", |v| v == "c"));
        assert!(f.accepts("dangling", |_| false));
        assert!(f.accepts_labels(&labels));
        assert!(!f.accepts_labels(&Default::default()));
        assert!(Filters::parse(&["nope=1".into()], &["name"]).is_err());
        assert!(Filters::parse(&["name".into()], &["name"]).is_err());
    }
}
