//! `berthctl system info` / `berthctl info`: like `docker info`.

use anyhow::Context as _;
use containerd_client::services::v1::{
    ListImagesRequest, PluginsRequest, images_client::ImagesClient,
    introspection_client::IntrospectionClient, version_client::VersionClient,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    lookup,
    output::{self, Format},
};

/// The snapshotter berthctl uses unless told otherwise.
const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
/// The runtime berthctl uses unless told otherwise.
const DEFAULT_RUNTIME: &str = "io.containerd.berth.v2";

/// Show system-wide information: containers, images, plugins, host (like `docker info`).
///
/// Example: `berthctl info --format '{{.ContainersRunning}}'`
#[derive(clap::Args)]
pub struct InfoArgs {
    /// `json` or a Go template over the fields of `--format json`.
    #[arg(short, long)]
    format: Option<String>,
}

/// A `KEY: value` field of a Linux `/proc` or `/etc` file.
fn field_of(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once([':', '='])?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// What the host says about itself (berthd runs on the host whose socket this is).
fn host() -> Value {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mem_kib: u64 = field_of("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "KernelVersion": kernel.trim(),
        "OperatingSystem": field_of("/etc/os-release", "PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        "OSType": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_kib * 1024,
        "Name": hostname.trim(),
    })
}

/// Gathers the information as one JSON object.
async fn gather(client: &Client) -> anyhow::Result<Value> {
    let version = VersionClient::new(client.channel.clone())
        .version(client.request(()))
        .await
        .context("asking berthd's version")?
        .into_inner();
    let mut introspection = IntrospectionClient::new(client.channel.clone());
    let plugins = introspection
        .plugins(client.request(PluginsRequest {
            filters: Vec::new(),
        }))
        .await
        .context("listing plugins")?
        .into_inner()
        .plugins;
    let uuid = introspection
        .server(client.request(()))
        .await
        .map(|r| r.into_inner().uuid)
        .unwrap_or_default();
    let of_type = |kind: &str| -> Vec<String> {
        plugins
            .iter()
            .filter(|p| p.r#type == kind && p.init_err.is_none())
            .map(|p| p.id.clone())
            .collect()
    };
    let runtimes: Vec<String> = of_type("io.containerd.runtime.v2")
        .iter()
        .map(|id| format!("io.containerd.runtime.v2.{id}"))
        .collect();
    let root = plugins
        .iter()
        .find(|p| p.r#type == "io.containerd.content.v1")
        .and_then(|p| p.exports.get("root"))
        .and_then(|r| {
            std::path::Path::new(r)
                .parent()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_default();
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let containers = lookup::list(client, Vec::new()).await?;
    for c in &containers {
        match crate::task::state(client, &c.id)
            .await?
            .map(|t| t.docker_state())
        {
            Some("running") => running += 1,
            Some("paused") => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = ImagesClient::new(client.channel.clone())
        .list(client.request(ListImagesRequest {
            filters: Vec::new(),
        }))
        .await
        .context("listing images")?
        .into_inner()
        .images
        .len();
    let mut info = json!({
        "ID": uuid,
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "ServerVersion": version.version,
        "ServerRevision": version.revision,
        "Driver": DEFAULT_SNAPSHOTTER,
        "Snapshotters": of_type("io.containerd.snapshotter.v1"),
        "Runtimes": runtimes,
        "DefaultRuntime": DEFAULT_RUNTIME,
        "BerthRootDir": root,
        "Namespace": client.namespace(),
        "ClientVersion": env!("CARGO_PKG_VERSION"),
    });
    if let (Some(map), Value::Object(host)) = (info.as_object_mut(), host()) {
        map.extend(host);
    }
    Ok(info)
}

fn print_text(i: &Value) {
    let s = |k: &str| match &i[k] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    let mem_gib = i["MemTotal"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64;
    println!("Client:\n Version:    {}", s("ClientVersion"));
    println!("\nServer:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Snapshotters: {}", s("Snapshotters"));
    println!(" Runtimes: {}", s("Runtimes"));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(" Total Memory: {mem_gib:.2}GiB");
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Berth Root Dir: {}", s("BerthRootDir"));
    println!(" Namespace: {}", s("Namespace"));
}

/// Prints the information as text, JSON or through a template.
pub async fn run(args: InfoArgs, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let info = gather(client).await?;
    match format {
        Format::Table => print_text(&info),
        other => output::print_objects(&other, &[info])?,
    }
    Ok(())
}
