//! `berthctl lease ls|create|rm`: leases, which keep content and snapshots from the garbage
//! collector while a client works with them (like `ctr leases`).

use anyhow::{Context as _, bail};
use containerd_client::services::v1::{
    CreateRequest, DeleteRequest, ListRequest, leases_client::LeasesClient,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::namespace::parse_labels,
    human,
    output::{self, Format},
};

/// The label that makes a lease expire at an RFC 3339 time.
const EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// Manage leases (like `ctr leases`).
///
/// Example: `berthctl lease create --id build-1 --expires-in 1h`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List leases: ID CREATED AT LABELS.
    ///
    /// Example: `berthctl lease ls -q`
    #[command(alias = "list")]
    Ls {
        /// containerd filters, e.g. `id~=^build`.
        filters: Vec<String>,
        /// Print IDs only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over ID, CreatedAt, Labels.
        #[arg(long)]
        format: Option<String>,
    },
    /// Create a lease and print its ID.
    ///
    /// Example: `berthctl lease create --id build-1 --expires-in 30m --label owner=ci`
    Create {
        /// The lease's ID (default: a generated one).
        #[arg(long)]
        id: Option<String>,
        /// Let it expire after this long (`90s`, `30m`, `1h30m`; 0 for never).
        #[arg(long, default_value = "24h")]
        expires_in: String,
        /// Set a label (KEY=VALUE); may be repeated.
        #[arg(short, long = "label")]
        labels: Vec<String>,
    },
    /// Remove leases (what they held becomes collectable).
    ///
    /// Example: `berthctl lease rm --sync build-1`
    #[command(alias = "delete", alias = "remove")]
    Rm {
        /// Lease IDs.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Wait for the garbage collection that follows.
        #[arg(long)]
        sync: bool,
    },
}

/// Parses a Go-style duration (`1h30m`, `90s`, `250ms`) into whole seconds, rounding up.
fn parse_duration(text: &str) -> anyhow::Result<i64> {
    if text == "0" {
        return Ok(0);
    }
    let mut millis: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: i64 = rest[..digits]
            .parse()
            .with_context(|| format!("invalid duration {text:?}: expected e.g. 30m or 1h30m"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            unit => bail!("invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h)"),
        };
        millis = millis.saturating_add(number.saturating_mul(factor));
        rest = &rest[unit_len..];
    }
    Ok((millis + 999) / 1_000)
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let mut api = LeasesClient::new(client.channel.clone());
    match args.action {
        Action::Ls {
            filters,
            quiet,
            format,
        } => {
            let format = Format::parse(format.as_deref())?;
            let mut leases = api
                .list(client.request(ListRequest { filters }))
                .await
                .context("listing leases")?
                .into_inner()
                .leases;
            leases.sort_by(|a, b| a.id.cmp(&b.id));
            if quiet {
                leases.iter().for_each(|l| println!("{}", l.id));
                return Ok(());
            }
            let items: Vec<Value> = leases
                .iter()
                .map(|l| {
                    json!({
                        "ID": l.id,
                        "CreatedAt": human::rfc3339(l.created_at.as_ref()),
                        "Labels": l.labels,
                    })
                })
                .collect();
            output::print_items(&format, &items, &["ID", "CREATED AT", "LABELS"], |v| {
                let mut labels: Vec<String> = v["Labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect()
                    })
                    .unwrap_or_default();
                labels.sort();
                vec![
                    v["ID"].as_str().unwrap_or("").into(),
                    v["CreatedAt"].as_str().unwrap_or("").into(),
                    labels.join(","),
                ]
            });
        }
        Action::Create {
            id,
            expires_in,
            labels,
        } => {
            let mut labels = parse_labels(&labels)?;
            let seconds = parse_duration(&expires_in)?;
            if seconds > 0 {
                let at = chrono::Utc::now() + chrono::TimeDelta::seconds(seconds);
                labels.insert(
                    EXPIRE_LABEL.to_string(),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
            }
            let id = id.unwrap_or_else(|| {
                format!(
                    "berthctl-{}",
                    crate::lookup::short_id(&crate::lookup::new_id())
                )
            });
            let lease = api
                .create(client.request(CreateRequest { id, labels }))
                .await
                .context("creating the lease")?
                .into_inner()
                .lease
                .context("berthd returned no lease")?;
            println!("{}", lease.id);
        }
        Action::Rm { ids, sync } => {
            for id in ids {
                match api
                    .delete(client.request(DeleteRequest {
                        id: id.clone(),
                        sync,
                    }))
                    .await
                {
                    Ok(_) => println!("{id}"),
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        bail!("no such lease: {id}")
                    }
                    Err(s) => return Err(s).with_context(|| format!("removing lease {id}")),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("250ms").unwrap(), 1);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }
}
