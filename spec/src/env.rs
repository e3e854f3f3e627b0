//! Environment lists: Docker's replace-or-append merge and its defaults.

use crate::defaults::DEFAULT_PATH;

/// The variable name of a `KEY=value` entry (the whole entry if it has no `=`).
fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Applies `overrides` to `base`: `KEY=value` replaces an existing `KEY` in
/// place or is appended; a bare `KEY` (no `=`) removes `KEY`.
pub fn merge(base: &mut Vec<String>, overrides: &[String]) {
    for entry in overrides {
        let k = key(entry);
        let pos = base.iter().position(|e| key(e) == k);
        match (entry.contains('='), pos) {
            (true, Some(i)) => base[i] = entry.clone(),
            (true, None) => base.push(entry.clone()),
            (false, Some(i)) => {
                base.remove(i);
            }
            (false, None) => {}
        }
    }
}

/// The final process environment: Docker's defaults (`PATH` when the
/// image sets none, `HOSTNAME`, `TERM=xterm` for a terminal), then the
/// image's variables, then the caller's.
pub fn process_env(
    image: &[String],
    overrides: &[String],
    hostname: &str,
    terminal: bool,
) -> Vec<String> {
    let mut env = Vec::new();
    if !image.iter().any(|e| key(e) == "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={hostname}"));
    if terminal {
        env.push("TERM=xterm".to_string());
    }
    merge(&mut env, image);
    merge(&mut env, overrides);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overrides_replace_in_place_and_append() {
        let mut env = v(&["A=1", "B=2", "C=3"]);
        merge(&mut env, &v(&["B=two", "D=4", "C"]));
        assert_eq!(env, v(&["A=1", "B=two", "D=4"]));
    }

    #[test]
    fn path_default_only_when_image_has_none() {
        let env = process_env(&v(&["X=1"]), &[], "h", false);
        assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
        assert_eq!(env, v(&[&env[0], "HOSTNAME=h", "X=1"]));
        let env = process_env(&v(&["PATH=/bin"]), &[], "h", true);
        assert_eq!(env, v(&["HOSTNAME=h", "TERM=xterm", "PATH=/bin"]));
    }

    #[test]
    fn caller_beats_image_beats_defaults() {
        let env = process_env(
            &v(&["PATH=/img", "TERM=vt100", "LANG=C"]),
            &v(&["LANG=C.UTF-8", "PATH=/mine"]),
            "h",
            true,
        );
        assert_eq!(
            env,
            v(&["HOSTNAME=h", "TERM=vt100", "PATH=/mine", "LANG=C.UTF-8"])
        );
    }
}
