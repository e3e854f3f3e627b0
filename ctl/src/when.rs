//! Times as docker prints them: RFC 3339 for inspect, "5 seconds ago" for people, and the
//! start time of a host process (tasks carry none).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A protobuf timestamp as a `SystemTime` (`None` for the zero time).
pub fn from_proto(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let ts = ts?;
    if ts.seconds <= 0 && ts.nanos <= 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::new(ts.seconds as u64, ts.nanos.max(0) as u32))
}

/// RFC 3339 with nanoseconds in UTC (`2024-05-01T10:00:00.123456789Z`); the zero time as
/// docker prints it when unset.
pub fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => chrono::DateTime::<chrono::Utc>::from(t)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// docker's `CreatedAt` form: `2024-05-01 10:00:00 +0000 UTC`.
pub fn created_at(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => chrono::DateTime::<chrono::Utc>::from(t)
            .format("%Y-%m-%d %H:%M:%S +0000 UTC")
            .to_string(),
        None => String::new(),
    }
}

/// A duration in docker's words (`Less than a second`, `5 seconds`, `About a minute`, …).
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// How long ago `t` was, in docker's words.
pub fn since(t: SystemTime) -> String {
    human(SystemTime::now().duration_since(t).unwrap_or_default())
}

/// `5 seconds ago`, or empty for an unknown time.
pub fn ago(t: Option<SystemTime>) -> String {
    t.map(|t| format!("{} ago", since(t))).unwrap_or_default()
}

/// The boot time of this host (`btime` of `/proc/stat`).
pub fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 onwards), and the name.
pub fn proc_stat(pid: u32) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest = stat.get(close + 1..)?;
    Some((comm, rest.split_whitespace().map(str::to_string).collect()))
}

/// When host process `pid` started (field 22 of its stat, in ticks after boot).
pub fn process_start(pid: u32) -> Option<SystemTime> {
    let (_, fields) = proc_stat(pid)?;
    let ticks: u64 = fields.get(19)?.parse().ok()?;
    let tps = ticks_per_second();
    Some(boot_time()? + Duration::from_millis(ticks * 1000 / tps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human(Duration::from_secs(1)), "1 second");
        assert_eq!(human(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human(Duration::from_secs(70)), "About a minute");
        assert_eq!(human(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human(Duration::from_secs(3700)), "About an hour");
        assert_eq!(human(Duration::from_secs(5 * 3600)), "5 hours");
        assert_eq!(human(Duration::from_secs(3 * 86400)), "3 days");
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert!(process_start(std::process::id()).is_some());
    }
}
