//! `berthctl ps`: containers with docker's columns. One `Containers.List` and one `Tasks.List`
//! cover any number of containers.

use std::{collections::HashMap, time::SystemTime};

use anyhow::{Context as _, bail};
use berth_proto::labels::berth;
use containerd_client::{
    services::v1::{Container, ListTasksRequest, tasks_client::TasksClient},
    types::v1::Status,
};
use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::{
    client::Client,
    image, lookup,
    output::{self, Format},
    task::TaskState,
    when,
};

/// List containers.
///
/// Example: `berthctl ps -a --filter status=exited --format '{{.ID}} {{.Status}}'`
#[derive(clap::Args)]
pub struct Args {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    all: bool,
    /// Only print container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Show the N most recently created containers (all states). (No short `-n`: that is the
    /// global namespace flag.)
    #[arg(long = "last", value_name = "N")]
    last: Option<usize>,
    /// Show the most recently created container (all states).
    #[arg(short, long)]
    latest: bool,
    /// Filter: name=, label=KEY[=VALUE], status=created|running|paused|exited, id=, ancestor=,
    /// before=/since= (a container's name or ID), exited=CODE.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Output: table, json, or a Go template such as '{{.ID}}\t{{.Names}}'.
    #[arg(long)]
    format: Option<String>,
}

/// A container with its task, as listings and inspect see it.
pub struct Entry {
    /// The container record.
    pub container: Container,
    /// Its task, if it has one.
    pub task: Option<TaskState>,
}

impl Entry {
    /// docker's state word: created, running, paused or exited.
    pub fn state(&self) -> &'static str {
        self.task
            .as_ref()
            .map_or("created", TaskState::docker_state)
    }

    /// When the task's init process started (host `/proc`), if it runs.
    pub fn started_at(&self) -> Option<SystemTime> {
        let task = self.task.as_ref()?;
        (task.pid > 0)
            .then(|| when::process_start(task.pid))
            .flatten()
    }

    /// When the task exited, if it has.
    pub fn finished_at(&self) -> Option<SystemTime> {
        let task = self.task.as_ref()?;
        (task.status == Status::Stopped)
            .then(|| when::from_proto(task.exited_at.as_ref()))
            .flatten()
    }

    /// docker's status sentence: `Up 5 seconds`, `Exited (3) 2 minutes ago`, `Created`.
    pub fn status(&self) -> String {
        let up = || {
            self.started_at()
                .or_else(|| when::from_proto(self.container.updated_at.as_ref()))
                .map_or("Up".to_string(), |t| format!("Up {}", when::since(t)))
        };
        match (self.state(), &self.task) {
            ("running", _) => up(),
            ("paused", _) => format!("{} (Paused)", up()),
            ("exited", Some(task)) => match self.finished_at() {
                Some(t) => format!("Exited ({}) {} ago", task.exit_status, when::since(t)),
                None => format!("Exited ({})", task.exit_status),
            },
            _ => "Created".to_string(),
        }
    }

    /// The image as the user named it.
    pub fn image(&self) -> String {
        self.container
            .labels
            .get(berth::IMAGE_REF)
            .cloned()
            .unwrap_or_else(|| image::familiar(&self.container.image))
    }
}

/// The container's OCI spec, if it carries a readable one.
pub fn spec_of(container: &Container) -> Option<Spec> {
    let any = container.spec.as_ref()?;
    serde_json::from_slice(&any.value).ok()
}

/// The command line of the container's process (`args` of its spec).
pub fn args_of(spec: Option<&Spec>) -> Vec<String> {
    spec.and_then(|s| s.process().as_ref())
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
}

/// Every container of the namespace with its task: one list call for each.
pub async fn entries(client: &Client) -> anyhow::Result<Vec<Entry>> {
    let containers = lookup::list(client, Vec::new()).await?;
    let tasks = TasksClient::new(client.channel.clone())
        .list(client.request(ListTasksRequest {
            filter: String::new(),
        }))
        .await
        .context("listing tasks")?
        .into_inner()
        .tasks;
    let mut by_id: HashMap<String, TaskState> = tasks
        .into_iter()
        .map(|p| {
            let state = TaskState {
                status: Status::try_from(p.status).unwrap_or(Status::Unknown),
                pid: p.pid,
                exit_status: p.exit_status,
                exited_at: p.exited_at,
            };
            (p.id, state)
        })
        .collect();
    Ok(containers
        .into_iter()
        .map(|c| {
            let task = by_id.remove(&c.id);
            Entry { container: c, task }
        })
        .collect())
}

/// One `--filter KEY=VALUE`.
struct Filter {
    key: String,
    value: String,
    /// For `before`/`since`: the creation time of the container named by `value`.
    at: Option<(i64, i32)>,
}

/// When `c` was created, as (seconds, nanos).
fn created(c: &Container) -> (i64, i32) {
    c.created_at
        .as_ref()
        .map(|t| (t.seconds, t.nanos))
        .unwrap_or_default()
}

/// Finds, for each `before`/`since` filter, the container it names (ID prefix or name) among
/// `entries` and records its creation time.
fn resolve_references(filters: &mut [Filter], entries: &[Entry]) -> anyhow::Result<()> {
    for f in filters
        .iter_mut()
        .filter(|f| f.key == "before" || f.key == "since")
    {
        let name = f.value.trim_start_matches('/');
        let found = entries
            .iter()
            .find(|e| lookup::name_of(&e.container) == name)
            .or_else(|| {
                entries
                    .iter()
                    .find(|e| e.container.id.starts_with(&f.value))
            })
            .with_context(|| format!("no such container: {}", f.value))?;
        f.at = Some(created(&found.container));
    }
    Ok(())
}

fn parse_filters(raw: &[String]) -> anyhow::Result<Vec<Filter>> {
    raw.iter()
        .map(|f| {
            let (key, value) = f
                .split_once('=')
                .with_context(|| format!("bad filter {f:?}: expected KEY=VALUE"))?;
            match key {
                "name" | "label" | "status" | "id" | "ancestor" | "before" | "since" => {}
                "exited" => {
                    value
                        .parse::<u32>()
                        .with_context(|| format!("bad exited filter {value:?}: expected a number"))?;
                }
                other => bail!(
                    "unsupported filter {other:?}: use name, label, status, id, ancestor, before, since or exited"
                ),
            }
            if key == "status"
                && !matches!(
                    value,
                    "created"
                        | "running"
                        | "paused"
                        | "exited"
                        | "restarting"
                        | "removing"
                        | "dead"
                )
            {
                bail!("bad status filter {value:?}: use created, running, paused or exited");
            }
            Ok(Filter {
                key: key.to_string(),
                value: value.to_string(),
                at: None,
            })
        })
        .collect()
}

fn filter_matches(filter: &Filter, entry: &Entry) -> bool {
    let c = &entry.container;
    match filter.key.as_str() {
        "name" => lookup::name_of(c).contains(filter.value.trim_start_matches('/')),
        "id" => c.id.starts_with(&filter.value),
        "status" => entry.state() == filter.value,
        "label" => match filter.value.split_once('=') {
            Some((k, v)) => c.labels.get(k).map(String::as_str) == Some(v),
            None => c.labels.contains_key(&filter.value),
        },
        "ancestor" => {
            let want = image::normalize(&filter.value);
            c.image == filter.value || c.image == want || entry.image() == filter.value
        }
        "before" => filter.at.is_some_and(|at| created(c) < at),
        "since" => filter.at.is_some_and(|at| created(c) > at),
        "exited" => {
            entry.state() == "exited"
                && entry
                    .task
                    .as_ref()
                    .is_some_and(|t| t.exit_status.to_string() == filter.value)
        }
        _ => false,
    }
}

/// docker's rule: filters with the same key are alternatives, different keys must all hold.
fn matches_all(filters: &[Filter], entry: &Entry) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|f| f.key.as_str()).collect();
    keys.dedup();
    keys.iter().all(|key| {
        filters
            .iter()
            .filter(|f| f.key == *key)
            .any(|f| filter_matches(f, entry))
    })
}

fn quoted_command(args: &[String]) -> String {
    format!("\"{}\"", args.join(" "))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The JSON fields of docker's `ps --format json`.
fn row(entry: &Entry, no_trunc: bool) -> Value {
    let c = &entry.container;
    let spec = spec_of(c);
    let created = when::from_proto(c.created_at.as_ref());
    let id = if no_trunc {
        c.id.clone()
    } else {
        lookup::short_id(&c.id).to_string()
    };
    let mounts: Vec<String> = c
        .labels
        .get(berth::VOLUMES)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "ID": id,
        "Image": entry.image(),
        "Command": quoted_command(&args_of(spec.as_ref())),
        "CreatedAt": when::created_at(created),
        "RunningFor": when::ago(created),
        "Status": entry.status(),
        "State": entry.state(),
        "Names": lookup::name_of(c),
        "Labels": c.labels,
        "Mounts": mounts.join(","),
        "LocalVolumes": mounts.len().to_string(),
        "Ports": "",
        "Size": "",
        "Networks": "",
    })
}

/// Runs `ps`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let mut filters = parse_filters(&args.filters)?;
    let last = if args.latest { Some(1) } else { args.last };
    let all = args.all
        || last.is_some()
        || filters
            .iter()
            .any(|f| f.key == "status" || f.key == "exited");
    let found = entries(client).await?;
    resolve_references(&mut filters, &found)?;
    let mut list: Vec<Entry> = found
        .into_iter()
        .filter(|e| all || matches!(e.state(), "running" | "paused"))
        .filter(|e| matches_all(&filters, e))
        .collect();
    // Newest first, like docker.
    list.sort_by_key(|e| std::cmp::Reverse(created(&e.container)));
    if let Some(n) = last {
        list.truncate(n);
    }
    if args.quiet {
        for e in &list {
            let id = &e.container.id;
            println!(
                "{}",
                if args.no_trunc {
                    id
                } else {
                    lookup::short_id(id)
                }
            );
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|e| row(e, args.no_trunc)).collect();
    let headers = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let no_trunc = args.no_trunc;
    output::print_items(&format, &rows, &headers, |v| {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let command = text("Command");
        vec![
            text("ID"),
            text("Image"),
            if no_trunc {
                command
            } else {
                truncate(&command, 20)
            },
            text("RunningFor"),
            text("Status"),
            text("Ports"),
            text("Names"),
        ]
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, status: Option<Status>) -> Entry {
        let mut c = Container {
            id: format!("{name}0123456789"),
            image: "docker.io/library/busybox:1".into(),
            ..Default::default()
        };
        c.labels.insert(berth::NAME.into(), name.into());
        c.labels.insert("tier".into(), "web".into());
        Entry {
            container: c,
            task: status.map(|status| TaskState {
                status,
                pid: 0,
                exit_status: 3,
                exited_at: None,
            }),
        }
    }

    #[test]
    fn filters_combine_like_docker() {
        let web = entry("web", Some(Status::Running));
        let db = entry("db", Some(Status::Stopped));
        let new = entry("new", None);
        let f = parse_filters(&["status=running".into(), "status=exited".into()]).unwrap();
        assert!(matches_all(&f, &web) && matches_all(&f, &db) && !matches_all(&f, &new));
        let f = parse_filters(&["label=tier=web".into(), "name=we".into()]).unwrap();
        assert!(matches_all(&f, &web) && !matches_all(&f, &db));
        let f = parse_filters(&["ancestor=busybox:1".into()]).unwrap();
        assert!(matches_all(&f, &new));
        assert!(parse_filters(&["nope=1".into()]).is_err());
        assert!(parse_filters(&["status=sleeping".into()]).is_err());
        assert_eq!(db.status(), "Exited (3)");
        assert_eq!(new.status(), "Created");
        assert_eq!(truncate("\"sleep 1000 and more words\"", 10), "\"sleep 10…");
    }
}
