//! One module per verb: a clap `Args` struct and `run(args, &Client)`.

pub mod archive;
pub mod login;
pub mod namespace;
pub mod plugins;
pub mod pull;
pub mod push;
pub mod version;
// Container lifecycle and I/O.
pub mod attach;
pub mod create;
pub mod exec;
pub mod kill;
pub mod logs;
pub mod pause;
pub mod rename;
pub mod rm;
pub mod run;
pub mod start;
pub mod stop;
pub mod wait;
// wt-ctl-system
pub mod completion;
pub mod container;
pub mod content;
pub mod events;
pub mod lease;
pub mod snapshot;
pub mod system;
pub mod task;
pub mod volume;
// inspect worker
pub mod commit;
pub mod cp;
pub mod export;
pub mod image;
pub mod images;
pub mod inspect;
pub mod ps;
pub mod rmi;
pub mod stats;
pub mod tag;
pub mod top;
