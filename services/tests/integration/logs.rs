//! Container logs (issue 5): containers labelled `berth.io/log-driver=json-file` get their
//! output written to log files by the shim, read back through `berth.logs.v1.Logs`.

use std::{path::PathBuf, time::Duration};

use berth_proto::berth::logs::v1::{LogEntry, ReadRequest, logs_client::LogsClient};
use containerd_client::tonic::{Code, transport::Channel};

use crate::{
    daemon::{Daemon, ns, which},
    tasks::{busybox, can_run, ctr, eventually, run_detached, sweep, task_status},
};

const BERTH: &str = "io.containerd.berth.v2";
const JSON_FILE: &str = "berth.io/log-driver=json-file";

fn log_dir(d: &Daemon, id: &str) -> PathBuf {
    d.root().join("logs/default").join(id)
}

/// Reads container `id`'s log; fails on a stream that does not end within 20 s.
async fn read(
    ch: &Channel,
    req: ReadRequest,
) -> Result<Vec<LogEntry>, containerd_client::tonic::Status> {
    let mut client = LogsClient::new(ch.clone());
    let mut stream = client.read(ns("default", req)).await?.into_inner();
    let mut out = Vec::new();
    let all = async {
        while let Some(e) = stream.message().await? {
            out.push(e);
        }
        Ok::<_, containerd_client::tonic::Status>(())
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("log stream ended")?;
    Ok(out)
}

fn request(id: &str) -> ReadRequest {
    ReadRequest {
        container_id: id.to_string(),
        tail: -1,
        ..Default::default()
    }
}

fn texts(entries: &[LogEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e.stream.clone(),
                String::from_utf8_lossy(&e.data).trim_end().to_string(),
            )
        })
        .collect()
}

fn nanos(e: &LogEntry) -> i128 {
    let t = e.time.expect("entry time");
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

fn pair(stream: &str, text: &str) -> (String, String) {
    (stream.to_string(), text.to_string())
}

fn wait_stopped(d: &Daemon, id: &str) {
    eventually(20, &format!("{id} stopped"), || {
        task_status(d, id).as_deref() == Some("STOPPED")
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn json_file_logs_are_read_back_followed_and_survive_a_berthd_crash() {
    if !can_run() {
        return;
    }
    let mut d = Daemon::start();
    let image = busybox(&d);
    let ids = vec!["logged".to_string(), "crash".to_string()];
    let flags = ["--null-io", "--label", JSON_FILE];
    run_detached(
        &d,
        BERTH,
        &image,
        "logged",
        &flags,
        &[
            "sh",
            "-c",
            "echo out; sleep 0.2; echo err >&2; sleep 1; echo late",
        ],
    );
    let ch = d.channel().await;

    // Following from the start sees all three, `late` only after it was written, and the
    // stream ends by itself once the task has exited.
    let followed = read(
        &ch,
        ReadRequest {
            follow: true,
            ..request("logged")
        },
    )
    .await
    .unwrap();
    let want = [
        pair("stdout", "out"),
        pair("stderr", "err"),
        pair("stdout", "late"),
    ];
    assert_eq!(texts(&followed), want);
    assert_eq!(task_status(&d, "logged").as_deref(), Some("STOPPED"));
    assert!(nanos(&followed[0]) <= nanos(&followed[1]));
    assert!(
        nanos(&followed[1]) + 900_000_000 < nanos(&followed[2]),
        "late came a second later"
    );

    let all = read(&ch, request("logged")).await.unwrap();
    assert_eq!(texts(&all), want);
    let tail = read(
        &ch,
        ReadRequest {
            tail: 1,
            ..request("logged")
        },
    )
    .await
    .unwrap();
    assert_eq!(texts(&tail), [pair("stdout", "late")]);
    let since = read(
        &ch,
        ReadRequest {
            since: all[1].time,
            ..request("logged")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        texts(&since),
        [pair("stderr", "err"), pair("stdout", "late")]
    );

    // The shim owns the file: output written while berthd is down is there afterwards.
    run_detached(
        &d,
        BERTH,
        &image,
        "crash",
        &flags,
        &["sh", "-c", "echo before; sleep 2; echo during; sleep 100"],
    );
    d.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.restart();
    let ch = d.channel().await;
    let crash = read(&ch, request("crash")).await.unwrap();
    assert_eq!(
        texts(&crash),
        [pair("stdout", "before"), pair("stdout", "during")]
    );
    assert_eq!(texts(&read(&ch, request("logged")).await.unwrap()), want);

    // Deleting the container deletes its logs.
    assert!(log_dir(&d, "logged").join("json.log").is_file());
    ctr(&d, &["task", "rm", "logged"]);
    ctr(&d, &["c", "rm", "logged"]);
    assert!(!log_dir(&d, "logged").exists());
    let gone = read(&ch, request("logged")).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    sweep(&d, &ids);
    assert!(!log_dir(&d, "crash").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_at_most_max_file_files_and_the_newest_lines() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    run_detached(
        &d,
        BERTH,
        &image,
        "rotated",
        &[
            "--null-io",
            "--label",
            JSON_FILE,
            "--label",
            "berth.io/log-max-size=200",
        ],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done",
        ],
    );
    wait_stopped(&d, "rotated");
    let mut files: Vec<String> = std::fs::read_dir(log_dir(&d, "rotated"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() <= 3, "{files:?}");
    assert_eq!(files[0], "json.log");
    for f in &files {
        let len = std::fs::metadata(log_dir(&d, "rotated").join(f))
            .unwrap()
            .len();
        assert!(len <= 200, "{f} has {len} bytes");
    }
    let ch = d.channel().await;
    let entries = texts(&read(&ch, request("rotated")).await.unwrap());
    assert!(entries.len() >= 2, "{entries:?}");
    let numbers: Vec<u32> = entries
        .iter()
        .map(|(_, t)| t.strip_prefix("line").unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.last(), Some(&99));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    sweep(&d, &["rotated".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn other_shims_get_a_raw_log_and_unlabelled_or_new_containers_have_none() {
    if !can_run() {
        return;
    }
    let d = Daemon::start();
    let image = busybox(&d);
    let ch = d.channel().await;
    let missing = read(&ch, request("nobody")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    ctr(
        &d,
        &["c", "create", "--label", JSON_FILE, &image, "fresh", "true"],
    );
    assert!(read(&ch, request("fresh")).await.unwrap().is_empty());
    let followed = ReadRequest {
        follow: true,
        ..request("fresh")
    };
    assert!(read(&ch, followed).await.unwrap().is_empty());

    let mut ids = vec!["fresh".to_string()];
    run_detached(&d, BERTH, &image, "plain", &["--null-io"], &["echo", "hi"]);
    ids.push("plain".into());
    wait_stopped(&d, "plain");
    assert!(read(&ch, request("plain")).await.unwrap().is_empty());
    assert!(!log_dir(&d, "plain").exists());

    if which("containerd-shim-runc-v2").is_some() {
        run_detached(
            &d,
            "io.containerd.runc.v2",
            &image,
            "raw",
            &["--null-io", "--label", JSON_FILE],
            &["sh", "-c", "echo out; sleep 0.2; echo err >&2"],
        );
        ids.push("raw".into());
        wait_stopped(&d, "raw");
        assert!(log_dir(&d, "raw").join("raw.log").is_file());
        // The Go shim copies output into the file on its own and may report the exit before
        // the last line is written.
        let expected = [pair("stdout", "out"), pair("stdout", "err")];
        let mut raw = read(&ch, request("raw")).await.unwrap();
        for _ in 0..50 {
            if texts(&raw) == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            raw = read(&ch, request("raw")).await.unwrap();
        }
        assert_eq!(texts(&raw), expected);
    } else {
        eprintln!("skipping the raw log: containerd-shim-runc-v2 not installed");
    }
    sweep(&d, &ids);
}
