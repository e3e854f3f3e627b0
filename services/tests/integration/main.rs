//! berthd integration tests: a private daemon per test, driven by real clients (containerd's
//! Go `ctr` where installed, and containerd's gRPC API through the `containerd-client` crate).

mod archives;
mod bad_input;
mod cli_images;
mod cli_inspect;
mod cli_run;
mod cli_system;
mod containers;
mod content;
mod crash;
mod ctr;
mod daemon;
mod images;
mod images_ctr;
mod leases;
mod lifecycle;
mod logs;
mod namespaces;
mod pull;
mod registry;
mod restart_policy;
mod security;
mod tasks;
mod tasks_bad_input;
mod tasks_restart;
mod transfer;
mod volumes;
