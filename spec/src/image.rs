//! What an OCI image config contributes to the process, and Docker's rules
//! for combining it with the caller's entrypoint and command.

use oci_spec::image::{Config, ImageConfiguration};

/// The process-related fields of an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageProcess {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `KEY=value` entries.
    pub env: Vec<String>,
    /// `WorkingDir`, if set and non-empty.
    pub working_dir: Option<String>,
    /// `User`, if set and non-empty.
    pub user: Option<String>,
}

impl From<&Config> for ImageProcess {
    fn from(c: &Config) -> Self {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Self {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: non_empty(c.working_dir()),
            user: non_empty(c.user()),
        }
    }
}

impl From<&ImageConfiguration> for ImageProcess {
    fn from(c: &ImageConfiguration) -> Self {
        c.config().as_ref().map(Self::from).unwrap_or_default()
    }
}

/// The process args under Docker's rules: entrypoint (the caller's if
/// given, else the image's) followed by the command (the caller's if
/// non-empty; else nothing if the caller overrode the entrypoint; else the
/// image's `Cmd`).
pub fn args(
    image: &ImageProcess,
    entrypoint: Option<&[String]>,
    command: Option<&[String]>,
) -> Vec<String> {
    let entry = entrypoint.unwrap_or(&image.entrypoint);
    let cmd = match command {
        Some(c) if !c.is_empty() => c,
        _ if entrypoint.is_some() => &[],
        _ => &image.cmd,
    };
    entry.iter().chain(cmd).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageProcess {
        let config = ConfigBuilder::default()
            .entrypoint(v(&["/entry"]))
            .cmd(v(&["serve", "--port=80"]))
            .env(v(&["A=1"]))
            .working_dir("/srv")
            .user("")
            .build()
            .unwrap();
        ImageProcess::from(&config)
    }

    #[test]
    fn from_config() {
        let img = image();
        assert_eq!(img.working_dir.as_deref(), Some("/srv"));
        assert_eq!(img.user, None, "empty user means unset");
        assert_eq!(img.env, v(&["A=1"]));
        assert_eq!(
            ImageProcess::from(&ImageConfiguration::default()),
            ImageProcess::default()
        );
    }

    #[test]
    fn image_entrypoint_and_cmd() {
        assert_eq!(
            args(&image(), None, None),
            v(&["/entry", "serve", "--port=80"])
        );
    }

    #[test]
    fn command_replaces_cmd_only() {
        let cmd = v(&["check"]);
        assert_eq!(args(&image(), None, Some(&cmd)), v(&["/entry", "check"]));
        assert_eq!(
            args(&image(), None, Some(&[])),
            v(&["/entry", "serve", "--port=80"])
        );
    }

    #[test]
    fn entrypoint_override_clears_image_cmd() {
        let ep = v(&["/bin/sh"]);
        assert_eq!(args(&image(), Some(&ep), None), v(&["/bin/sh"]));
        let cmd = v(&["-c", "true"]);
        assert_eq!(
            args(&image(), Some(&ep), Some(&cmd)),
            v(&["/bin/sh", "-c", "true"])
        );
        // `--entrypoint ""` runs the command alone.
        assert_eq!(args(&image(), Some(&[]), Some(&cmd)), v(&["-c", "true"]));
        assert!(args(&image(), Some(&[]), None).is_empty());
    }
}
