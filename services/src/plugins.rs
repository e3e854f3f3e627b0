//! berthd's builtin plugins, as data: containerd's type URI, an id, what each requires, and
//! the function that starts it. [`init_all`] runs them in dependency order, and the
//! introspection service reports this same table.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
};

use berth_proto::{errdefs::Error, server, services::v1::Plugin as PluginInfo};
use tonic::service::RoutesBuilder;

use crate::{
    config::Config,
    containers::{self, Containers},
    content::{self, Content, store::LocalStore},
    diff::{self, Differ},
    events::{self, Exchange},
    gc::{
        Collector,
        scheduler::{Scheduler, Timing},
    },
    images::{self, Images},
    introspection,
    leases::{self, Leases},
    logs::{self, LogDirs, Logs},
    metadata::Store,
    namespaces::{self, Namespaces},
    registry::HostsConfig,
    restart::Monitor,
    runtime,
    snapshots::{self, Snapshots, Snapshotters, meta::SnapshotMeta},
    tasks::{self, Tasks},
    transfer::{self, RegistrySettings, Transfer},
    version,
    volumes::{self, Volumes, users::ContainerUsers},
};

/// containerd's plugin type URIs used by Berth.
pub mod types {
    /// The event exchange.
    pub const EVENT: &str = "io.containerd.event.v1";
    /// The metadata store.
    pub const METADATA: &str = "io.containerd.metadata.v1";
    /// The content store.
    pub const CONTENT: &str = "io.containerd.content.v1";
    /// The garbage collection scheduler.
    pub const GC: &str = "io.containerd.gc.v1";
    /// Core services behind the gRPC layer.
    pub const SERVICE: &str = "io.containerd.service.v1";
    /// The lease manager.
    pub const LEASE: &str = "io.containerd.lease.v1";
    /// Snapshotters.
    pub const SNAPSHOTTER: &str = "io.containerd.snapshotter.v1";
    /// Differs.
    pub const DIFF: &str = "io.containerd.differ.v1";
    /// The transfer engine.
    pub const TRANSFER: &str = "io.containerd.transfer.v1";
    /// gRPC services.
    pub const GRPC: &str = "io.containerd.grpc.v1";
    /// Task runtimes (shim v2).
    pub const RUNTIME: &str = "io.containerd.runtime.v2";
    /// Internal daemon machinery (the restart monitor).
    pub const INTERNAL: &str = "io.containerd.internal.v1";
}

/// What plugins build and share while they start.
pub struct InitContext<'a> {
    /// The daemon's configuration.
    pub config: &'a Config,
    /// The gRPC services registered so far.
    pub routes: &'a mut RoutesBuilder,
    exchange: Option<Arc<Exchange>>,
    store: Option<Arc<Store>>,
    blobs: Option<Arc<LocalStore>>,
    gate: Arc<RwLock<()>>,
    gc: Option<Scheduler>,
    content: Option<Arc<Content>>,
    namespaces: Option<Arc<Namespaces>>,
    leases: Option<Arc<Leases>>,
    images: Option<Arc<Images>>,
    containers: Option<Arc<Containers>>,
    snapshotters: Snapshotters,
    snapshot_gate: Arc<RwLock<()>>,
    snapshots: Option<Arc<Snapshots>>,
    differ: Option<Arc<Differ>>,
    transfer: Option<Arc<Transfer>>,
    runtime: Option<Arc<runtime::Manager>>,
    table: Arc<Vec<PluginInfo>>,
}

fn missing(what: &str) -> Error {
    Error::internal(format!("plugin dependency {what} not initialised"))
}

impl InitContext<'_> {
    /// The directory a plugin keeps its data in: `<root>/<type>.<id>`.
    pub fn plugin_root(&self, plugin: &Plugin) -> PathBuf {
        self.config
            .root
            .join(format!("{}.{}", plugin.kind, plugin.id))
    }

    fn exchange(&self) -> Result<Arc<Exchange>, Error> {
        self.exchange.clone().ok_or_else(|| missing("exchange"))
    }
    fn store(&self) -> Result<Arc<Store>, Error> {
        self.store.clone().ok_or_else(|| missing("metadata"))
    }
    fn blobs(&self) -> Result<Arc<LocalStore>, Error> {
        self.blobs.clone().ok_or_else(|| missing("content store"))
    }
    fn gc(&self) -> Result<Scheduler, Error> {
        self.gc.clone().ok_or_else(|| missing("gc scheduler"))
    }
    fn runtime(&self) -> Result<Arc<runtime::Manager>, Error> {
        self.runtime
            .clone()
            .ok_or_else(|| missing("runtime manager"))
    }
}

/// One builtin plugin.
pub struct Plugin {
    /// containerd's type URI.
    pub kind: &'static str,
    /// The plugin's id within its type.
    pub id: &'static str,
    /// The types it needs started first.
    pub requires: &'static [&'static str],
    /// Starts it.
    pub init: fn(&Plugin, &mut InitContext<'_>) -> Result<(), Error>,
}

/// Every builtin plugin.
pub const BUILTINS: &[Plugin] = &[
    Plugin {
        kind: types::EVENT,
        id: "exchange",
        requires: &[],
        init: init_exchange,
    },
    Plugin {
        kind: types::METADATA,
        id: "sled",
        requires: &[],
        init: init_metadata,
    },
    Plugin {
        kind: types::CONTENT,
        id: "content",
        requires: &[],
        init: init_content_store,
    },
    Plugin {
        kind: types::SNAPSHOTTER,
        id: "overlayfs",
        requires: &[types::METADATA],
        init: init_overlayfs,
    },
    Plugin {
        kind: types::SNAPSHOTTER,
        id: "native",
        requires: &[types::METADATA],
        init: init_native,
    },
    Plugin {
        kind: types::GC,
        id: "scheduler",
        requires: &[types::METADATA, types::CONTENT, types::SNAPSHOTTER],
        init: init_gc,
    },
    Plugin {
        kind: types::SERVICE,
        id: "snapshots-service",
        requires: &[types::SNAPSHOTTER, types::METADATA, types::EVENT, types::GC],
        init: init_snapshots_service,
    },
    Plugin {
        kind: types::SERVICE,
        id: "content-service",
        requires: &[types::METADATA, types::CONTENT, types::EVENT, types::GC],
        init: init_content_service,
    },
    Plugin {
        kind: types::SERVICE,
        id: "namespaces-service",
        requires: &[types::METADATA, types::EVENT],
        init: init_namespaces_service,
    },
    Plugin {
        kind: types::SERVICE,
        id: "images-service",
        requires: &[types::METADATA, types::EVENT, types::GC],
        init: init_images_service,
    },
    Plugin {
        kind: types::SERVICE,
        id: "containers-service",
        requires: &[types::METADATA, types::EVENT, types::GC],
        init: init_containers_service,
    },
    Plugin {
        kind: types::LEASE,
        id: "manager",
        requires: &[types::METADATA, types::GC],
        init: init_leases,
    },
    Plugin {
        kind: types::GRPC,
        id: "version",
        requires: &[],
        init: init_grpc_version,
    },
    Plugin {
        kind: types::GRPC,
        id: "content",
        requires: &[types::SERVICE],
        init: init_grpc_content,
    },
    Plugin {
        kind: types::GRPC,
        id: "namespaces",
        requires: &[types::SERVICE],
        init: init_grpc_namespaces,
    },
    Plugin {
        kind: types::DIFF,
        id: "walking",
        requires: &[types::SERVICE, types::SNAPSHOTTER],
        init: init_differ,
    },
    Plugin {
        kind: types::GRPC,
        id: "diff",
        requires: &[types::DIFF],
        init: init_grpc_diff,
    },
    Plugin {
        kind: types::TRANSFER,
        id: "local",
        requires: &[types::SERVICE, types::DIFF, types::LEASE],
        init: init_transfer,
    },
    Plugin {
        kind: types::GRPC,
        id: "transfer",
        requires: &[types::TRANSFER],
        init: init_grpc_transfer,
    },
    Plugin {
        kind: types::GRPC,
        id: "snapshots",
        requires: &[types::SERVICE],
        init: init_grpc_snapshots,
    },
    Plugin {
        kind: types::RUNTIME,
        id: "task",
        requires: &[types::EVENT],
        init: init_runtime,
    },
    Plugin {
        kind: types::GRPC,
        id: "containers",
        requires: &[types::SERVICE, types::RUNTIME],
        init: init_grpc_containers,
    },
    Plugin {
        kind: types::GRPC,
        id: "tasks",
        requires: &[types::SERVICE, types::RUNTIME],
        init: init_grpc_tasks,
    },
    Plugin {
        kind: types::GRPC,
        id: "logs",
        requires: &[types::SERVICE, types::RUNTIME],
        init: init_grpc_logs,
    },
    Plugin {
        kind: types::GRPC,
        id: "images",
        requires: &[types::SERVICE],
        init: init_grpc_images,
    },
    Plugin {
        kind: types::GRPC,
        id: "leases",
        requires: &[types::LEASE],
        init: init_grpc_leases,
    },
    Plugin {
        kind: types::GRPC,
        id: "events",
        requires: &[types::EVENT],
        init: init_grpc_events,
    },
    Plugin {
        kind: types::GRPC,
        id: "healthcheck",
        requires: &[],
        init: init_grpc_health,
    },
    Plugin {
        kind: types::GRPC,
        id: "introspection",
        requires: &[],
        init: init_grpc_introspection,
    },
    Plugin {
        kind: types::GRPC,
        id: "volumes",
        requires: &[types::SERVICE],
        init: init_grpc_volumes,
    },
    Plugin {
        kind: types::INTERNAL,
        id: "restart",
        requires: &[types::SERVICE, types::RUNTIME],
        init: init_restart,
    },
];

/// The plugins in an order where each comes after everything it requires.
pub fn ordered(plugins: &'static [Plugin]) -> Result<Vec<&'static Plugin>, Error> {
    let mut done: Vec<&'static Plugin> = Vec::with_capacity(plugins.len());
    let mut left: Vec<&'static Plugin> = plugins.iter().collect();
    while !left.is_empty() {
        let pending: Vec<&'static Plugin> = left.clone();
        let ready = |p: &&'static Plugin| {
            p.requires.iter().all(|r| {
                pending
                    .iter()
                    .all(|other| other.kind != *r || std::ptr::eq(*other, *p))
            })
        };
        let (now, later): (Vec<&'static Plugin>, Vec<&'static Plugin>) =
            left.into_iter().partition(ready);
        if now.is_empty() {
            let names: Vec<String> = later
                .iter()
                .map(|p| format!("{}.{}", p.kind, p.id))
                .collect();
            return Err(Error::internal(format!(
                "plugin dependency cycle among {}",
                names.join(", ")
            )));
        }
        done.extend(now);
        left = later;
    }
    Ok(done)
}

fn describe(plugin: &Plugin, config: &Config) -> PluginInfo {
    let mut exports = HashMap::new();
    if matches!(
        plugin.kind,
        types::CONTENT | types::METADATA | types::SNAPSHOTTER
    ) {
        exports.insert(
            "root".to_string(),
            config
                .root
                .join(format!("{}.{}", plugin.kind, plugin.id))
                .display()
                .to_string(),
        );
    }
    PluginInfo {
        r#type: plugin.kind.to_string(),
        id: plugin.id.to_string(),
        requires: plugin.requires.iter().map(|r| r.to_string()).collect(),
        platforms: Vec::new(),
        exports,
        capabilities: Vec::new(),
        init_err: None,
    }
}

/// Starts every builtin plugin; returns the gRPC routes they registered.
pub fn init_all(config: &Config) -> Result<RoutesBuilder, Error> {
    let order = ordered(BUILTINS)?;
    let table = Arc::new(order.iter().map(|p| describe(p, config)).collect());
    let mut routes = RoutesBuilder::default();
    let mut cx = InitContext {
        config,
        routes: &mut routes,
        exchange: None,
        store: None,
        blobs: None,
        gate: Arc::new(RwLock::new(())),
        gc: None,
        content: None,
        namespaces: None,
        leases: None,
        images: None,
        containers: None,
        snapshotters: Snapshotters::new(),
        snapshot_gate: Arc::new(RwLock::new(())),
        snapshots: None,
        differ: None,
        transfer: None,
        runtime: None,
        table,
    };
    for plugin in order {
        tracing::debug!(r#type = plugin.kind, id = plugin.id, "loading plugin");
        (plugin.init)(plugin, &mut cx)
            .map_err(|e| e.context(format!("plugin {}.{}", plugin.kind, plugin.id)))?;
    }
    Ok(routes)
}

fn init_exchange(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.exchange = Some(Arc::new(Exchange::new()));
    Ok(())
}

fn init_metadata(p: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.store = Some(Arc::new(Store::open(&cx.plugin_root(p))?));
    Ok(())
}

fn init_content_store(p: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.blobs = Some(Arc::new(LocalStore::open(cx.plugin_root(p))?));
    Ok(())
}

fn init_overlayfs(p: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let meta = Arc::new(SnapshotMeta::new(cx.store()?, p.id));
    let sn = berth_snapshotter::snapshots::Overlay::new(&cx.plugin_root(p), meta)?;
    cx.snapshotters.insert(p.id.to_string(), Arc::new(sn));
    Ok(())
}

fn init_native(p: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let meta = Arc::new(SnapshotMeta::new(cx.store()?, p.id));
    let sn = berth_snapshotter::snapshots::Native::new(&cx.plugin_root(p), meta)?;
    cx.snapshotters.insert(p.id.to_string(), Arc::new(sn));
    Ok(())
}

fn init_snapshots_service(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.snapshots = Some(Arc::new(Snapshots::new(
        cx.snapshotters.clone(),
        cx.store()?,
        cx.exchange()?,
        cx.gc()?,
        cx.snapshot_gate.clone(),
    )));
    Ok(())
}

fn init_gc(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let collector = Arc::new(Collector::new(
        cx.store()?,
        cx.blobs()?,
        cx.gate.clone(),
        cx.snapshotters.clone(),
        cx.snapshot_gate.clone(),
    ));
    let timing = Timing {
        schedule_delay: cx.config.gc.schedule_delay,
        startup_delay: cx.config.gc.startup_delay,
    };
    cx.gc = Some(Scheduler::start(collector, timing));
    Ok(())
}

fn init_content_service(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.content = Some(Arc::new(Content::new(
        cx.store()?,
        cx.blobs()?,
        cx.exchange()?,
        cx.gc()?,
        cx.gate.clone(),
    )));
    Ok(())
}

fn init_namespaces_service(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.namespaces = Some(Arc::new(Namespaces::new(cx.store()?, cx.exchange()?)));
    Ok(())
}

fn init_images_service(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.images = Some(Arc::new(Images::new(cx.store()?, cx.exchange()?, cx.gc()?)));
    Ok(())
}

fn init_containers_service(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.containers = Some(Arc::new(
        Containers::new(cx.store()?, cx.exchange()?, cx.gc()?)
            .with_logs(LogDirs::new(&cx.config.root)),
    ));
    Ok(())
}

fn init_leases(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.leases = Some(Arc::new(Leases::new(cx.store()?, cx.gc()?)));
    Ok(())
}

/// Applies the configured message size limits to a generated server.
macro_rules! limits {
    ($cx:expr, $server:expr) => {
        $server
            .max_decoding_message_size($cx.config.grpc.max_recv_message_size)
            .max_encoding_message_size($cx.config.grpc.max_send_message_size)
    };
}

fn init_grpc_version(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    cx.routes
        .add_service(server::version::v1::version_server::VersionServer::new(
            version::Service,
        ));
    Ok(())
}

fn init_grpc_content(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let content = cx
        .content
        .clone()
        .ok_or_else(|| missing("content service"))?;
    let svc = server::content::v1::content_server::ContentServer::new(content::grpc::Service::new(
        content,
    ));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_namespaces(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let ns = cx
        .namespaces
        .clone()
        .ok_or_else(|| missing("namespaces service"))?;
    let svc = server::namespaces::v1::namespaces_server::NamespacesServer::new(
        namespaces::grpc::Service::new(ns),
    );
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_differ(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let content = cx
        .content
        .clone()
        .ok_or_else(|| missing("content service"))?;
    let roots = BUILTINS
        .iter()
        .filter(|p| p.kind == types::SNAPSHOTTER)
        .map(|p| cx.plugin_root(p))
        .collect();
    cx.differ = Some(Arc::new(Differ::new(content, roots)));
    Ok(())
}

fn init_grpc_diff(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let differ = cx.differ.clone().ok_or_else(|| missing("differ"))?;
    let svc = server::diff::v1::diff_server::DiffServer::new(diff::grpc::Service::new(differ));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_transfer(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let settings = RegistrySettings {
        hosts: HostsConfig::new().with_dir(&cx.config.registry.config_path),
        docker_config: cx.config.registry.docker_config.clone(),
    };
    cx.transfer = Some(Arc::new(Transfer::new(
        cx.content
            .clone()
            .ok_or_else(|| missing("content service"))?,
        cx.images.clone().ok_or_else(|| missing("images service"))?,
        cx.snapshots
            .clone()
            .ok_or_else(|| missing("snapshots service"))?,
        cx.differ.clone().ok_or_else(|| missing("differ"))?,
        cx.leases.clone().ok_or_else(|| missing("lease manager"))?,
        settings,
    )?));
    Ok(())
}

fn init_grpc_transfer(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let t = cx
        .transfer
        .clone()
        .ok_or_else(|| missing("transfer engine"))?;
    let svc = berth_proto::berth::transfer::v1::transfer_server::TransferServer::new(
        transfer::grpc::Service::new(t),
    );
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_snapshots(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let sn = cx
        .snapshots
        .clone()
        .ok_or_else(|| missing("snapshots service"))?;
    let svc = server::snapshots::v1::snapshots_server::SnapshotsServer::new(
        snapshots::grpc::Service::new(sn),
    );
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_containers(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let c = cx
        .containers
        .clone()
        .ok_or_else(|| missing("containers service"))?;
    let svc = server::containers::v1::containers_server::ContainersServer::new(
        containers::grpc::Service::new(c, cx.runtime()?),
    );
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

/// runc's state dir for this daemon, under its state dir.
fn runc_root(config: &Config) -> PathBuf {
    config.state.join("runc")
}

fn init_runtime(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let config = cx.config;
    let mut ttrpc = config.grpc.address.clone().into_os_string();
    ttrpc.push(".ttrpc");
    let exe = std::env::current_exe()
        .map_err(|e| Error::internal(format!("locate berthd's executable: {e}")))?;
    let settings = runtime::Settings {
        state: config.state.join(runtime::bundle::DIR),
        root: config.root.join(runtime::bundle::DIR),
        runc_root: runc_root(config),
        addresses: runtime::binary::Addresses {
            grpc: config.grpc.address.clone(),
            ttrpc: PathBuf::from(ttrpc),
            exe,
        },
        shims: config.runtime.shims.clone(),
    };
    cx.runtime = Some(runtime::Manager::start(settings, cx.exchange()?)?);
    Ok(())
}

fn init_grpc_tasks(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let t = Tasks::new(
        cx.runtime()?,
        cx.containers
            .clone()
            .ok_or_else(|| missing("containers service"))?,
        cx.snapshots
            .clone()
            .ok_or_else(|| missing("snapshots service"))?,
        runc_root(cx.config),
    )
    .with_logs(LogDirs::new(&cx.config.root));
    let svc =
        server::tasks::v1::tasks_server::TasksServer::new(tasks::grpc::Service::new(Arc::new(t)));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_logs(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let containers = cx
        .containers
        .clone()
        .ok_or_else(|| missing("containers service"))?;
    let logs = Logs::new(LogDirs::new(&cx.config.root), containers, cx.runtime()?);
    let svc = berth_proto::berth::logs::v1::logs_server::LogsServer::new(logs::grpc::Service::new(
        Arc::new(logs),
    ));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_images(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let images = cx.images.clone().ok_or_else(|| missing("images service"))?;
    let svc =
        server::images::v1::images_server::ImagesServer::new(images::grpc::Service::new(images));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_leases(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let leases = cx.leases.clone().ok_or_else(|| missing("lease manager"))?;
    let svc =
        server::leases::v1::leases_server::LeasesServer::new(leases::grpc::Service::new(leases));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_events(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let svc = server::events::v1::events_server::EventsServer::new(events::grpc::Service::new(
        cx.exchange()?,
    ));
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_grpc_health(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let (reporter, svc) = tonic_health::server::health_reporter();
    // Serving from the moment the routes are served; the reporter lives in the service's state.
    tokio::spawn(async move {
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    });
    cx.routes.add_service(svc);
    Ok(())
}

fn init_grpc_introspection(p: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let uuid = introspection::server_uuid(&cx.plugin_root(p))?;
    let svc = server::introspection::v1::introspection_server::IntrospectionServer::new(
        introspection::Service::new(cx.table.clone(), uuid),
    );
    cx.routes.add_service(svc);
    Ok(())
}

fn init_grpc_volumes(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let users = ContainerUsers::new(
        cx.namespaces
            .clone()
            .ok_or_else(|| missing("namespaces service"))?,
        cx.containers
            .clone()
            .ok_or_else(|| missing("containers service"))?,
    );
    let store = Volumes::open(&cx.config.root.join(volumes::DIR), Arc::new(users))?;
    let svc = berth_proto::berth::volumes::v1::volumes_server::VolumesServer::new(
        volumes::grpc::Service::new(Arc::new(store)),
    );
    cx.routes.add_service(limits!(cx, svc));
    Ok(())
}

fn init_restart(_: &Plugin, cx: &mut InitContext<'_>) -> Result<(), Error> {
    let containers = cx
        .containers
        .clone()
        .ok_or_else(|| missing("containers service"))?;
    let snapshots = cx
        .snapshots
        .clone()
        .ok_or_else(|| missing("snapshots service"))?;
    // Restarted tasks get the same log files as tasks created through the API.
    let tasks = Tasks::new(
        cx.runtime()?,
        containers.clone(),
        snapshots.clone(),
        runc_root(cx.config),
    )
    .with_logs(LogDirs::new(&cx.config.root));
    let monitor = Monitor::new(
        Arc::new(tasks),
        cx.runtime()?,
        containers,
        snapshots,
        cx.namespaces
            .clone()
            .ok_or_else(|| missing("namespaces service"))?,
    );
    Arc::new(monitor).start(&*cx.exchange()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_order_respects_requirements() {
        let order = ordered(BUILTINS).unwrap();
        assert_eq!(order.len(), BUILTINS.len());
        for (i, p) in order.iter().enumerate() {
            for r in p.requires {
                assert!(
                    order[..i].iter().any(|q| q.kind == *r),
                    "{}.{} before its requirement {r}",
                    p.kind,
                    p.id
                );
                assert!(
                    order[i..]
                        .iter()
                        .all(|q| q.kind != *r || std::ptr::eq(*q, *p))
                );
            }
        }
    }
}
