//! `berthctl logs`: a container's logged output, read through berthd's log service.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use berth_proto::berth::logs::v1::{LogEntry, ReadRequest, logs_client::LogsClient};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::{client::Client, lookup};

/// Fetch the output of a container (started detached or with `start`), stdout to stdout and
/// stderr to stderr.
///
/// Example: `berthctl logs -f --tail 20 --since 10m web`
#[derive(clap::Args)]
pub struct Args {
    /// Keep following new output until the container stops.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end, or `all`.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show output since a time: RFC 3339 (2024-05-01T10:00:00Z), Unix seconds, or relative
    /// (10m, 1h30m).
    #[arg(long)]
    since: Option<String>,
    /// Show output before a time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Prefix each line with its timestamp.
    #[arg(short, long)]
    timestamps: bool,
    /// The container (name, ID or ID prefix).
    container: String,
}

/// Streams the log.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => -1,
        n => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .with_context(|| format!("invalid --tail {n:?}: a number or `all`"))?,
    };
    let now = Utc::now();
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?;
    let mut stream = LogsClient::new(client.channel.clone())
        .read(client.request(ReadRequest {
            container_id: container.id.clone(),
            follow: args.follow,
            tail,
            since: since.map(timestamp),
            until: until.map(timestamp),
        }))
        .await
        .with_context(|| format!("reading the log of {}", args.container))?
        .into_inner();
    while let Some(entry) = stream
        .message()
        .await
        .with_context(|| format!("reading the log of {}", args.container))?
    {
        write_entry(&entry, args.timestamps)?;
    }
    Ok(())
}

/// Writes one entry to our stdout or stderr, as it was written.
pub fn write_entry(entry: &LogEntry, timestamps: bool) -> anyhow::Result<()> {
    let mut out: Box<dyn std::io::Write> = if entry.stream == "stderr" {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
    if timestamps {
        let time = entry
            .time
            .as_ref()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .unwrap_or_default();
        write!(out, "{} ", time.to_rfc3339_opts(SecondsFormat::Nanos, true))?;
    }
    out.write_all(&entry.data)?;
    out.flush()?;
    Ok(())
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Parses RFC 3339, Unix seconds (with fraction) or a duration before `now` (`1h30m`).
fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = text.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        return DateTime::from_timestamp(whole, nanos)
            .with_context(|| format!("time {text:?} out of range"));
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let value: f64 = number
            .parse()
            .with_context(|| format!("invalid time {text:?}"))?;
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                _ => bail!("invalid time {text:?}: use RFC 3339, Unix seconds, or e.g. 10m, 1h30m"),
            };
        number.clear();
    }
    if !number.is_empty() || total == 0.0 && text.is_empty() {
        bail!("invalid time {text:?}: use RFC 3339, Unix seconds, or e.g. 10m, 1h30m");
    }
    Ok(now - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |s| parse_time(s, now).unwrap().to_rfc3339();
        assert_eq!(t("10m"), "2024-05-01T11:50:00+00:00");
        assert_eq!(t("1h30m"), "2024-05-01T10:30:00+00:00");
        assert_eq!(t("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00+00:00");
        assert_eq!(t("1714564800"), "2024-05-01T12:00:00+00:00");
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("10", now).is_ok());
        assert!(parse_time("10x", now).is_err());
    }
}
