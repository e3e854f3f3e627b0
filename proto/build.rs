//! Generates tonic *servers* for containerd's API v1 services over the message types that the
//! `containerd-client` crate already ships. No containerd .proto file is read: each service is
//! described below as data (package, name, methods), exactly as containerd names them on the
//! wire. Berth's own APIs (`berth/**.proto`, written here) are compiled with protoc.

use tonic_build::manual::{Builder, Method, Service};

/// Where the message types live.
const V1: &str = "::containerd_client::services::v1";
const SNAP: &str = "::containerd_client::services::v1::snapshots";
const TYPES: &str = "::containerd_client::types";
/// `google.protobuf.Empty`, which prost maps to `()` (aliased in lib.rs as a path).
const EMPTY: &str = "crate::Empty";

/// How a method streams: (client streaming, server streaming).
#[derive(Clone, Copy)]
enum Streaming {
    Unary,
    Server,
    Bidi,
}

/// One rpc: wire name, input type, output type, streaming.
type Rpc = (&'static str, String, String, Streaming);

fn rpc(name: &'static str, input: &str, output: &str, streaming: Streaming) -> Rpc {
    (name, input.to_string(), output.to_string(), streaming)
}

/// `Foo` → `<module>::Foo`; absolute paths stay as they are.
fn ty(module: &str, name: &str) -> String {
    if name == EMPTY || name.starts_with("::") {
        name.to_string()
    } else {
        format!("{module}::{name}")
    }
}

fn unary(module: &str, name: &'static str, input: &str, output: &str) -> Rpc {
    rpc(
        name,
        &ty(module, input),
        &ty(module, output),
        Streaming::Unary,
    )
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn service(package: &str, name: &str, rpcs: Vec<Rpc>) -> Service {
    let mut builder = Service::builder().name(name).package(package);
    for (method, input, output, streaming) in rpcs {
        let mut m = Method::builder()
            .name(snake(method))
            .route_name(method)
            .input_type(input)
            .output_type(output)
            .codec_path("::tonic_prost::ProstCodec");
        match streaming {
            Streaming::Unary => {}
            Streaming::Server => m = m.server_streaming(),
            Streaming::Bidi => m = m.client_streaming().server_streaming(),
        }
        builder = builder.method(m.build());
    }
    builder.build()
}

fn main() {
    let any = "::prost_types::Any";
    let services = vec![
        service(
            "containerd.services.version.v1",
            "Version",
            vec![unary(V1, "Version", EMPTY, "VersionResponse")],
        ),
        service(
            "containerd.services.introspection.v1",
            "Introspection",
            vec![
                unary(V1, "Plugins", "PluginsRequest", "PluginsResponse"),
                unary(V1, "Server", EMPTY, "ServerResponse"),
                unary(V1, "PluginInfo", "PluginInfoRequest", "PluginInfoResponse"),
            ],
        ),
        service(
            "containerd.services.namespaces.v1",
            "Namespaces",
            vec![
                unary(V1, "Get", "GetNamespaceRequest", "GetNamespaceResponse"),
                unary(
                    V1,
                    "List",
                    "ListNamespacesRequest",
                    "ListNamespacesResponse",
                ),
                unary(
                    V1,
                    "Create",
                    "CreateNamespaceRequest",
                    "CreateNamespaceResponse",
                ),
                unary(
                    V1,
                    "Update",
                    "UpdateNamespaceRequest",
                    "UpdateNamespaceResponse",
                ),
                unary(V1, "Delete", "DeleteNamespaceRequest", EMPTY),
            ],
        ),
        service(
            "containerd.services.content.v1",
            "Content",
            vec![
                unary(V1, "Info", "InfoRequest", "InfoResponse"),
                unary(V1, "Update", "UpdateRequest", "UpdateResponse"),
                rpc(
                    "List",
                    &ty(V1, "ListContentRequest"),
                    &ty(V1, "ListContentResponse"),
                    Streaming::Server,
                ),
                unary(V1, "Delete", "DeleteContentRequest", EMPTY),
                rpc(
                    "Read",
                    &ty(V1, "ReadContentRequest"),
                    &ty(V1, "ReadContentResponse"),
                    Streaming::Server,
                ),
                unary(V1, "Status", "StatusRequest", "StatusResponse"),
                unary(
                    V1,
                    "ListStatuses",
                    "ListStatusesRequest",
                    "ListStatusesResponse",
                ),
                rpc(
                    "Write",
                    &ty(V1, "WriteContentRequest"),
                    &ty(V1, "WriteContentResponse"),
                    Streaming::Bidi,
                ),
                unary(V1, "Abort", "AbortRequest", EMPTY),
            ],
        ),
        service(
            "containerd.services.leases.v1",
            "Leases",
            vec![
                unary(V1, "Create", "CreateRequest", "CreateResponse"),
                unary(V1, "Delete", "DeleteRequest", EMPTY),
                unary(V1, "List", "ListRequest", "ListResponse"),
                unary(V1, "AddResource", "AddResourceRequest", EMPTY),
                unary(V1, "DeleteResource", "DeleteResourceRequest", EMPTY),
                unary(
                    V1,
                    "ListResources",
                    "ListResourcesRequest",
                    "ListResourcesResponse",
                ),
            ],
        ),
        service(
            "containerd.services.events.v1",
            "Events",
            vec![
                unary(V1, "Publish", "PublishRequest", EMPTY),
                unary(V1, "Forward", "ForwardRequest", EMPTY),
                rpc(
                    "Subscribe",
                    &ty(V1, "SubscribeRequest"),
                    &ty(TYPES, "Envelope"),
                    Streaming::Server,
                ),
            ],
        ),
        service(
            "containerd.services.images.v1",
            "Images",
            vec![
                unary(V1, "Get", "GetImageRequest", "GetImageResponse"),
                unary(V1, "List", "ListImagesRequest", "ListImagesResponse"),
                unary(V1, "Create", "CreateImageRequest", "CreateImageResponse"),
                unary(V1, "Update", "UpdateImageRequest", "UpdateImageResponse"),
                unary(V1, "Delete", "DeleteImageRequest", EMPTY),
            ],
        ),
        service(
            "containerd.services.containers.v1",
            "Containers",
            vec![
                unary(V1, "Get", "GetContainerRequest", "GetContainerResponse"),
                unary(
                    V1,
                    "List",
                    "ListContainersRequest",
                    "ListContainersResponse",
                ),
                rpc(
                    "ListStream",
                    &ty(V1, "ListContainersRequest"),
                    &ty(V1, "ListContainerMessage"),
                    Streaming::Server,
                ),
                unary(
                    V1,
                    "Create",
                    "CreateContainerRequest",
                    "CreateContainerResponse",
                ),
                unary(
                    V1,
                    "Update",
                    "UpdateContainerRequest",
                    "UpdateContainerResponse",
                ),
                unary(V1, "Delete", "DeleteContainerRequest", EMPTY),
            ],
        ),
        service(
            "containerd.services.diff.v1",
            "Diff",
            vec![
                unary(V1, "Apply", "ApplyRequest", "ApplyResponse"),
                unary(V1, "Diff", "DiffRequest", "DiffResponse"),
            ],
        ),
        service(
            "containerd.services.snapshots.v1",
            "Snapshots",
            vec![
                unary(
                    SNAP,
                    "Prepare",
                    "PrepareSnapshotRequest",
                    "PrepareSnapshotResponse",
                ),
                unary(SNAP, "View", "ViewSnapshotRequest", "ViewSnapshotResponse"),
                unary(SNAP, "Mounts", "MountsRequest", "MountsResponse"),
                unary(SNAP, "Commit", "CommitSnapshotRequest", EMPTY),
                unary(SNAP, "Remove", "RemoveSnapshotRequest", EMPTY),
                unary(SNAP, "Stat", "StatSnapshotRequest", "StatSnapshotResponse"),
                unary(
                    SNAP,
                    "Update",
                    "UpdateSnapshotRequest",
                    "UpdateSnapshotResponse",
                ),
                rpc(
                    "List",
                    &ty(SNAP, "ListSnapshotsRequest"),
                    &ty(SNAP, "ListSnapshotsResponse"),
                    Streaming::Server,
                ),
                unary(SNAP, "Usage", "UsageRequest", "UsageResponse"),
                unary(SNAP, "Cleanup", "CleanupRequest", EMPTY),
            ],
        ),
        service(
            "containerd.services.tasks.v1",
            "Tasks",
            vec![
                unary(V1, "Create", "CreateTaskRequest", "CreateTaskResponse"),
                unary(V1, "Start", "StartRequest", "StartResponse"),
                unary(V1, "Delete", "DeleteTaskRequest", "DeleteResponse"),
                unary(
                    V1,
                    "DeleteProcess",
                    "DeleteProcessRequest",
                    "DeleteResponse",
                ),
                unary(V1, "Get", "GetRequest", "GetResponse"),
                unary(V1, "List", "ListTasksRequest", "ListTasksResponse"),
                unary(V1, "Kill", "KillRequest", EMPTY),
                unary(V1, "Exec", "ExecProcessRequest", EMPTY),
                unary(V1, "ResizePty", "ResizePtyRequest", EMPTY),
                unary(V1, "CloseIO", "CloseIoRequest", EMPTY),
                unary(V1, "Pause", "PauseTaskRequest", EMPTY),
                unary(V1, "Resume", "ResumeTaskRequest", EMPTY),
                unary(V1, "ListPids", "ListPidsRequest", "ListPidsResponse"),
                unary(
                    V1,
                    "Checkpoint",
                    "CheckpointTaskRequest",
                    "CheckpointTaskResponse",
                ),
                unary(V1, "Update", "UpdateTaskRequest", EMPTY),
                unary(V1, "Metrics", "MetricsRequest", "MetricsResponse"),
                unary(V1, "Wait", "WaitRequest", "WaitResponse"),
            ],
        ),
        service(
            "containerd.services.transfer.v1",
            "Transfer",
            vec![unary(V1, "Transfer", "TransferRequest", EMPTY)],
        ),
        service(
            "containerd.services.streaming.v1",
            "Streaming",
            vec![rpc("Stream", any, any, Streaming::Bidi)],
        ),
    ];
    Builder::new()
        .build_client(false)
        .build_server(true)
        .compile(&services);

    // Berth's own APIs, from the .proto files written for Berth in this crate.
    println!("cargo:rerun-if-changed=berth");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(
            &[
                "berth/transfer/v1/transfer.proto",
                "berth/logs/v1/logs.proto",
                "berth/volumes/v1/volumes.proto",
            ],
            &["berth"],
        )
        .expect("compiling Berth's protos");
}
