//! Image transfers done inside the daemon: pull (resolve, fetch, verify, unpack, name) and
//! push, for berthctl and, later, the Docker facade and the CRI adapter.
//!
//! A pull runs under its own expiring lease, so nothing it has fetched can be collected before
//! the image record holds it, and a crash mid-pull keeps what was verified (the lease expires
//! an hour later if nobody resumes). Blobs stream from the registry straight into the content
//! store, which verifies size and digest at commit; an interrupted blob resumes at its ingest's
//! offset with an HTTP Range request. Layers download in parallel (a bounded number at a
//! time) while unpacking proceeds in order: each layer is applied as soon as it is stored and
//! its parent snapshot is committed, so unpacking overlaps with the downloads after it.

mod archive;
pub mod grpc;
mod pull;
mod push;

use std::{path::PathBuf, sync::Arc};

use berth_proto::berth::transfer::v1::Progress;
use tokio::sync::mpsc;

use crate::{
    content::Content,
    diff::Differ,
    images::Images,
    leases::Leases,
    registry::{Credentials, HostsConfig, Keychain, Reference, RegistryClient},
    snapshots::Snapshots,
};

pub use archive::ImportOptions;
pub use pull::PullOptions;
pub use push::PushOptions;

/// The default snapshotter for unpacking.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
/// How many blobs of one pull download at once.
pub const PARALLEL_DOWNLOADS: usize = 3;

/// The transfer engine.
pub struct Transfer {
    content: Arc<Content>,
    images: Arc<Images>,
    snapshots: Arc<Snapshots>,
    differ: Arc<Differ>,
    leases: Arc<Leases>,
    registry: RegistryClient,
    hosts: HostsConfig,
    docker_config: PathBuf,
}

/// Where progress goes (a dropped receiver just stops the reports).
pub type ProgressTx = mpsc::Sender<Progress>;

/// Registry settings of the engine.
pub struct RegistrySettings {
    /// Per-registry host configuration (hosts.toml directory).
    pub hosts: HostsConfig,
    /// Docker `config.json` with credentials, read at every transfer.
    pub docker_config: PathBuf,
}

impl Transfer {
    /// An engine over the daemon's stores.
    pub fn new(
        content: Arc<Content>,
        images: Arc<Images>,
        snapshots: Arc<Snapshots>,
        differ: Arc<Differ>,
        leases: Arc<Leases>,
        settings: RegistrySettings,
    ) -> Result<Transfer, berth_proto::errdefs::Error> {
        let registry = RegistryClient::builder()
            .hosts(settings.hosts.clone())
            .build()?;
        Ok(Transfer {
            content,
            images,
            snapshots,
            differ,
            leases,
            registry,
            hosts: settings.hosts,
            docker_config: settings.docker_config,
        })
    }

    /// A client for `reference`: explicit credentials first, then the docker config's, else
    /// anonymous (sharing the engine's connection pool).
    fn client_for(
        &self,
        reference: &Reference,
        credentials: &Option<(String, String)>,
        plain_http: bool,
    ) -> Result<RegistryClient, berth_proto::errdefs::Error> {
        let keychain = match credentials {
            Some((user, password)) if !user.is_empty() => {
                let mut keychain = Keychain::new();
                keychain.insert(&reference.registry, Credentials::new(user, password));
                Some(keychain)
            }
            _ if self.docker_config.is_file() => {
                let keychain = Keychain::from_docker_config_file(&self.docker_config)?;
                keychain
                    .get(&reference.registry)
                    .is_some()
                    .then_some(keychain)
            }
            _ => None,
        };
        let client = match keychain {
            Some(k) => RegistryClient::builder()
                .hosts(self.hosts.clone())
                .keychain(k)
                .build()?,
            None => self.registry.clone(),
        };
        Ok(client.with_plain_http(plain_http))
    }
}

/// How long a transfer's lease protects what it stored if the transfer never finishes.
const TRANSFER_LEASE: chrono::Duration = chrono::Duration::hours(1);

impl Transfer {
    /// Creates an expiring lease `<kind>-<uuid>` in `namespace` that holds what a transfer
    /// stores until it names it; returns the scope to work in and the lease id to release.
    fn transfer_lease(
        &self,
        namespace: &str,
        kind: &str,
    ) -> Result<(crate::request::Scope, String), berth_proto::errdefs::Error> {
        let lease = format!("{kind}-{}", uuid::Uuid::new_v4());
        let expire = chrono::Utc::now() + TRANSFER_LEASE;
        self.leases.create(
            namespace,
            &lease,
            std::collections::HashMap::from([(
                crate::gc::labels::EXPIRE.to_string(),
                expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )]),
        )?;
        let scope = crate::request::Scope {
            namespace: namespace.to_string(),
            lease: Some(lease.clone()),
        };
        Ok((scope, lease))
    }

    /// Points image `name` of `ns` at `target` (creating or updating it) and reports `done`.
    async fn name_image(
        &self,
        ns: &str,
        name: &str,
        target: &crate::registry::Descriptor,
        tx: &ProgressTx,
    ) -> Result<(), berth_proto::errdefs::Error> {
        let image = crate::images::Image {
            name: name.to_string(),
            labels: Default::default(),
            target: crate::metadata::DescriptorRecord {
                media_type: target.media_type.clone(),
                digest: target.digest.to_string(),
                size: target.size,
                annotations: Default::default(),
            },
        };
        match self.images.create(ns, image.clone()) {
            Ok(_) => {}
            Err(e) if e.kind == berth_proto::errdefs::Kind::AlreadyExists => {
                self.images.update(ns, image, &["target".to_string()])?;
            }
            Err(e) => return Err(e),
        }
        let _ = tx
            .send(Progress {
                event: "done".into(),
                id: name.to_string(),
                digest: target.digest.to_string(),
                ..Default::default()
            })
            .await;
        Ok(())
    }
}

/// Sends a progress event, ignoring a receiver that went away.
async fn report(tx: &ProgressTx, event: &str, id: &str, media_type: &str, offset: i64, total: i64) {
    let _ = tx
        .send(Progress {
            event: event.to_string(),
            id: id.to_string(),
            media_type: media_type.to_string(),
            offset,
            total,
            digest: String::new(),
        })
        .await;
}
