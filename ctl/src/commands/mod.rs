//! One module per verb: a clap `Args` struct and `run(args, &Client)`.

pub mod archive;
pub mod login;
pub mod namespace;
pub mod plugins;
pub mod pull;
pub mod push;
pub mod version;
