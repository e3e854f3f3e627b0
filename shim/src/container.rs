//! One container: its bundle, runc client, init process and exec processes, and the
//! operations that run runc for them. The task service ([`crate::service`]) finds the
//! container and calls in here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim_protos::api::Status;
use containerd_shim_protos::events::task::TaskExit;
use containerd_shim_protos::shim::oci::Options;
use containerd_shim_protos::topics::TASK_EXIT_EVENT_TOPIC;
use runc::options::{CreateOpts, DeleteOpts, ExecOpts, KillOpts};
use tokio::task::JoinHandle;

use crate::console::{self, ConsoleSocket};
use crate::error::{Error, Result};
use crate::events::Publisher;
use crate::pipes::{ProcessIo, StdioPaths};
use crate::process::{Exit, Process};
use crate::{native, reaper, rootfs, runtime, spec};

/// How long output copies may drain after a process exits.
const DRAIN: Duration = Duration::from_secs(2);

/// A container served by this shim.
pub struct Container {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// containerd namespace.
    pub namespace: String,
    /// Runtime options it was created with.
    pub options: Options,
    /// The runc client.
    pub runc: runc::Runc,
    /// Its init process.
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    rootfs_mounted: bool,
    kill_all_on_exit: bool,
    /// runc's state directory when start and delete are done in the shim ([`native`]).
    native_state: Option<PathBuf>,
    oom: Mutex<Option<JoinHandle<()>>>,
    publisher: Publisher,
}

/// What a create request asks for, decoded.
pub struct CreateConfig {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// containerd namespace.
    pub namespace: String,
    /// Runtime options.
    pub options: Options,
    /// The init process's stdio.
    pub stdio: StdioPaths,
    /// Mounts that make up `<bundle>/rootfs`.
    pub rootfs: Vec<containerd_shim_protos::api::Mount>,
}

impl Container {
    /// Mounts the rootfs and runs `runc create`; on failure nothing is left behind.
    pub async fn create(cfg: CreateConfig, publisher: Publisher) -> Result<Arc<Container>> {
        runtime::write_options(&cfg.bundle, &cfg.options)?;
        let runc = runtime::client(&cfg.options, &cfg.namespace, &cfg.bundle)?;
        let rootfs_mounted = !cfg.rootfs.is_empty();
        if rootfs_mounted {
            rootfs::mount_all(&cfg.rootfs, &cfg.bundle.join("rootfs")).await?;
        }
        let spec = match spec::prepare(&cfg.bundle) {
            Ok(s) => s,
            Err(e) => {
                rootfs::unmount(&cfg.bundle.join("rootfs"));
                return Err(e);
            }
        };
        let native_state = native_steps_apply(&cfg.options, spec.has_hooks)
            .then(|| native::state_dir(&runtime::runc_root(&cfg.options, &cfg.namespace), &cfg.id));
        let container = Arc::new(Container {
            init: Arc::new(Process::new("", cfg.stdio)),
            id: cfg.id,
            bundle: cfg.bundle,
            namespace: cfg.namespace,
            options: cfg.options,
            runc,
            execs: Mutex::new(HashMap::new()),
            rootfs_mounted,
            kill_all_on_exit: !spec.own_pid_namespace,
            native_state,
            oom: Mutex::new(None),
            publisher,
        });
        if let Err(e) = container.clone().run_create().await {
            let _ = container
                .runc
                .delete(&container.id, Some(&DeleteOpts::new().force(true)))
                .await;
            if rootfs_mounted {
                rootfs::unmount(&container.bundle.join("rootfs"));
            }
            return Err(e);
        }
        Ok(container)
    }

    async fn run_create(self: Arc<Container>) -> Result<()> {
        let init = self.init.clone();
        let io = Arc::new(ProcessIo::open(&init.stdio, &self.id, &self.namespace).await?);
        let pid_file = self.bundle.join("init.pid");
        let mut opts = CreateOpts::new()
            .io(io.clone())
            .pid_file(&pid_file)
            .no_pivot(self.options.no_pivot_root)
            .no_new_keyring(self.options.no_new_keyring);
        let socket = if init.stdio.terminal {
            let s = ConsoleSocket::new()?;
            opts = opts.console_socket(s.path());
            Some(s)
        } else {
            None
        };
        let (created, pty) = with_console(
            self.runc.create(&self.id, &self.bundle, Some(&opts)),
            socket.as_ref(),
        )
        .await;
        let tasks = io.tasks().clone();
        if let Err(e) = created {
            tasks.abort().await;
            return Err(runtime::runc_error(&self.bundle, "create", e));
        }
        let pty = match pty {
            Some(master) => Some(console::attach(
                master?,
                &init.stdio.stdin,
                &init.stdio.stdout,
                &tasks,
            )?),
            None => None,
        };
        let pid = read_pid(&pid_file)?;
        init.set_created(pid, tasks, pty);
        self.clone().follow(init, pid);
        Ok(())
    }

    /// Waits for `process` (pid `pid`) to exit, then records and publishes the exit.
    fn follow(self: Arc<Container>, process: Arc<Process>, pid: u32) {
        let exited = reaper::watch(pid);
        tokio::spawn(async move {
            let status = exited.await.map(reaper::exit_code).unwrap_or(255);
            self.on_exit(&process, pid, status).await;
        });
    }

    async fn on_exit(&self, process: &Process, pid: u32, status: u32) {
        let is_init = process.exec_id.is_empty();
        if is_init && self.kill_all_on_exit {
            let _ = self
                .runc
                .kill(
                    &self.id,
                    libc::SIGKILL as u32,
                    Some(&KillOpts::new().all(true)),
                )
                .await;
        }
        process.close_io(DRAIN).await;
        let exit = process.set_exited(status);
        let mut event = TaskExit::new();
        event.container_id = self.id.clone();
        event.id = if is_init {
            self.id.clone()
        } else {
            process.exec_id.clone()
        };
        event.pid = pid;
        event.exit_status = exit.status;
        event.exited_at = Some(exit.timestamp()).into();
        self.publisher.publish(TASK_EXIT_EVENT_TOPIC, &event);
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The init process (empty `exec_id`) or an exec process.
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("process {exec_id} does not exist")))
    }

    /// The exec processes by pid, for `Pids`.
    pub fn exec_pids(&self) -> HashMap<u32, String> {
        self.execs()
            .values()
            .map(|p| (p.pid(), p.exec_id.clone()))
            .collect()
    }

    /// Starts the init process (`runc start`) and watches its memory cgroup.
    pub async fn start_init(&self) -> Result<u32> {
        match self.init.status() {
            Status::CREATED => {}
            Status::STOPPED => {
                return Err(Error::FailedPrecondition(
                    "cannot start a stopped process".into(),
                ));
            }
            _ => {
                return Err(Error::FailedPrecondition(
                    "cannot start an already running container".into(),
                ));
            }
        }
        let released = match &self.native_state {
            Some(state) => native::start(state, || self.init.exit().is_some()).await?,
            None => false,
        };
        if !released {
            self.runc
                .start(&self.id)
                .await
                .map_err(|e| runtime::runc_error(&self.bundle, "start", e))?;
        }
        if self.init.exit().is_none() {
            self.init.set_status(Status::RUNNING);
        }
        let pid = self.init.pid();
        match crate::cgroups::watch_oom(&self.id, pid, self.publisher.clone()) {
            Ok(task) => *self.oom.lock().unwrap_or_else(|e| e.into_inner()) = Some(task),
            Err(e) => tracing::debug!(id = %self.id, error = %e, "no OOM watch"),
        }
        Ok(pid)
    }

    /// Registers an exec process (it runs on [`Container::start_exec`]).
    pub fn add_exec(
        &self,
        exec_id: &str,
        stdio: StdioPaths,
        spec: oci_spec::runtime::Process,
    ) -> Result<()> {
        if self.init.status() == Status::STOPPED {
            return Err(Error::FailedPrecondition("container is stopped".into()));
        }
        let mut execs = self.execs();
        if execs.contains_key(exec_id) {
            return Err(Error::AlreadyExists(format!(
                "id {exec_id}: already exists"
            )));
        }
        let process = Arc::new(Process::new(exec_id, stdio));
        process.set_spec(spec);
        process.set_status(Status::CREATED);
        execs.insert(exec_id.to_string(), process);
        Ok(())
    }

    /// Runs an exec process (`runc exec --detach`).
    pub async fn start_exec(self: &Arc<Container>, exec_id: &str) -> Result<u32> {
        let process = self.process(exec_id)?;
        if process.pid() != 0 || process.exit().is_some() {
            return Err(Error::FailedPrecondition(format!(
                "process {exec_id} already started"
            )));
        }
        let mut spec = process
            .take_spec()
            .ok_or_else(|| Error::FailedPrecondition(format!("process {exec_id} has no spec")))?;
        spec::clamp_process_oom_score(&mut spec);
        let io = Arc::new(ProcessIo::open(&process.stdio, &self.id, &self.namespace).await?);
        let pid_file = self.bundle.join(format!("{exec_id}.pid"));
        let mut opts = ExecOpts::new()
            .io(io.clone())
            .pid_file(&pid_file)
            .detach(true);
        let socket = if process.stdio.terminal {
            let s = ConsoleSocket::new()?;
            opts = opts.console_socket(s.path());
            Some(s)
        } else {
            None
        };
        let (ran, pty) = with_console(
            self.runc.exec(&self.id, &spec, Some(&opts)),
            socket.as_ref(),
        )
        .await;
        let tasks = io.tasks().clone();
        if let Err(e) = ran {
            tasks.abort().await;
            let _ = std::fs::remove_file(&pid_file);
            return Err(runtime::runc_error(&self.bundle, "exec", e));
        }
        let pid = read_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        let pty = match pty {
            Some(master) => Some(console::attach(
                master?,
                &process.stdio.stdin,
                &process.stdio.stdout,
                &tasks,
            )?),
            None => None,
        };
        process.set_created(pid, tasks, pty);
        process.set_status(Status::RUNNING);
        self.clone().follow(process, pid);
        Ok(pid)
    }

    /// Signals a process; `all` signals every process of the container (init only).
    pub async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let process = self.process(exec_id)?;
        if !exec_id.is_empty() {
            if process.pid() == 0 {
                return Err(Error::FailedPrecondition("process not created".into()));
            }
            if process.exit().is_some() {
                return Err(Error::NotFound("process already finished".into()));
            }
            return nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(process.pid() as i32),
                nix::sys::signal::Signal::try_from(signal as i32)
                    .map_err(|_| Error::InvalidArgument(format!("signal {signal}")))?,
            )
            .map_err(|e| Error::NotFound(format!("process already finished: {e}")));
        }
        if process.exit().is_some() && !all {
            return Err(Error::NotFound("process already finished".into()));
        }
        match self
            .runc
            .kill(&self.id, signal, Some(&KillOpts::new().all(all)))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = runtime::runc_error(&self.bundle, "kill", e);
                let text = err.to_string();
                if [
                    "not running",
                    "process already finished",
                    "no such process",
                    "does not exist",
                ]
                .iter()
                .any(|m| text.contains(m))
                {
                    Err(Error::NotFound("process already finished".into()))
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Deletes an exec process; it must not be running.
    pub async fn delete_exec(&self, exec_id: &str) -> Result<(u32, Option<Exit>)> {
        let process = self.process(exec_id)?;
        if process.pid() != 0 && process.exit().is_none() {
            return Err(Error::FailedPrecondition(
                "cannot delete a running process".into(),
            ));
        }
        self.execs().remove(exec_id);
        process.close_io(Duration::ZERO).await;
        Ok((process.pid(), process.exit()))
    }

    /// Deletes the container (`runc delete`, unmount the rootfs); the init process must
    /// have exited or never started.
    pub async fn delete_init(&self) -> Result<(u32, Option<Exit>)> {
        let status = self.init.status();
        if status != Status::STOPPED && status != Status::CREATED {
            return Err(Error::FailedPrecondition(
                "cannot delete a running process".into(),
            ));
        }
        let force = status == Status::CREATED;
        let natively = match (&self.native_state, force) {
            (Some(state), false) => match native::delete(state) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(id = %self.id, error = %e, "deleting through runc instead");
                    false
                }
            },
            _ => false,
        };
        if !natively
            && let Err(e) = self
                .runc
                .delete(&self.id, Some(&DeleteOpts::new().force(force)))
                .await
        {
            let err = runtime::runc_error(&self.bundle, "delete", e);
            if !err.to_string().contains("does not exist") {
                return Err(err);
            }
        }
        if force && self.init.pid() != 0 {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.init.wait()).await;
        }
        if let Some(task) = self.oom.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        self.init.close_io(Duration::ZERO).await;
        if self.rootfs_mounted {
            rootfs::unmount(&self.bundle.join("rootfs"));
        }
        Ok((self.init.pid(), self.init.exit()))
    }
}

/// Whether start and delete may skip runc ([`native`]): runc itself (its state layout is
/// known), cgroupfs cgroups, and no hooks for runc to run.
fn native_steps_apply(options: &Options, has_hooks: bool) -> bool {
    let runc = options.binary_name.is_empty()
        || Path::new(&options.binary_name).file_name() == Some(std::ffi::OsStr::new("runc"));
    runc && !options.systemd_cgroup && !has_hooks
}

fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    text.trim()
        .parse()
        .map_err(|_| Error::Runtime(format!("bad pid file {}", path.display())))
}

/// How long a successful runc may take to hand over the terminal it allocated.
const CONSOLE_HANDOVER: Duration = Duration::from_secs(10);

/// Runs `runc` (create or exec) while receiving the terminal it sends to `socket`. When
/// runc fails it never sends one, so the receive is abandoned instead of awaited forever.
async fn with_console<T, E>(
    runc: impl std::future::Future<Output = std::result::Result<T, E>>,
    socket: Option<&ConsoleSocket>,
) -> (std::result::Result<T, E>, Option<Result<std::fs::File>>) {
    let Some(socket) = socket else {
        return (runc.await, None);
    };
    let receive = socket.receive();
    tokio::pin!(runc, receive);
    tokio::select! {
        ran = &mut runc => {
            if ran.is_err() {
                return (ran, None);
            }
            let master = tokio::time::timeout(CONSOLE_HANDOVER, receive)
                .await
                .unwrap_or_else(|_| Err(Error::Runtime("runc did not send the terminal".into())));
            (ran, Some(master))
        }
        master = &mut receive => (runc.await, Some(master)),
    }
}
