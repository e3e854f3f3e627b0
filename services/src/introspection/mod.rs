//! `containerd.services.introspection.v1.Introspection`: the plugin table and the server's
//! identity (a UUID kept in the root dir, so it survives restarts).

use std::{path::Path, sync::Arc};

use berth_proto::{
    errdefs::{Error, io_error},
    filters::{Adaptor, Filter},
    server::introspection::v1::introspection_server,
    services::v1::{
        Plugin, PluginInfoRequest, PluginInfoResponse, PluginsRequest, PluginsResponse,
        ServerResponse,
    },
};
use tonic::{Request, Response, Status};

/// The introspection service over a fixed list of plugins.
pub struct Service {
    plugins: Arc<Vec<Plugin>>,
    uuid: String,
}

/// Reads the server UUID from `dir/uuid`, creating it on first start.
pub fn server_uuid(dir: &Path) -> Result<String, Error> {
    let path = dir.join("uuid");
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => return Ok(s.trim().to_string()),
        Ok(_) => tracing::warn!(path = %path.display(), "replacing malformed server uuid"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(format!("read {}", path.display()), e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(format!("create {}", dir.display()), e))?;
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = dir.join("uuid.tmp");
    std::fs::write(&tmp, &id).map_err(|e| io_error(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_error(format!("rename {}", path.display()), e))?;
    Ok(id)
}

struct PluginFields<'a>(&'a Plugin);

impl Adaptor for PluginFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [f] if f == "type" => Some(self.0.r#type.clone()),
            [f] if f == "id" => Some(self.0.id.clone()),
            [f, cap] if f == "capabilities" => {
                self.0.capabilities.iter().find(|c| *c == cap).cloned()
            }
            _ => None,
        }
    }
}

impl Service {
    /// Introspection of `plugins` for the server identified by `uuid`.
    pub fn new(plugins: Arc<Vec<Plugin>>, uuid: String) -> Service {
        Service { plugins, uuid }
    }
}

#[tonic::async_trait]
impl introspection_server::Introspection for Service {
    async fn plugins(
        &self,
        req: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let plugins = self
            .plugins
            .iter()
            .filter(|p| filter.matches(&PluginFields(p)))
            .cloned()
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _req: Request<()>) -> Result<Response<ServerResponse>, Status> {
        Ok(Response::new(ServerResponse {
            uuid: self.uuid.clone(),
            pid: std::process::id() as u64,
            pidns: pid_namespace(),
            deprecations: Vec::new(),
        }))
    }

    async fn plugin_info(
        &self,
        req: Request<PluginInfoRequest>,
    ) -> Result<Response<PluginInfoResponse>, Status> {
        let req = req.into_inner();
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.r#type == req.r#type && p.id == req.id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("plugin {}.{}", req.r#type, req.id)))?;
        Ok(Response::new(PluginInfoResponse {
            plugin: Some(plugin),
            extra: None,
        }))
    }
}

/// The inode of this process's pid namespace, as containerd reports it.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
}
