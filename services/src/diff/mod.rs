//! The differ: applies layers from the content store onto snapshot mounts, and writes the
//! difference between two mounts as a new layer blob.
//!
//! Both work on the snapshotters' directories directly instead of mounting: an overlay mount's
//! `upperdir` receives a layer with overlay whiteouts (and is what a diff of it reads), a bind
//! mount's source receives it with whiteouts applied as removals. Mounts that do not point
//! into one of Berth's snapshotter roots are refused, so a client cannot make the daemon write
//! anywhere else on the host.

pub mod grpc;

use std::{
    collections::HashMap,
    io::{BufReader, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use berth_proto::{
    digest::Digest,
    errdefs::{Error, Kind},
};
use berth_snapshotter::{
    archive::{Applied, ApplyOptions, WhiteoutMode, apply_layer, write_diff, write_overlay_diff},
    mount::Mount,
};

use crate::{content::Content, request::Scope};

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer (the default for new diffs).
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Label on a compressed layer naming its uncompressed digest.
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// The layer media types the differ can apply (compression is detected from the bytes).
const APPLICABLE: &[&str] = &[
    MEDIA_TAR,
    MEDIA_TAR_GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A layer to apply: its media type, digest and size in the content store.
pub struct Layer {
    /// Media type (decides whether it is a layer at all).
    pub media_type: String,
    /// Digest of the blob.
    pub digest: Digest,
}

/// The differ over the content store and the snapshotter roots it may write into.
pub struct Differ {
    content: Arc<Content>,
    roots: Vec<PathBuf>,
}

/// Where a mount list lets the differ work, and how.
struct Target {
    dir: PathBuf,
    mode: WhiteoutMode,
    overlay: bool,
}

fn option<'a>(mount: &'a Mount, name: &str) -> Option<&'a str> {
    mount
        .options
        .iter()
        .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
}

fn is_bind(mount: &Mount) -> bool {
    mount.kind == "bind" || mount.options.iter().any(|o| o == "bind" || o == "rbind")
}

impl Differ {
    /// A differ reading `content` and writing only below `roots`.
    pub fn new(content: Arc<Content>, roots: Vec<PathBuf>) -> Differ {
        Differ { content, roots }
    }

    fn inside_roots(&self, dir: &Path) -> Result<PathBuf, Error> {
        let real = dir
            .canonicalize()
            .map_err(|e| Error::invalid(format!("mount path {}: {e}", dir.display())))?;
        let allowed = self.roots.iter().any(|root| {
            root.canonicalize()
                .map(|r| real.starts_with(r))
                .unwrap_or(false)
        });
        if !allowed {
            return Err(Error::invalid(format!(
                "mount path {} is not inside a berth snapshotter",
                dir.display()
            )));
        }
        Ok(real)
    }

    fn target(&self, mounts: &[Mount]) -> Result<Target, Error> {
        let [mount] = mounts else {
            return Err(Error::new(
                Kind::NotImplemented,
                format!(
                    "applying onto {} mounts is not supported: not implemented",
                    mounts.len()
                ),
            ));
        };
        if mount.kind == "overlay" {
            let upper = option(mount, "upperdir")
                .ok_or_else(|| Error::invalid("overlay mount without upperdir is read-only"))?;
            return Ok(Target {
                dir: self.inside_roots(Path::new(upper))?,
                mode: WhiteoutMode::Overlay,
                overlay: true,
            });
        }
        if is_bind(mount) {
            if mount.options.iter().any(|o| o == "ro") {
                return Err(Error::invalid(
                    "cannot apply a layer onto a read-only mount",
                ));
            }
            return Ok(Target {
                dir: self.inside_roots(Path::new(&mount.source))?,
                mode: WhiteoutMode::Remove,
                overlay: false,
            });
        }
        Err(Error::new(
            Kind::NotImplemented,
            format!(
                "mount type {:?} is not supported by the differ: not implemented",
                mount.kind
            ),
        ))
    }

    /// Applies `layer` (from the scope's namespace) onto `mounts`; returns the uncompressed
    /// digest and size.
    pub fn apply(&self, scope: &Scope, layer: &Layer, mounts: &[Mount]) -> Result<Applied, Error> {
        let (file, _) = self.content.reader(&scope.namespace, &layer.digest)?;
        self.apply_stream(layer, file, mounts)
    }

    /// Applies `layer` read from `reader` (for example a download still in progress) onto
    /// `mounts`; the caller checks the returned diff ID against the image config.
    pub fn apply_stream(
        &self,
        layer: &Layer,
        reader: impl std::io::Read,
        mounts: &[Mount],
    ) -> Result<Applied, Error> {
        if !APPLICABLE.contains(&layer.media_type.as_str()) {
            return Err(Error::new(
                Kind::NotImplemented,
                format!(
                    "unsupported diff media type: {}: not implemented",
                    layer.media_type
                ),
            ));
        }
        let target = self.target(mounts)?;
        let options = ApplyOptions {
            whiteouts: target.mode,
        };
        apply_layer(
            BufReader::with_capacity(1 << 20, reader),
            &target.dir,
            &options,
        )
        .map_err(|e| e.context(format!("apply layer {}", layer.digest)))
    }

    /// Writes how `right` differs from `left` as a layer blob in the content store.
    pub fn diff(
        &self,
        scope: &Scope,
        left: &[Mount],
        right: &[Mount],
        media_type: &str,
        reference: &str,
        mut labels: HashMap<String, String>,
    ) -> Result<(Digest, i64, String), Error> {
        let media_type = if media_type.is_empty() {
            MEDIA_TAR_GZIP
        } else {
            media_type
        };
        let gzip = match media_type {
            MEDIA_TAR => false,
            MEDIA_TAR_GZIP => true,
            other => {
                return Err(Error::new(
                    Kind::NotImplemented,
                    format!("unsupported diff media type: {other}: not implemented"),
                ));
            }
        };
        let upper = self.target(right)?;
        // An overlay upper dir is the change set by itself; otherwise compare with the lower
        // tree, which may be (and usually is) a read-only view.
        let lower = match left {
            _ if upper.overlay => None,
            [] => None,
            [mount] if is_bind(mount) => Some(self.inside_roots(Path::new(&mount.source))?),
            mounts => {
                return Err(Error::new(
                    Kind::NotImplemented,
                    format!(
                        "diffing against {} mounts of type {:?} is not supported: not implemented",
                        mounts.len(),
                        mounts.first().map(|m| m.kind.as_str()).unwrap_or_default()
                    ),
                ));
            }
        };
        let reference = if reference.is_empty() {
            format!("diff-{}", uuid::Uuid::new_v4())
        } else {
            reference.to_string()
        };
        let mut writer = self.content.writer(scope, &reference, 0, None)?;
        let mut sink = WriterSink(&mut writer);
        let applied = if gzip {
            let mut gz = flate2::write::GzEncoder::new(&mut sink, flate2::Compression::fast());
            let applied = self.write(&upper, lower.as_deref(), &mut gz)?;
            gz.finish()
                .map_err(|e| berth_proto::errdefs::io_error("compress diff", e))?;
            applied
        } else {
            self.write(&upper, lower.as_deref(), &mut sink)?
        };
        if gzip {
            labels.insert(UNCOMPRESSED_LABEL.to_string(), applied.diff_id.to_string());
        }
        let size = writer.status().offset;
        let digest = match writer.commit(size, None, labels) {
            Ok(d) => d,
            Err(e) if e.kind == Kind::AlreadyExists => writer.digest(),
            Err(e) => return Err(e),
        };
        Ok((digest, size, media_type.to_string()))
    }

    fn write(
        &self,
        upper: &Target,
        lower: Option<&Path>,
        out: impl Write,
    ) -> Result<Applied, Error> {
        if upper.overlay {
            write_overlay_diff(&upper.dir, out)
        } else {
            write_diff(lower, &upper.dir, out)
        }
    }
}

/// Lets a content writer be the end of an `io::Write` chain.
struct WriterSink<'a>(&'a mut crate::content::Writer);

impl Write for WriterSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .write(buf)
            .map_err(|e| std::io::Error::other(e.message))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
