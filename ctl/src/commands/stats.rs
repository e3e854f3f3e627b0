//! `berthctl stats`: live resource use of containers from `Tasks.Metrics` (cgroup v1 or v2).

use std::{
    collections::HashMap,
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use containerd_client::services::v1::{MetricsRequest, tasks_client::TasksClient};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::{images::human_size, ps},
    lookup,
    metrics::{self, Sample},
    output::{self, Format},
};

/// Display a live stream of containers' resource usage (every second, like docker).
///
/// Example: `berthctl stats --no-stream web`
#[derive(clap::Args)]
pub struct Args {
    /// Containers (default: all running ones).
    containers: Vec<String>,
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Print one reading and exit.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Output: table, json, or a Go template such as '{{.Name}} {{.MemUsage}}'.
    #[arg(long)]
    format: Option<String>,
}

/// Memory sizes like docker's (binary units, four significant digits: `1.949MiB`).
fn bytes_size(size: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let digits = match value {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let mut text = format!("{value:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// The host's memory, the limit shown for containers without one.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Reads every task's metrics: container ID → sample.
async fn read(client: &Client) -> anyhow::Result<HashMap<String, Sample>> {
    let list = TasksClient::new(client.channel.clone())
        .metrics(client.request(MetricsRequest {
            filters: Vec::new(),
        }))
        .await
        .context("reading task metrics")?
        .into_inner()
        .metrics;
    let mut out = HashMap::new();
    for m in list {
        if let Some(any) = m.data
            && let Ok(sample) = metrics::decode(&any.type_url, &any.value)
        {
            out.insert(m.id, sample);
        }
    }
    Ok(out)
}

/// Which containers to show, in order: (ID, name).
async fn targets(args: &Args, client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    if !args.containers.is_empty() {
        let mut out = Vec::new();
        for name in &args.containers {
            let c = lookup::find(client, name).await?;
            out.push((c.id.clone(), lookup::name_of(&c).to_string()));
        }
        return Ok(out);
    }
    let mut entries = ps::entries(client).await?;
    entries.sort_by(|a, b| lookup::name_of(&a.container).cmp(lookup::name_of(&b.container)));
    Ok(entries
        .into_iter()
        .filter(|e| args.all || matches!(e.state(), "running" | "paused"))
        .map(|e| {
            let name = lookup::name_of(&e.container).to_string();
            (e.container.id, name)
        })
        .collect())
}

fn row(
    id: &str,
    name: &str,
    now: Option<&Sample>,
    before: Option<&Sample>,
    elapsed: Duration,
    no_trunc: bool,
    host_mem: u64,
) -> Value {
    let shown_id = if no_trunc { id } else { lookup::short_id(id) };
    let Some(now) = now else {
        return json!({
            "ID": shown_id, "Container": shown_id, "Name": name, "CPUPerc": "0.00%",
            "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "--", "BlockIO": "0B / 0B",
            "PIDs": "0",
        });
    };
    let cpu = match before {
        Some(b) if elapsed.as_nanos() > 0 => {
            now.cpu_ns.saturating_sub(b.cpu_ns) as f64 / elapsed.as_nanos() as f64 * 100.0
        }
        _ => 0.0,
    };
    let limit = if now.memory_limit == 0 || (host_mem > 0 && now.memory_limit > host_mem) {
        host_mem
    } else {
        now.memory_limit
    };
    let mem_perc = if limit > 0 {
        now.memory as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "ID": shown_id,
        "Container": shown_id,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(now.memory), bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": "--",
        "BlockIO": format!("{} / {}", human_size(now.block_read as f64), human_size(now.block_write as f64)),
        "PIDs": now.pids.to_string(),
    })
}

/// Runs `stats`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let host_mem = host_memory();
    let interval = if args.no_stream {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let clear = !args.no_stream && std::io::stdout().is_terminal();
    let mut before = read(client).await?;
    let mut at = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let shown = targets(&args, client).await?;
        let now = read(client).await?;
        let elapsed = at.elapsed();
        at = Instant::now();
        let rows: Vec<Value> = shown
            .iter()
            .map(|(id, name)| {
                row(
                    id,
                    name,
                    now.get(id),
                    before.get(id),
                    elapsed,
                    args.no_trunc,
                    host_mem,
                )
            })
            .collect();
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        let headers = [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ];
        output::print_items(&format, &rows, &headers, |v| {
            [
                "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
            ]
            .iter()
            .map(|k| v.get(*k).and_then(Value::as_str).unwrap_or("").to_string())
            .collect()
        });
        if args.no_stream {
            return Ok(());
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rows() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(2_043_904), "1.949MiB");
        assert_eq!(bytes_size(1024 * 1024 * 1024), "1GiB");
        let now = Sample {
            cpu_ns: 2_000_000_000,
            memory: 512 * 1024,
            memory_limit: 0,
            pids: 1,
            ..Default::default()
        };
        let before = Sample {
            cpu_ns: 1_500_000_000,
            ..Default::default()
        };
        let r = row(
            "abc",
            "web",
            Some(&now),
            Some(&before),
            Duration::from_secs(1),
            false,
            1024 * 1024,
        );
        assert_eq!(r["CPUPerc"], "50.00%");
        assert_eq!(r["MemUsage"], "512KiB / 1MiB");
        assert_eq!(r["MemPerc"], "50.00%");
    }
}
