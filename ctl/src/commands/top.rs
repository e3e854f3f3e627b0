//! `berthctl top`: a container's processes (`Tasks.ListPids`), described from the host's
//! `/proc` like `ps -ef`.

use std::{collections::HashMap, time::SystemTime};

use anyhow::Context as _;
use containerd_client::services::v1::{ListPidsRequest, tasks_client::TasksClient};

use crate::{client::Client, lookup, output, when};

/// Display the running processes of a container.
///
/// Example: `berthctl top web`
#[derive(clap::Args)]
pub struct Args {
    /// The container.
    container: String,
    /// `ps` options (accepted for docker compatibility; the columns are always `-ef`'s).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// Host user names by uid, from `/etc/passwd`.
fn user_names() -> HashMap<u32, String> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// `[DD-]HH:MM:SS` of CPU time, as `ps` prints TIME.
fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The controlling terminal from `tty_nr` (`?` for none).
fn tty(nr: u64) -> String {
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    match major {
        0 => "?".to_string(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// One `ps -ef` row for host process `pid`, if it still exists.
fn row(pid: u32, users: &HashMap<u32, String>, tps: u64) -> Option<Vec<String>> {
    let (comm, f) = when::proc_stat(pid)?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields after the name: 0 state, 1 ppid, 4 tty_nr, 11 utime, 12 stime, 19 starttime.
    let ppid = num(1);
    let cpu_ticks = num(11) + num(12);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ")
    };
    let started = when::process_start(pid);
    let elapsed = started
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let c = if elapsed > 0.0 {
        ((cpu_ticks as f64 / tps as f64) / elapsed * 100.0) as u64
    } else {
        0
    };
    let stime = started.map_or(String::new(), |t| {
        let local = chrono::DateTime::<chrono::Local>::from(t);
        if local.date_naive() == chrono::Local::now().date_naive() {
            local.format("%H:%M").to_string()
        } else {
            local.format("%b%d").to_string()
        }
    });
    Some(vec![
        users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()),
        pid.to_string(),
        ppid.to_string(),
        c.to_string(),
        stime,
        tty(num(4)),
        cpu_time(cpu_ticks / tps),
        cmd,
    ])
}

/// Runs `top`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let processes = TasksClient::new(client.channel.clone())
        .list_pids(client.request(ListPidsRequest {
            container_id: container.id.clone(),
        }))
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::NotFound {
                anyhow::anyhow!("container {} is not running", args.container)
            } else {
                anyhow::Error::new(s)
            }
        })
        .with_context(|| format!("listing the processes of {}", args.container))?
        .into_inner()
        .processes;
    let users = user_names();
    let tps = when::ticks_per_second();
    let mut pids: Vec<u32> = processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    let rows: Vec<Vec<String>> = pids
        .into_iter()
        .filter_map(|pid| row(pid, &users, tps))
        .collect();
    output::print_table(
        &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(cpu_time(3661), "01:01:01");
        assert_eq!(cpu_time(90061), "1-01:01:01");
        assert_eq!(tty(0), "?");
        assert_eq!(tty((136 << 8) | 3), "pts/3");
        let me = row(std::process::id(), &user_names(), when::ticks_per_second()).unwrap();
        assert_eq!(me[1], std::process::id().to_string());
    }
}
