//! Test fixtures for image work: a private Debian `docker-registry` on a free loopback port,
//! and images built here (OCI layouts written by these tests, pushed with `skopeo`).

use std::{
    collections::BTreeMap,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flate2::{Compression, write::GzEncoder};
use sha2::{Digest as _, Sha256};

use crate::daemon::which;

/// A private registry; killed on drop.
pub struct Registry {
    pub addr: String,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts one, or None when `docker-registry` or `skopeo` is missing outside CI.
    pub fn start() -> Option<Registry> {
        Registry::start_with_auth(None)
    }

    /// Starts one that requires `user`/`password` (htpasswd, bcrypt) when given.
    pub fn start_with_auth(auth: Option<(&str, &str)>) -> Option<Registry> {
        let (Some(bin), Some(_)) = (which("docker-registry"), which("skopeo")) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "docker-registry and skopeo are required in CI"
            );
            eprintln!("skipping: docker-registry or skopeo not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 5).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Registry {
            addr,
            _dir: dir,
            child,
        })
    }

    /// Writes the OCI layout image `tag` as a `docker save` tarball at `out`, named `name`.
    pub fn docker_archive(layout: &Path, tag: &str, out: &Path, name: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker-archive:{}:{name}", out.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Pushes the OCI layout at `layout` (tag `tag`) to `repo:tag` with skopeo.
    pub fn push_layout(&self, layout: &Path, tag: &str, repo: &str) {
        self.push_layout_as(layout, tag, repo, None)
    }

    /// Like [`Registry::push_layout`], with credentials.
    pub fn push_layout_as(&self, layout: &Path, tag: &str, repo: &str, creds: Option<&str>) {
        let mut cmd = Command::new("skopeo");
        if let Some(c) = creds {
            cmd.arg("copy").arg(format!("--dest-creds={c}"));
        } else {
            cmd.arg("copy");
        }
        let out = cmd
            .args(["--quiet", "--dest-tls-verify=false", "--all"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One entry of a layer built by a test.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    /// An OCI whiteout removing `path` from lower layers.
    Whiteout(&'a str),
    /// An opaque marker on directory `dir`.
    Opaque(&'a str),
}

/// A built blob: bytes and digest.
pub struct Blob {
    pub bytes: Vec<u8>,
    pub digest: String,
}

fn blob(bytes: Vec<u8>) -> Blob {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Blob { bytes, digest }
}

/// A tar layer from `entries`; returns (uncompressed tar, gzip blob).
pub fn layer(entries: &[Entry<'_>]) -> (Blob, Blob) {
    let mut b = tar::Builder::new(Vec::new());
    let header = |path: &str, kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for e in entries {
        match e {
            Entry::Dir(p) => {
                let mut h = header(p, tar::EntryType::Directory, 0o755, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Entry::File(p, data) => {
                let mut h = header(p, tar::EntryType::Regular, 0o644, data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Entry::Symlink(p, target) => {
                let mut h = header(p, tar::EntryType::Symlink, 0o777, 0);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Entry::Whiteout(p) => {
                let path = Path::new(p);
                let name = path.file_name().unwrap().to_str().unwrap();
                let wh = path.with_file_name(format!(".wh.{name}"));
                let mut h = header(wh.to_str().unwrap(), tar::EntryType::Regular, 0o644, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Entry::Opaque(dir) => {
                let p = format!("{}/.wh..wh..opq", dir.trim_end_matches('/'));
                let mut h = header(&p, tar::EntryType::Regular, 0o644, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    let tar = b.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    (blob(tar), blob(gz.finish().unwrap()))
}

/// One platform's image: its manifest descriptor JSON.
fn write_image(blobs: &Path, layers: &[Vec<Entry<'_>>], os: &str, arch: &str) -> serde_json::Value {
    let save = |b: &Blob| std::fs::write(blobs.join(&b.digest[7..]), &b.bytes).unwrap();
    let mut diff_ids = Vec::new();
    let mut layer_descs = Vec::new();
    for entries in layers {
        let (tar, gz) = layer(entries);
        save(&gz);
        diff_ids.push(tar.digest.clone());
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": gz.digest, "size": gz.bytes.len(),
        }));
    }
    let config = blob(
        serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": os,
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap(),
    );
    save(&config);
    let manifest = blob(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.bytes.len()},
            "layers": layer_descs,
        }))
        .unwrap(),
    );
    save(&manifest);
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest.digest, "size": manifest.bytes.len(),
        "platform": {"os": os, "architecture": arch},
    })
}

/// Writes an OCI image layout with one image (`tag`) made of `layers` for `platform`
/// (`linux/amd64` form) into `dir`; returns the manifest digest.
pub fn write_layout(dir: &Path, tag: &str, layers: &[Vec<Entry<'_>>], platform: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let (os, arch) = platform.split_once('/').unwrap();
    let mut desc = write_image(&blobs, layers, os, arch);
    let digest = desc["digest"].as_str().unwrap().to_string();
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    write_index_file(dir, vec![desc]);
    digest
}

/// Writes a layout whose tag `tag` is an OCI index with one image per platform (each
/// platform's image gets a file `/platform` naming it); returns the index digest.
pub fn write_multi_platform_layout(dir: &Path, tag: &str, platforms: &[&str]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let manifests: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            let (os, arch) = p.split_once('/').unwrap();
            write_image(
                &blobs,
                &[vec![Entry::File("platform", p.as_bytes())]],
                os,
                arch,
            )
        })
        .collect();
    let index = blob(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap(),
    );
    std::fs::write(blobs.join(&index.digest[7..]), &index.bytes).unwrap();
    write_index_file(
        dir,
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index.digest, "size": index.bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })],
    );
    index.digest
}

fn write_index_file(dir: &Path, manifests: Vec<serde_json::Value>) {
    let mut index: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    index.insert("schemaVersion".into(), 2.into());
    index.insert("manifests".into(), serde_json::Value::Array(manifests));
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A fresh temp dir for a layout.
pub fn layout_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("layout");
    (d, p)
}
