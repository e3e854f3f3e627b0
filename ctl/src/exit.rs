//! Exit codes like docker's: the container's own code for `run`/`wait`/`start -a`, 125 when
//! berthd or the command line fails, 126 when a command cannot be invoked, 127 when it is not
//! found.

use std::fmt;

/// Exit code for daemon and usage errors.
pub const DAEMON_ERROR: u8 = 125;
/// The command exists but could not be run (permission, not executable).
pub const CANNOT_INVOKE: u8 = 126;
/// The command was not found in the container.
pub const NOT_FOUND: u8 = 127;

/// An exit status to leave with, carried through `anyhow` so that commands can end with the
/// container's own code. It prints nothing by itself.
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

/// Leaves with `code` (a container's exit status, masked to 0–255 as a shell would).
pub fn with_code(code: u32) -> anyhow::Error {
    ExitStatus((code & 0xff) as u8).into()
}

/// An error for a start or exec failure, with the code docker gives it: 127 when the runtime
/// says the executable was not found, 126 for other invocation failures.
pub fn invocation_error(message: &str) -> anyhow::Error {
    let lower = message.to_lowercase();
    let code = if lower.contains("no such file")
        || lower.contains("not found")
        || lower.contains("executable file not found")
    {
        NOT_FOUND
    } else {
        CANNOT_INVOKE
    };
    anyhow::Error::new(ExitStatus(code)).context(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_errors_map_to_docker_codes() {
        let missing = invocation_error("exec: \"nope\": executable file not found in $PATH");
        assert_eq!(missing.downcast_ref::<ExitStatus>().unwrap().0, NOT_FOUND);
        let denied = invocation_error("exec: \"/etc\": permission denied");
        assert_eq!(
            denied.downcast_ref::<ExitStatus>().unwrap().0,
            CANNOT_INVOKE
        );
        assert_eq!(
            with_code(256 + 7).downcast_ref::<ExitStatus>().unwrap().0,
            7
        );
    }
}
