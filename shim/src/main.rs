//! `containerd-shim-berth-v2`: `start`, `delete`, or (no action) the ttrpc server.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use berth_shim::{cleanup, server, start};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::types::introspection::RuntimeInfo;

/// The runtime name this shim answers to.
const RUNTIME: &str = "io.containerd.berth.v2";

/// Logs go to the `log` FIFO containerd reads in the bundle, never blocking.
fn init_logging(debug: bool) {
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let Ok(fifo) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(Mutex::new(fifo))
        .try_init();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match containerd_shim::parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{RUNTIME}: {e}");
            std::process::exit(1);
        }
    };
    let result = if flags.version {
        println!("{RUNTIME} (berth {})", env!("CARGO_PKG_VERSION"));
        Ok(())
    } else if flags.info {
        let info = RuntimeInfo {
            name: RUNTIME.to_string(),
            ..Default::default()
        };
        info.write_to_bytes()
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(std::io::Write::write_all(&mut std::io::stdout(), &b)?))
    } else if flags.action == "start" {
        start::run(&flags)
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .build();
        match rt {
            Err(e) => Err(e.into()),
            Ok(rt) => rt.block_on(async {
                if flags.action == "delete" {
                    berth_shim::reaper::start()?;
                    cleanup::run(&flags.id, &flags.namespace).await
                } else {
                    init_logging(flags.debug);
                    server::run(&flags).await
                }
            }),
        }
    };
    if let Err(e) = result {
        eprintln!("{RUNTIME}: {e:#}");
        std::process::exit(1);
    }
}
