//! `berthctl images`: stored images with docker's columns.

use std::collections::HashSet;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::inspect::{is_reference, repository},
    image,
    output::{self, Format},
    when,
};

/// List images.
///
/// Example: `berthctl images --digests --filter reference='busybox*'`
#[derive(clap::Args)]
pub struct Args {
    /// Repository (and tag) to show, like `busybox` or `busybox:1`.
    reference: Option<String>,
    /// Show all images (intermediate images do not exist here: same as the default).
    #[arg(short, long)]
    all: bool,
    /// Only print image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Do not truncate image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Filter: reference=PATTERN (`*` wildcards), label=KEY[=VALUE], dangling=true|false.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Output: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'.
    #[arg(long)]
    format: Option<String>,
}

/// Matches `text` against a pattern with `*` wildcards (not crossing `/`, like docker's).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .take_while(|&i| i == 0 || !rest[..i].contains('/'))
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// One image row with the fields of docker's `images --format json`.
struct Row {
    json: Value,
    labels: std::collections::HashMap<String, String>,
    dangling: bool,
}

fn reference_matches(pattern: &str, repo: &str, tag: &str) -> bool {
    if pattern.contains(':') || pattern.contains('@') {
        glob(pattern, &format!("{repo}:{tag}"))
    } else {
        glob(pattern, repo)
    }
}

fn keep(row: &Row, filters: &[(String, String)]) -> anyhow::Result<bool> {
    let repo = row.json["Repository"].as_str().unwrap_or("");
    let tag = row.json["Tag"].as_str().unwrap_or("");
    for (key, value) in filters {
        let ok = match key.as_str() {
            "reference" => reference_matches(value, repo, tag),
            "label" => match value.split_once('=') {
                Some((k, v)) => row.labels.get(k).map(String::as_str) == Some(v),
                None => row.labels.contains_key(value),
            },
            "dangling" => match value.as_str() {
                "true" | "1" => row.dangling,
                "false" | "0" => !row.dangling,
                other => bail!("bad dangling filter {other:?}: use true or false"),
            },
            other => bail!("unsupported filter {other:?}: use reference, label or dangling"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Human size with three significant digits in decimal units, like docker's (`4.26MB`).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = size.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// Runs `images`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let mut filters = args
        .filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("bad filter {f:?}: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(r) = &args.reference {
        filters.push(("reference".into(), r.clone()));
    }
    let records = image::list(client).await?;
    let mut rows = Vec::new();
    for record in records {
        let Ok(resolved) = image::resolve(client, &record.name, None).await else {
            // Another platform's image, or content not fetched: nothing to show for here.
            continue;
        };
        let id = resolved.manifest.config().digest().to_string();
        let dangling = !is_reference(&record.name);
        let familiar = image::familiar(&record.name);
        let (repo, tag, digest) = if dangling {
            ("<none>".to_string(), "<none>".to_string(), String::new())
        } else if let Some((repo, digest)) = familiar.split_once('@') {
            (repo.to_string(), "<none>".to_string(), digest.to_string())
        } else {
            let repo = repository(&familiar);
            let tag = familiar[repo.len()..].trim_start_matches(':').to_string();
            let digest = record.target.as_ref().map(|t| t.digest.clone());
            (repo, tag, digest.unwrap_or_default())
        };
        let created = resolved
            .config
            .created()
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(std::time::SystemTime::from);
        let shown_id = if args.no_trunc {
            id.clone()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        };
        let size = resolved.size();
        let labels = resolved
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default();
        rows.push(Row {
            json: json!({
                "Containers": "N/A",
                "CreatedAt": when::created_at(created),
                "CreatedSince": when::ago(created),
                "Digest": if digest.is_empty() { "<none>".to_string() } else { digest },
                "ID": shown_id,
                "Repository": repo,
                "Tag": tag,
                "SharedSize": "N/A",
                "Size": human_size(size as f64),
                "UniqueSize": "N/A",
                "VirtualSize": human_size(size as f64),
            }),
            labels,
            dangling,
        });
    }
    let mut shown = Vec::new();
    for row in rows {
        if keep(&row, &filters)? {
            shown.push(row.json);
        }
    }
    if args.quiet {
        let mut seen = HashSet::new();
        for row in &shown {
            let id = row["ID"].as_str().unwrap_or("");
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let mut headers = vec!["REPOSITORY", "TAG"];
    if args.digests {
        headers.push("DIGEST");
    }
    headers.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let digests = args.digests;
    output::print_items(&format, &shown, &headers, |v| {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut cells = vec![text("Repository"), text("Tag")];
        if digests {
            cells.push(text("Digest"));
        }
        cells.extend([text("ID"), text("CreatedSince"), text("Size")]);
        cells
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_sizes() {
        assert!(glob("busy*", "busybox"));
        assert!(!glob("busy*", "lab/busybox"));
        assert!(glob("*/busybox", "lab/busybox"));
        assert!(glob("busybox", "busybox"));
        assert!(reference_matches("busybox:1", "busybox", "1"));
        assert!(!reference_matches("busybox:2", "busybox", "1"));
        assert!(reference_matches("busybox", "busybox", "1"));
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(856_000.0), "856kB");
        assert_eq!(human_size(12.0), "12B");
        assert_eq!(human_size(1_000_000.0), "1MB");
    }
}
