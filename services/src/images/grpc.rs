//! `containerd.services.images.v1.Images`.

use std::sync::Arc;

use berth_proto::{
    errdefs::Error,
    filters::Filter,
    server::images::v1::images_server,
    services::v1::{
        CreateImageRequest, CreateImageResponse, DeleteImageRequest, GetImageRequest,
        GetImageResponse, Image as ImageProto, ListImagesRequest, ListImagesResponse,
        UpdateImageRequest, UpdateImageResponse,
    },
    types::Descriptor,
};
use tonic::{Request, Response, Status};

use super::{Image, Images};
use crate::{
    metadata::{DescriptorRecord, ImageRecord},
    request,
};

/// The gRPC face of [`Images`].
pub struct Service {
    images: Arc<Images>,
}

impl Service {
    /// Serves `images`.
    pub fn new(images: Arc<Images>) -> Service {
        Service { images }
    }
}

fn descriptor_from(d: Option<Descriptor>) -> DescriptorRecord {
    let d = d.unwrap_or_default();
    DescriptorRecord {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations,
    }
}

fn image_from(i: Option<ImageProto>) -> Result<Image, Error> {
    let i = i.ok_or_else(|| Error::invalid("image must be provided"))?;
    Ok(Image {
        name: i.name,
        labels: i.labels,
        target: descriptor_from(i.target),
    })
}

fn to_proto(name: String, r: ImageRecord) -> ImageProto {
    ImageProto {
        name,
        labels: r.labels,
        target: Some(Descriptor {
            media_type: r.target.media_type,
            digest: r.target.digest,
            size: r.target.size,
            annotations: r.target.annotations,
        }),
        created_at: Some(r.created_at.to_proto()),
        updated_at: Some(r.updated_at.to_proto()),
    }
}

#[tonic::async_trait]
impl images_server::Images for Service {
    async fn get(
        &self,
        req: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let ns = request::namespace(&req)?;
        let name = req.into_inner().name;
        let record = self.images.get(&ns, &name)?;
        Ok(Response::new(GetImageResponse {
            image: Some(to_proto(name, record)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = request::namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let images = self
            .images
            .list(&ns, &filter)?
            .into_iter()
            .map(|(n, r)| to_proto(n, r))
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn create(
        &self,
        req: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let ns = request::namespace(&req)?;
        let image = image_from(req.into_inner().image)?;
        let name = image.name.clone();
        let record = self.images.create(&ns, image)?;
        Ok(Response::new(CreateImageResponse {
            image: Some(to_proto(name, record)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        let image = image_from(req.image)?;
        let name = image.name.clone();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let record = self.images.update(&ns, image, &paths)?;
        Ok(Response::new(UpdateImageResponse {
            image: Some(to_proto(name, record)),
        }))
    }

    async fn delete(&self, req: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let ns = request::namespace(&req)?;
        let req = req.into_inner();
        let target = req.target.map(|t| t.digest);
        self.images
            .delete(&ns, &req.name, target.as_deref(), req.sync)
            .await?;
        Ok(Response::new(()))
    }
}
