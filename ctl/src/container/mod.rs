//! What the container lifecycle commands (`run`, `create`, `start`, `stop`, `exec`, `rm`…)
//! share: the flags that describe a container, creating one, stdio through FIFOs, the local
//! terminal, signals, task operations, label updates and removal.

pub mod create;
pub mod flags;
pub mod labels;
pub mod process;
pub mod remove;
pub mod rootfs;
pub mod seed;
pub mod signals;
pub mod stdio;
pub mod tty;
