//! Numbers and times the way docker prints them for people (`1.235MB`, `3 minutes ago`), and
//! the `y/N` confirmation that destructive commands ask for.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::bail;
use chrono::{DateTime, SecondsFormat, Utc};

/// A byte count in decimal units with four significant digits, like docker's `HumanSize`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let integer_digits = if value < 1.0 {
        1
    } else {
        value.log10().floor() as usize + 1
    };
    let mut text = format!("{:.*}", 4usize.saturating_sub(integer_digits), value);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// A protobuf timestamp as a UTC time (the epoch when absent or out of range).
pub fn time(ts: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

/// A timestamp in RFC 3339 with seconds, as docker's inspect output shows it.
pub fn rfc3339(ts: Option<&prost_types::Timestamp>) -> String {
    time(ts).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long ago `ts` was, in docker's words (`About a minute ago`, `3 hours ago`).
pub fn ago(ts: Option<&prost_types::Timestamp>) -> String {
    format!("{} ago", duration(Utc::now() - time(ts)))
}

/// A duration in docker's words (`Less than a second`, `5 minutes`, `2 weeks`).
pub fn duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0 => "Less than a second".into(),
        1..=59 => plural(secs, "second"),
        60..=119 => "About a minute".into(),
        120..=3_599 => plural(secs / 60, "minute"),
        3_600..=7_199 => "About an hour".into(),
        7_200..=172_799 => plural(secs / 3_600, "hour"),
        172_800..=1_209_599 => plural(secs / 86_400, "day"),
        1_209_600..=5_183_999 => plural(secs / 604_800, "week"),
        5_184_000..=63_071_999 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

/// Asks `question` with a `[y/N]` answer unless `force`; refuses without a terminal to ask
/// on, so that scripts must say `-f` to destroy.
pub fn confirm(question: &str, force: bool) -> anyhow::Result<bool> {
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to ask for confirmation without a terminal: pass -f/--force");
    }
    print!("{question}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1kB");
        assert_eq!(size(1_234_567), "1.235MB");
        assert_eq!(size(4_400_000), "4.4MB");
        assert_eq!(size(12_345_678_901), "12.35GB");
    }

    #[test]
    fn durations_like_docker() {
        let d = chrono::TimeDelta::seconds;
        assert_eq!(duration(d(0)), "Less than a second");
        assert_eq!(duration(d(1)), "1 second");
        assert_eq!(duration(d(90)), "About a minute");
        assert_eq!(duration(d(600)), "10 minutes");
        assert_eq!(duration(d(3 * 86_400)), "3 days");
    }
}
