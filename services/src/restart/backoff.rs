//! Per-container bookkeeping: one job at a time per container, and a growing pause between
//! restarts of a task that keeps exiting, so a crash loop cannot spin the CPU.
//!
//! The first restart after a task ran for [`RESET`] or more is immediate; each further one
//! within that time waits twice as long as the one before, from [`FIRST`] up to [`MAX`].

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The first pause of a crash loop.
pub const FIRST: Duration = Duration::from_millis(100);
/// The longest pause.
pub const MAX: Duration = Duration::from_secs(10);
/// How long a task must run for its next restart to be immediate again.
pub const RESET: Duration = Duration::from_secs(10);

/// The pause before a restart, given the previous pause and how long ago the last restart
/// was (None: never).
pub fn next_delay(previous: Duration, since_last: Option<Duration>) -> Duration {
    match since_last {
        Some(ran) if ran < RESET => (previous * 2).clamp(FIRST, MAX),
        _ => Duration::ZERO,
    }
}

/// A container: namespace and id.
pub type Key = (String, String);

#[derive(Debug, Default)]
struct Entry {
    busy: bool,
    again: bool,
    delay: Duration,
    last_restart: Option<Instant>,
}

/// The state of every container the monitor is working on or has restarted lately.
#[derive(Debug, Default)]
pub struct Tracker {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Tracker {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims `key` for one job; false when a job holds it already (which is then asked to
    /// look again when done, so nothing seen meanwhile is lost).
    pub fn claim(&self, key: &Key) -> bool {
        let mut entries = self.entries();
        let entry = entries.entry(key.clone()).or_default();
        if entry.busy {
            entry.again = true;
            return false;
        }
        entry.busy = true;
        true
    }

    /// Ends a job on `key`; true (and still claimed) when it was asked to look again.
    pub fn release(&self, key: &Key) -> bool {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key) else {
            return false;
        };
        if std::mem::take(&mut entry.again) {
            return true;
        }
        entry.busy = false;
        if entry.last_restart.is_none() {
            entries.remove(key);
        }
        false
    }

    /// The pause due before restarting `key` now.
    pub fn delay(&self, key: &Key) -> Duration {
        let mut entries = self.entries();
        let entry = entries.entry(key.clone()).or_default();
        entry.delay = next_delay(entry.delay, entry.last_restart.map(|t| t.elapsed()));
        entry.delay
    }

    /// Records a restart (or an attempt) of `key`, now.
    pub fn restarted(&self, key: &Key) {
        self.entries().entry(key.clone()).or_default().last_restart = Some(Instant::now());
    }

    /// Forgets idle containers whose last restart is older than [`RESET`].
    pub fn forget_idle(&self) {
        self.entries()
            .retain(|_, e| e.busy || e.last_restart.is_some_and(|t| t.elapsed() < RESET));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_after_a_long_run() {
        let soon = Some(Duration::from_secs(1));
        assert_eq!(next_delay(Duration::ZERO, None), Duration::ZERO);
        assert_eq!(next_delay(Duration::ZERO, soon), FIRST);
        assert_eq!(next_delay(FIRST, soon), FIRST * 2);
        assert_eq!(next_delay(Duration::from_secs(8), soon), MAX);
        assert_eq!(next_delay(MAX, soon), MAX);
        assert_eq!(next_delay(MAX, Some(RESET)), Duration::ZERO);
    }

    #[test]
    fn one_job_per_container_and_nothing_lost() {
        let t = Tracker::default();
        let key = ("ns".to_string(), "c".to_string());
        assert!(t.claim(&key));
        assert!(!t.claim(&key));
        assert!(t.release(&key), "asked again while busy");
        assert!(!t.release(&key));
        assert!(t.entries().is_empty());
        assert!(t.claim(&key));
        assert_eq!(t.delay(&key), Duration::ZERO);
        t.restarted(&key);
        assert!(!t.release(&key));
        assert_eq!(t.delay(&key), FIRST);
        t.forget_idle();
        assert_eq!(t.entries().len(), 1, "restarted lately: kept");
    }
}
