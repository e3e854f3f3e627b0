//! `berthctl content ls|get|ingest|rm|active`: the content store's blobs (like
//! `ctr content`).

use std::io::{Read as _, Write as _};

use anyhow::{Context as _, bail};
use containerd_client::services::v1::{
    DeleteContentRequest, ListContentRequest, ListStatusesRequest, ReadContentRequest, WriteAction,
    WriteContentRequest, content_client::ContentClient,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    client::Client,
    commands::namespace::parse_labels,
    human,
    output::{self, Format},
};

/// Work with the content store's blobs directly (like `ctr content`).
///
/// Example: `berthctl content get sha256:4f1c… | sha256sum`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List blobs: DIGEST SIZE AGE LABELS.
    ///
    /// Example: `berthctl content ls -q`
    #[command(alias = "list")]
    Ls {
        /// containerd filters, e.g. `labels."containerd.io/gc.root"`.
        filters: Vec<String>,
        /// Print digests only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over Digest, Size, CreatedAt, UpdatedAt, Labels.
        #[arg(long)]
        format: Option<String>,
    },
    /// Write a blob to standard output.
    ///
    /// Example: `berthctl content get sha256:4f1c… > blob`
    Get {
        /// The blob's digest.
        digest: String,
    },
    /// Store standard input as a blob under an ingest reference; prints its digest.
    ///
    /// Example: `berthctl content ingest --expected-size 6 my-ref < file`
    Ingest {
        /// The ingest reference (resumable name of the write).
        reference: String,
        /// Refuse the blob unless it has this digest.
        #[arg(long)]
        expected_digest: Option<String>,
        /// Refuse the blob unless it has this many bytes.
        #[arg(long)]
        expected_size: Option<i64>,
        /// Set a label (KEY=VALUE); may be repeated.
        #[arg(short, long = "label")]
        labels: Vec<String>,
    },
    /// Remove blobs.
    ///
    /// Example: `berthctl content rm sha256:4f1c…`
    #[command(alias = "delete", alias = "remove", alias = "del")]
    Rm {
        /// The blobs' digests.
        #[arg(required = true)]
        digests: Vec<String>,
    },
    /// List ongoing ingests: REF SIZE AGE.
    ///
    /// Example: `berthctl content active`
    Active {
        /// containerd filters, e.g. `ref~=^layer`.
        filters: Vec<String>,
    },
}

fn api(client: &Client) -> ContentClient<tonic::transport::Channel> {
    ContentClient::new(client.channel.clone())
}

async fn get(client: &Client, digest: String) -> anyhow::Result<()> {
    let mut stream = api(client)
        .read(client.request(ReadContentRequest {
            digest: digest.clone(),
            offset: 0,
            size: 0,
        }))
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => anyhow::anyhow!("no such content: {digest}"),
            _ => anyhow::Error::new(s).context(format!("reading {digest}")),
        })?
        .into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.message().await? {
        out.write_all(&chunk.data).context("writing the blob")?;
    }
    out.flush().context("writing the blob")?;
    Ok(())
}

/// The requests of one ingest: standard input in 1 MiB writes, then the commit.
fn produce(
    reference: String,
    total: i64,
    expected: String,
    labels: std::collections::HashMap<String, String>,
    tx: mpsc::Sender<WriteContentRequest>,
) -> anyhow::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut offset = 0i64;
    let request = |action: WriteAction, offset: i64, data: Vec<u8>| WriteContentRequest {
        action: action as i32,
        r#ref: reference.clone(),
        total,
        expected: expected.clone(),
        offset,
        data,
        labels: Default::default(),
    };
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = input.read(&mut buf).context("reading standard input")?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        if tx
            .blocking_send(request(WriteAction::Write, offset, buf))
            .is_err()
        {
            return Ok(());
        }
        offset += n as i64;
    }
    let mut commit = request(WriteAction::Commit, offset, Vec::new());
    commit.total = if total > 0 { total } else { offset };
    commit.labels = labels;
    let _ = tx.blocking_send(commit);
    Ok(())
}

async fn ingest(
    client: &Client,
    reference: String,
    expected_digest: Option<String>,
    expected_size: Option<i64>,
    labels: Vec<String>,
) -> anyhow::Result<()> {
    let labels = parse_labels(&labels)?;
    let expected = expected_digest.unwrap_or_default();
    let (tx, rx) = mpsc::channel(4);
    let producing = {
        let (reference, expected) = (reference.clone(), expected.clone());
        let total = expected_size.unwrap_or(0);
        tokio::task::spawn_blocking(move || produce(reference, total, expected, labels, tx))
    };
    let result = async {
        let mut responses = api(client)
            .write(client.request(ReceiverStream::new(rx)))
            .await?
            .into_inner();
        let mut digest = String::new();
        while let Some(r) = responses.message().await? {
            digest = r.digest;
        }
        Ok::<String, tonic::Status>(digest)
    }
    .await;
    match result {
        Ok(digest) => {
            producing.await??;
            println!("{digest}");
            Ok(())
        }
        Err(s) if s.code() == tonic::Code::AlreadyExists && !expected.is_empty() => {
            println!("{expected}");
            Ok(())
        }
        Err(s) => Err(anyhow::Error::new(s).context(format!("ingesting {reference}"))),
    }
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Ls {
            filters,
            quiet,
            format,
        } => {
            let format = Format::parse(format.as_deref())?;
            let mut stream = api(client)
                .list(client.request(ListContentRequest { filters }))
                .await
                .context("listing content")?
                .into_inner();
            let mut infos = Vec::new();
            while let Some(page) = stream.message().await? {
                infos.extend(page.info);
            }
            infos.sort_by(|a, b| a.digest.cmp(&b.digest));
            if quiet {
                infos.iter().for_each(|i| println!("{}", i.digest));
                return Ok(());
            }
            let items: Vec<Value> = infos
                .iter()
                .map(|i| {
                    json!({
                        "Digest": i.digest,
                        "Size": i.size,
                        "CreatedAt": human::rfc3339(i.created_at.as_ref()),
                        "UpdatedAt": human::rfc3339(i.updated_at.as_ref()),
                        "Age": human::ago(i.created_at.as_ref()),
                        "Labels": i.labels,
                    })
                })
                .collect();
            output::print_items(&format, &items, &["DIGEST", "SIZE", "AGE", "LABELS"], |v| {
                let mut labels: Vec<String> = v["Labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect()
                    })
                    .unwrap_or_default();
                labels.sort();
                vec![
                    v["Digest"].as_str().unwrap_or("").into(),
                    human::size(v["Size"].as_u64().unwrap_or(0)),
                    v["Age"].as_str().unwrap_or("").into(),
                    labels.join(","),
                ]
            });
        }
        Action::Get { digest } => get(client, digest).await?,
        Action::Ingest {
            reference,
            expected_digest,
            expected_size,
            labels,
        } => ingest(client, reference, expected_digest, expected_size, labels).await?,
        Action::Rm { digests } => {
            for digest in digests {
                match api(client)
                    .delete(client.request(DeleteContentRequest {
                        digest: digest.clone(),
                    }))
                    .await
                {
                    Ok(_) => println!("{digest}"),
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        bail!("no such content: {digest}")
                    }
                    Err(s) => return Err(s).with_context(|| format!("removing {digest}")),
                }
            }
        }
        Action::Active { filters } => {
            let statuses = api(client)
                .list_statuses(client.request(ListStatusesRequest { filters }))
                .await
                .context("listing ingests")?
                .into_inner()
                .statuses;
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    vec![
                        s.r#ref.clone(),
                        format!("{}/{}", s.offset, s.total),
                        human::ago(s.started_at.as_ref()),
                    ]
                })
                .collect();
            output::print_table(&["REF", "SIZE", "AGE"], &rows);
        }
    }
    Ok(())
}
