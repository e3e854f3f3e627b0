//! Making a container from `run`/`create` flags: image (pulled when the policy says so),
//! spec, labels, volumes, the container record and its snapshot.
//!
//! The common path is kept to as few requests as possible: one image resolve, one filtered
//! `List` only when `--name` is given, `Containers.Create` and `Snapshots.Prepare`. The task
//! is created later with empty `rootfs`: berthd takes the mounts from the snapshot.

use std::{
    collections::HashMap,
    io::IsTerminal,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use berth_proto::{
    berth::{
        transfer::v1::{PullRequest, RegistryOptions, transfer_client::TransferClient},
        volumes::v1::{CreateVolumeRequest, RemoveVolumeRequest, volumes_client::VolumesClient},
    },
    labels::{berth as label, restart},
};
use berth_spec::{BindMount, SpecBuilder};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest,
    container::Runtime,
    containers_client::ContainersClient,
    snapshots::{PrepareSnapshotRequest, RemoveSnapshotRequest, snapshots_client::SnapshotsClient},
};

use super::{
    flags::{self, CreateFlags, MountSource, PullPolicy},
    rootfs::MountedRootfs,
    seed::{self, Seed},
};
use crate::{
    client::Client,
    commands::pull::Display,
    image::{self, ResolvedImage},
    lookup,
};

/// A container just made.
pub struct Created {
    /// Its 64-hex-digit ID.
    pub id: String,
    /// The record as created.
    pub container: Container,
}

/// Creates the container that `flags` describe; `auto_remove` sets `berth.io/auto-remove`.
/// `starting` (run, not create) also tells the restart monitor to keep it running; for a
/// created container `start` does that, so that the monitor does not start it by itself.
pub async fn create(
    client: &Client,
    flags: &CreateFlags,
    auto_remove: bool,
    starting: bool,
) -> anyhow::Result<Created> {
    let policy = flags::restart_policy(&flags.restart)?;
    if policy.is_some() && auto_remove {
        bail!("conflicting options: --restart and --rm");
    }
    let id = lookup::new_id();
    let name = flags
        .name
        .clone()
        .unwrap_or_else(|| lookup::generated_name(&id));
    let name_check = async {
        match &flags.name {
            Some(n) => lookup::check_new_name(client, n).await,
            None => Ok(()),
        }
    };
    let (checked, image) = tokio::join!(name_check, ensure_image(client, flags));
    checked?;
    let image = image?;

    let mut labels: HashMap<String, String> = flags::labels(&flags.label).into_iter().collect();
    labels.insert(label::NAME.into(), name.clone());
    labels.insert(label::IMAGE_REF.into(), flags.image.clone());
    labels.insert(label::LOG_DRIVER.into(), label::LOG_DRIVER_JSON_FILE.into());
    if let Some(policy) = policy {
        labels.insert(restart::POLICY.into(), policy);
        let status = if starting { "running" } else { "stopped" };
        labels.insert(restart::STATUS.into(), status.into());
    }
    if auto_remove {
        labels.insert(label::AUTO_REMOVE.into(), "true".into());
    }
    // Volumes are made first; whatever fails after that takes the anonymous ones back.
    let mut volumes = Mounts::default();
    let made = async {
        mounts(client, flags, &mut volumes).await?;
        if !volumes.names.is_empty() {
            labels.insert(label::VOLUMES.into(), volumes.names.join(","));
        }
        let binds = std::mem::take(&mut volumes.binds);
        make(client, flags, id, image, labels, binds, &volumes.seeds).await
    }
    .await;
    if made.is_err() {
        remove_volumes(client, &volumes.anonymous).await;
    }
    made
}

/// The rest of [`create`] once volumes exist: spec, container record and snapshot. On failure
/// nothing of these is left behind.
async fn make(
    client: &Client,
    flags: &CreateFlags,
    id: String,
    image: ResolvedImage,
    labels: HashMap<String, String>,
    binds: Vec<BindMount>,
    seeds: &[Seed],
) -> anyhow::Result<Created> {
    let user = flags.user.clone().or_else(|| {
        image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.user().clone())
    });
    let needs_rootfs = user.as_deref().is_some_and(flags::user_needs_lookup) || !seeds.is_empty();
    let mut prepared = false;
    let rootfs = if needs_rootfs {
        let mounts = prepare(client, flags, &id, &image).await?;
        prepared = true;
        let seeded = MountedRootfs::mount(&id, &mounts).and_then(|r| {
            seed_all(r.path(), seeds)?;
            Ok(r)
        });
        match seeded {
            Ok(r) => Some(r),
            Err(e) => {
                remove_snapshot(client, &flags.snapshotter, &id).await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let spec = spec(client, flags, &id, &image, binds, rootfs.as_ref());
    drop(rootfs);
    let spec = match spec {
        Ok(s) => s,
        Err(e) => {
            if prepared {
                remove_snapshot(client, &flags.snapshotter, &id).await;
            }
            return Err(e);
        }
    };
    let container = Container {
        id: id.clone(),
        labels,
        image: image.record.name.clone(),
        runtime: Some(Runtime {
            name: flags.runtime.clone(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: berth_spec::SPEC_TYPE_URL.to_string(),
            value: spec,
        }),
        snapshotter: flags.snapshotter.clone(),
        snapshot_key: id.clone(),
        ..Default::default()
    };
    let created = ContainersClient::new(client.channel.clone())
        .create(client.request(CreateContainerRequest {
            container: Some(container.clone()),
        }))
        .await;
    if let Err(status) = created {
        if prepared {
            remove_snapshot(client, &flags.snapshotter, &id).await;
        }
        return Err(status).context("creating the container");
    }
    if !prepared && let Err(e) = prepare(client, flags, &id, &image).await {
        let _ = ContainersClient::new(client.channel.clone())
            .delete(client.request(DeleteContainerRequest { id: id.clone() }))
            .await;
        return Err(e);
    }
    Ok(Created { id, container })
}

/// Prepares the container's active snapshot on the image's top layer; returns its mounts.
async fn prepare(
    client: &Client,
    flags: &CreateFlags,
    id: &str,
    image: &ResolvedImage,
) -> anyhow::Result<Vec<containerd_client::types::Mount>> {
    let mut snapshots = SnapshotsClient::new(client.channel.clone());
    let res = snapshots
        .prepare(client.request(PrepareSnapshotRequest {
            snapshotter: flags.snapshotter.clone(),
            key: id.to_string(),
            parent: image.chain_id.clone(),
            labels: HashMap::new(),
        }))
        .await;
    match res {
        Ok(r) => Ok(r.into_inner().mounts),
        Err(s) if s.code() == tonic::Code::NotFound => bail!(
            "image {} is not unpacked in snapshotter {:?} (pull it with --snapshotter {})",
            flags.image,
            flags.snapshotter,
            flags.snapshotter
        ),
        Err(s) => Err(s).context("preparing the container's root filesystem"),
    }
}

/// Removes snapshot `key` (best effort: NotFound is fine).
pub async fn remove_snapshot(client: &Client, snapshotter: &str, key: &str) {
    let _ = SnapshotsClient::new(client.channel.clone())
        .remove(client.request(RemoveSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await;
}

/// Resolves the image, pulling it first when the pull policy asks for that.
async fn ensure_image(client: &Client, flags: &CreateFlags) -> anyhow::Result<ResolvedImage> {
    let platform = flags.platform.as_deref();
    match flags.pull {
        PullPolicy::Never => image::resolve(client, &flags.image, platform).await,
        PullPolicy::Always => {
            pull(client, flags).await?;
            image::resolve(client, &flags.image, platform).await
        }
        PullPolicy::Missing => match image::resolve(client, &flags.image, platform).await {
            Ok(img) => Ok(img),
            Err(e) if e.to_string().starts_with("no such image") => {
                eprintln!("Unable to find image '{}' locally", flags.image);
                pull(client, flags).await?;
                image::resolve(client, &flags.image, platform).await
            }
            Err(e) => Err(e),
        },
    }
}

/// Pulls the image through berthd's transfer service, showing progress on stderr.
async fn pull(client: &Client, flags: &CreateFlags) -> anyhow::Result<()> {
    let req = PullRequest {
        reference: flags.image.clone(),
        platform: flags.platform.clone().unwrap_or_default(),
        snapshotter: flags.snapshotter.clone(),
        skip_unpack: false,
        registry: Some(RegistryOptions {
            plain_http: flags.plain_http,
            username: String::new(),
            password: std::env::var("BERTH_REGISTRY_PASSWORD").unwrap_or_default(),
        }),
    };
    let mut stream = TransferClient::new(client.channel.clone())
        .pull(client.request(req))
        .await
        .with_context(|| format!("pulling {}", flags.image))?
        .into_inner();
    let mut display = if std::io::stderr().is_terminal() {
        Display::Bars(Default::default(), HashMap::new())
    } else {
        Display::Quiet
    };
    while let Some(p) = stream
        .message()
        .await
        .with_context(|| format!("pulling {}", flags.image))?
    {
        if p.event == "done" {
            eprintln!("{}: pulled {}", flags.image, p.digest);
        }
        display.show(&p);
    }
    Ok(())
}

/// What `-v`/`--mount` resolve to.
#[derive(Default)]
struct Mounts {
    /// The bind mounts, volumes included.
    binds: Vec<BindMount>,
    /// Every volume used (named or anonymous).
    names: Vec<String>,
    /// The anonymous volumes created for this container.
    anonymous: Vec<String>,
    /// The empty volumes to fill from the image.
    seeds: Vec<Seed>,
}

/// Resolves `-v`/`--mount` into `out`, creating named and anonymous volumes on the way
/// (`out.anonymous` lists those made so far, also when this fails).
async fn mounts(client: &Client, flags: &CreateFlags, out: &mut Mounts) -> anyhow::Result<()> {
    let mut requests = Vec::new();
    for v in &flags.volume {
        requests.push(flags::parse_volume(v)?);
    }
    for m in &flags.mount {
        requests.push(flags::parse_mount(m)?);
    }
    for r in requests {
        let name = match &r.source {
            MountSource::Host(path) => {
                out.binds
                    .push(BindMount::new(path.clone(), r.target).readonly(r.readonly));
                continue;
            }
            MountSource::Volume(name) => name.as_str(),
            MountSource::Anonymous => "",
        };
        let anonymous = name.is_empty();
        let v = create_volume(client, name, anonymous).await?;
        if anonymous {
            out.anonymous.push(v.name.clone());
        }
        out.names.push(v.name);
        let data = PathBuf::from(v.mountpoint);
        if !r.nocopy && seed::is_empty(&data) {
            out.seeds.push(Seed {
                data: data.clone(),
                target: PathBuf::from(&r.target),
            });
        }
        out.binds
            .push(BindMount::new(data, r.target).readonly(r.readonly));
    }
    Ok(())
}

/// Fills every volume of `seeds` from the image's root filesystem at `rootfs`; on failure
/// every one is left empty again.
fn seed_all(rootfs: &Path, seeds: &[Seed]) -> anyhow::Result<()> {
    let filled = seeds.iter().try_for_each(|s| seed::seed(rootfs, s));
    if filled.is_err() {
        for s in seeds {
            seed::clear(&s.data);
        }
    }
    filled
}

/// Removes volumes `names` (best effort).
async fn remove_volumes(client: &Client, names: &[String]) {
    let mut volumes = VolumesClient::new(client.channel.clone());
    for name in names {
        let _ = volumes
            .remove(client.request(RemoveVolumeRequest {
                name: name.clone(),
                force: false,
            }))
            .await;
    }
}

/// Creates (or finds) a volume through berthd's volume service.
async fn create_volume(
    client: &Client,
    name: &str,
    anonymous: bool,
) -> anyhow::Result<berth_proto::berth::volumes::v1::Volume> {
    Ok(VolumesClient::new(client.channel.clone())
        .create(client.request(CreateVolumeRequest {
            name: name.to_string(),
            labels: HashMap::new(),
            anonymous,
        }))
        .await
        .with_context(|| format!("creating volume {name:?}"))?
        .into_inner())
}

/// Builds the container's OCI spec (JSON bytes).
fn spec(
    client: &Client,
    flags: &CreateFlags,
    id: &str,
    image: &ResolvedImage,
    binds: Vec<BindMount>,
    rootfs: Option<&MountedRootfs>,
) -> anyhow::Result<Vec<u8>> {
    let mut b = SpecBuilder::new(client.namespace(), id)
        .image_config(&image.config)
        .envs(flags::environment(flags)?)
        .terminal(flags.tty)
        .mounts(binds);
    if let Some(e) = &flags.entrypoint {
        b = b.entrypoint(if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        });
    }
    if !flags.command.is_empty() {
        b = b.args(flags.command.clone());
    }
    if let Some(w) = &flags.workdir {
        b = b.cwd(w.clone());
    }
    if let Some(u) = &flags.user {
        b = b.user(u.clone());
    }
    if let Some(r) = rootfs {
        b = b.rootfs_dir(r.path());
    }
    if let Some(h) = &flags.hostname {
        b = b.hostname(h.clone());
    }
    if flags.read_only {
        b = b.readonly_rootfs();
    }
    if flags.privileged {
        b = b.privileged();
    }
    let security = flags::security_opts(&flags.security_opt)?;
    if security.no_new_privileges {
        b = b.no_new_privileges();
    }
    if security.seccomp_unconfined {
        b = b.seccomp_unconfined();
    }
    for c in &flags.cap_add {
        b = b.cap_add(c.clone());
    }
    for c in &flags.cap_drop {
        b = b.cap_drop(c.clone());
    }
    if let Some(m) = &flags.memory {
        b = b.memory(flags::parse_bytes(m)?);
    }
    if let Some(c) = flags.cpus {
        b = b.cpus(c);
    }
    if let Some(p) = flags.pids_limit {
        b = b.pids_limit(p);
    }
    let spec = b.build()?;
    Ok(berth_spec::to_json(&spec)?)
}
