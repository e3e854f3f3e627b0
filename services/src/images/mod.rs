//! Images: names that point at a manifest or index in the content store.
//!
//! An image record holds a target descriptor and labels. Images are roots for garbage
//! collection: their target and everything it references (through `containerd.io/gc.ref.*`
//! labels on the content) stay, and so do the references on the image's own labels. Deleting
//! an image lets the collector take what only it held; a synchronous delete waits for that.

pub mod grpc;

use std::{collections::HashMap, sync::Arc};

use berth_proto::{
    digest::Digest,
    errdefs::Error,
    filters::{Adaptor, Filter, label_field},
    labels,
    services::v1::{ImageCreate, ImageDelete, ImageUpdate},
};

use crate::{
    events::Exchange,
    gc::scheduler::Scheduler,
    metadata::{DescriptorRecord, ImageRecord, Key, Store, Timestamp},
    namespaces,
};

/// The image store.
pub struct Images {
    store: Arc<Store>,
    exchange: Arc<Exchange>,
    gc: Scheduler,
}

/// An image as callers give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The image's name (usually a normalised reference).
    pub name: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// The manifest or index it points at.
    pub target: DescriptorRecord,
}

/// Checks an image the way containerd's metadata store does.
pub fn validate(image: &Image) -> Result<(), Error> {
    if image.name.is_empty() {
        return Err(Error::invalid("image name must not be empty"));
    }
    if image.name.contains('\0') {
        return Err(Error::invalid(format!(
            "image name {:?} contains NUL",
            image.name
        )));
    }
    labels::validate_all(&image.labels).map_err(|e| e.context("image.Labels"))?;
    validate_target(&image.target)
}

fn validate_target(target: &DescriptorRecord) -> Result<(), Error> {
    Digest::parse(&target.digest).map_err(|e| {
        Error::invalid(format!(
            "Target.Digest {:?} invalid: {}",
            target.digest, e.message
        ))
    })?;
    if target.size <= 0 {
        return Err(Error::invalid("Target.Size must be greater than zero"));
    }
    if target.media_type.is_empty() {
        return Err(Error::invalid("Target.MediaType must be set"));
    }
    Ok(())
}

struct ImageFields<'a>(&'a str, &'a ImageRecord);

impl Adaptor for ImageFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "name" if path.len() == 1 => Some(self.0.to_string()),
            "labels" => label_field(&self.1.labels, &path[1..]),
            "target" => match path.get(1).map(String::as_str)? {
                "digest" if path.len() == 2 => Some(self.1.target.digest.clone()),
                "mediatype" if path.len() == 2 => Some(self.1.target.media_type.clone()),
                _ => None,
            },
            "annotations" => label_field(&self.1.target.annotations, &path[1..]),
            _ => None,
        }
    }
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("image {name:?}"))
}

impl Images {
    /// Images kept in `store`, announced on `exchange`, collected by `gc`.
    pub fn new(store: Arc<Store>, exchange: Arc<Exchange>, gc: Scheduler) -> Images {
        Images {
            store,
            exchange,
            gc,
        }
    }

    /// The image `name` in `ns`.
    pub fn get(&self, ns: &str, name: &str) -> Result<ImageRecord, Error> {
        if name.is_empty() || name.contains('\0') {
            return Err(Error::invalid("image name must not be empty"));
        }
        self.store
            .view()
            .get(&Key::object(ns, "images", name))?
            .ok_or_else(|| not_found(name))
    }

    /// The images of `ns` matching `filter`, by name.
    pub fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<(String, ImageRecord)>, Error> {
        Ok(self
            .store
            .view()
            .scan::<ImageRecord>(&Key::bucket(ns, "images"))?
            .into_iter()
            .filter(|(n, r)| filter.matches(&ImageFields(n, r)))
            .collect())
    }

    /// Creates `image` in `ns`; AlreadyExists if the name is taken.
    pub fn create(&self, ns: &str, image: Image) -> Result<ImageRecord, Error> {
        validate(&image)?;
        let now = Timestamp::now();
        let record = ImageRecord {
            labels: image.labels.clone(),
            target: image.target,
            created_at: now,
            updated_at: now,
        };
        self.store.update(|u| {
            let key = Key::object(ns, "images", &image.name);
            if u.get::<ImageRecord>(&key)?.is_some() {
                return Err(Error::already_exists(format!("image {:?}", image.name)));
            }
            namespaces::ensure(u, ns)?;
            u.put(&key, &record)
        })?;
        self.exchange.publish(
            ns,
            "/images/create",
            &ImageCreate {
                name: image.name,
                labels: image.labels,
            },
        );
        Ok(record)
    }

    /// Updates `image` in `ns` by containerd's field paths (all fields when `paths` is empty).
    pub fn update(&self, ns: &str, image: Image, paths: &[String]) -> Result<ImageRecord, Error> {
        if image.name.is_empty() {
            return Err(Error::invalid("image name must not be empty"));
        }
        let name = image.name.clone();
        let record = self.store.update(|u| {
            let key = Key::object(ns, "images", &name);
            let mut record: ImageRecord = u.get(&key)?.ok_or_else(|| not_found(&name))?;
            if paths.is_empty() {
                validate(&image)?;
                record.labels = image.labels.clone();
                record.target = image.target.clone();
            }
            for path in paths {
                if let Some(k) = path.strip_prefix("labels.") {
                    match image.labels.get(k) {
                        Some(v) if !v.is_empty() => {
                            labels::validate(k, v)?;
                            record.labels.insert(k.to_string(), v.clone());
                        }
                        _ => {
                            record.labels.remove(k);
                        }
                    }
                    continue;
                }
                if let Some(k) = path.strip_prefix("annotations.") {
                    match image.target.annotations.get(k) {
                        Some(v) => record.target.annotations.insert(k.to_string(), v.clone()),
                        None => record.target.annotations.remove(k),
                    };
                    continue;
                }
                match path.as_str() {
                    "labels" => {
                        labels::validate_all(&image.labels)?;
                        record.labels = image.labels.clone();
                    }
                    "target" => {
                        validate_target(&image.target)?;
                        record.target = image.target.clone();
                    }
                    "annotations" => record.target.annotations = image.target.annotations.clone(),
                    _ => {
                        return Err(Error::invalid(format!(
                            "cannot update {path:?} field on image {name:?}: invalid argument"
                        )));
                    }
                }
            }
            record.updated_at = Timestamp::now();
            u.put(&key, &record)?;
            Ok(record)
        })?;
        self.exchange.publish(
            ns,
            "/images/update",
            &ImageUpdate {
                name,
                labels: record.labels.clone(),
            },
        );
        Ok(record)
    }

    /// Deletes `name` from `ns` (only if its target is `target`, when given); with `sync`,
    /// waits for the collection that follows.
    pub async fn delete(
        &self,
        ns: &str,
        name: &str,
        target: Option<&str>,
        sync: bool,
    ) -> Result<(), Error> {
        self.store.update(|u| {
            let key = Key::object(ns, "images", name);
            let record: ImageRecord = u.get(&key)?.ok_or_else(|| not_found(name))?;
            if let Some(want) = target
                && record.target.digest != want
            {
                return Err(Error::precondition(format!(
                    "image {name:?} has target {}, not {want}: failed precondition",
                    record.target.digest
                )));
            }
            u.delete(&key);
            Ok(())
        })?;
        self.exchange.publish(
            ns,
            "/images/delete",
            &ImageDelete {
                name: name.to_string(),
            },
        );
        if sync {
            self.gc.collect_now().await?;
        } else {
            self.gc.deleted();
        }
        Ok(())
    }
}
