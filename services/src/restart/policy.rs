//! What a container's labels ask of the monitor, and the decision for one observed state:
//! pure functions, no I/O.
//!
//! * Only a container whose `containerd.io/restart.status` is `running` is ever restarted.
//! * `containerd.io/restart.policy` then says when: `always` (also when the label is absent),
//!   `unless-stopped` (unless `containerd.io/restart.explicitly-stopped` is `true`),
//!   `on-failure[:N]` (after a non-zero or unknown exit, while `containerd.io/restart.count`
//!   is below N; no N or 0 means no limit), `no`. An unparsable policy counts as `no`.
//! * A container without a task is restarted as if its task had failed (its exit is
//!   unknown); one with a live task (created, running, paused) is left alone.
//! * A container labelled `berth.io/auto-remove=true` whose task exited, and that is not
//!   restarted, is removed. A container without a task is never removed.

use std::collections::HashMap;

use berth_proto::{
    errdefs::Error,
    labels::{berth, restart},
};

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Restart whenever the task is not running.
    Always,
    /// Like `Always`, unless the user stopped the container.
    UnlessStopped,
    /// Restart after a failed exit, at most `max` times (0: no limit).
    OnFailure {
        /// The most restarts (the `restart.count` label) allowed; 0 for no limit.
        max: u32,
    },
    /// Never restart.
    No,
}

impl Policy {
    /// Parses a `containerd.io/restart.policy` value; empty is `always`.
    pub fn parse(s: &str) -> Result<Policy, Error> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name, arg) {
            ("" | "always", None) => Ok(Policy::Always),
            ("unless-stopped", None) => Ok(Policy::UnlessStopped),
            ("no", None) => Ok(Policy::No),
            ("on-failure", None) => Ok(Policy::OnFailure { max: 0 }),
            ("on-failure", Some(n)) => {
                n.parse().map(|max| Policy::OnFailure { max }).map_err(|_| {
                    Error::invalid(format!("invalid restart count {n:?} in policy {s:?}"))
                })
            }
            _ => Err(Error::invalid(format!("invalid restart policy {s:?}"))),
        }
    }
}

/// What a container's labels ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// `restart.status` is `running`.
    pub keep_running: bool,
    /// The restart policy.
    pub policy: Policy,
    /// How many times the monitor restarted the task (`restart.count`).
    pub count: u32,
    /// `restart.explicitly-stopped` is `true`.
    pub explicitly_stopped: bool,
    /// `berth.io/auto-remove` is `true`.
    pub auto_remove: bool,
}

impl Wanted {
    /// Reads the labels; an invalid policy is logged and counts as `no`, an invalid count
    /// as 0.
    pub fn from_labels(id: &str, labels: &HashMap<String, String>) -> Wanted {
        let get = |k: &str| labels.get(k).map_or("", String::as_str);
        let policy = Policy::parse(get(restart::POLICY)).unwrap_or_else(|e| {
            tracing::warn!(id, error = %e, "ignoring the restart policy");
            Policy::No
        });
        Wanted {
            keep_running: get(restart::STATUS) == "running",
            policy,
            count: get(restart::COUNT).parse().unwrap_or(0),
            explicitly_stopped: get(restart::EXPLICITLY_STOPPED) == "true",
            auto_remove: get(berth::AUTO_REMOVE) == "true",
        }
    }

    /// Whether the monitor has anything to do with this container at all.
    pub fn watched(&self) -> bool {
        self.keep_running || self.auto_remove
    }

    /// Whether a task that ended with `exit` (None: unknown) is to be restarted.
    fn restart_after(&self, exit: Option<u32>) -> bool {
        self.keep_running
            && match self.policy {
                Policy::Always => true,
                Policy::UnlessStopped => !self.explicitly_stopped,
                Policy::OnFailure { max } => exit != Some(0) && (max == 0 || self.count < max),
                Policy::No => false,
            }
    }
}

/// The state of a container's task, as the monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Being created, created, running, paused: someone is in charge.
    Live,
    /// The init process exited with this status.
    Exited(u32),
    /// There is no task.
    Absent,
}

/// What the monitor does about a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Replace the task with a new, started one.
    Restart,
    /// Remove the task, the container and its snapshot.
    Remove,
    /// Leave it.
    Nothing,
}

/// The decision for a container wanting `wanted` whose task is `observed`.
pub fn decide(wanted: &Wanted, observed: Observed) -> Decision {
    match observed {
        Observed::Live => Decision::Nothing,
        Observed::Exited(status) if wanted.restart_after(Some(status)) => Decision::Restart,
        Observed::Exited(_) if wanted.auto_remove => Decision::Remove,
        Observed::Exited(_) => Decision::Nothing,
        Observed::Absent if wanted.restart_after(None) => Decision::Restart,
        Observed::Absent => Decision::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(labels: &[(&str, &str)]) -> Wanted {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Wanted::from_labels("c", &labels)
    }

    const RUNNING: (&str, &str) = (restart::STATUS, "running");

    #[test]
    fn parses_policies() {
        assert_eq!(Policy::parse("").unwrap(), Policy::Always);
        assert_eq!(Policy::parse("always").unwrap(), Policy::Always);
        assert_eq!(
            Policy::parse("unless-stopped").unwrap(),
            Policy::UnlessStopped
        );
        assert_eq!(Policy::parse("no").unwrap(), Policy::No);
        assert_eq!(
            Policy::parse("on-failure").unwrap(),
            Policy::OnFailure { max: 0 }
        );
        assert_eq!(
            Policy::parse("on-failure:3").unwrap(),
            Policy::OnFailure { max: 3 }
        );
        for bad in [
            "sometimes",
            "on-failure:x",
            "on-failure:-1",
            "always:2",
            "no:1",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_labels() {
        let w = wanted(&[
            RUNNING,
            (restart::POLICY, "on-failure:2"),
            (restart::COUNT, "1"),
            (restart::EXPLICITLY_STOPPED, "true"),
            (berth::AUTO_REMOVE, "true"),
        ]);
        assert_eq!(
            w,
            Wanted {
                keep_running: true,
                policy: Policy::OnFailure { max: 2 },
                count: 1,
                explicitly_stopped: true,
                auto_remove: true,
            }
        );
        let w = wanted(&[(restart::POLICY, "bogus"), (restart::COUNT, "x")]);
        assert_eq!((w.policy, w.count, w.keep_running), (Policy::No, 0, false));
        assert!(!w.watched());
    }

    #[test]
    fn always_is_the_default_and_restarts_any_exit() {
        let w = wanted(&[RUNNING]);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Restart);
        assert_eq!(decide(&w, Observed::Exited(137)), Decision::Restart);
        assert_eq!(decide(&w, Observed::Absent), Decision::Restart);
        assert_eq!(decide(&w, Observed::Live), Decision::Nothing);
    }

    #[test]
    fn stopped_status_is_never_restarted() {
        for policy in ["always", "unless-stopped", "on-failure"] {
            let w = wanted(&[(restart::STATUS, "stopped"), (restart::POLICY, policy)]);
            assert_eq!(decide(&w, Observed::Exited(1)), Decision::Nothing);
            assert_eq!(decide(&w, Observed::Absent), Decision::Nothing);
        }
    }

    #[test]
    fn unless_stopped_respects_explicit_stops() {
        let w = wanted(&[RUNNING, (restart::POLICY, "unless-stopped")]);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Restart);
        let w = wanted(&[
            RUNNING,
            (restart::POLICY, "unless-stopped"),
            (restart::EXPLICITLY_STOPPED, "true"),
        ]);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Nothing);
        assert_eq!(decide(&w, Observed::Absent), Decision::Nothing);
    }

    #[test]
    fn on_failure_counts_restarts() {
        let policy = (restart::POLICY, "on-failure:2");
        let w = wanted(&[RUNNING, policy]);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Nothing);
        assert_eq!(decide(&w, Observed::Exited(3)), Decision::Restart);
        assert_eq!(decide(&w, Observed::Absent), Decision::Restart);
        let w = wanted(&[RUNNING, policy, (restart::COUNT, "1")]);
        assert_eq!(decide(&w, Observed::Exited(3)), Decision::Restart);
        let w = wanted(&[RUNNING, policy, (restart::COUNT, "2")]);
        assert_eq!(decide(&w, Observed::Exited(3)), Decision::Nothing);
        let w = wanted(&[
            RUNNING,
            (restart::POLICY, "on-failure"),
            (restart::COUNT, "99"),
        ]);
        assert_eq!(decide(&w, Observed::Exited(1)), Decision::Restart);
    }

    #[test]
    fn no_policy_never_restarts() {
        let w = wanted(&[RUNNING, (restart::POLICY, "no")]);
        assert_eq!(decide(&w, Observed::Exited(1)), Decision::Nothing);
        assert_eq!(decide(&w, Observed::Absent), Decision::Nothing);
    }

    #[test]
    fn auto_remove_after_an_exit_not_due_a_restart() {
        let w = wanted(&[(berth::AUTO_REMOVE, "true")]);
        assert!(w.watched());
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Remove);
        assert_eq!(decide(&w, Observed::Absent), Decision::Nothing);
        assert_eq!(decide(&w, Observed::Live), Decision::Nothing);
        let w = wanted(&[
            RUNNING,
            (restart::POLICY, "on-failure:1"),
            (berth::AUTO_REMOVE, "true"),
        ]);
        assert_eq!(decide(&w, Observed::Exited(1)), Decision::Restart);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Remove);
        let w = wanted(&[RUNNING, (berth::AUTO_REMOVE, "true")]);
        assert_eq!(decide(&w, Observed::Exited(0)), Decision::Restart);
    }
}
