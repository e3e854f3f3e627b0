//! Keeping an idle shim small.
//!
//! A shim lives as long as its containers and spends nearly all of that time asleep, but
//! start-up and each request leave behind resident pages it no longer uses: code and
//! read-only data mapped from the binary and libc (the kernel maps file pages around every
//! fault, so a 10 MB binary ends up mostly resident) and freed heap that malloc keeps.
//! Once the shim has been idle for [`IDLE`], [`Trimmer`] hands both back: freed heap through
//! `malloc_trim`, and the page-table entries of file-backed mappings that were never written
//! through `madvise(MADV_DONTNEED)`. Those pages stay in the page cache, shared with every
//! other shim; touching them again costs a minor fault. Mappings that hold private copies
//! (relocated data, anything writable) are never touched, so no state can be lost.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

/// How long the shim must be quiet before it trims.
pub const IDLE: Duration = Duration::from_millis(300);

/// Trims the shim's resident memory once it has been idle for [`IDLE`] after activity.
#[derive(Clone)]
pub struct Trimmer {
    activity: Arc<Notify>,
}

impl Trimmer {
    /// Starts the trimming task on the current tokio runtime.
    pub fn start() -> Trimmer {
        let activity = Arc::new(Notify::new());
        let woken = activity.clone();
        tokio::spawn(async move {
            loop {
                woken.notified().await;
                // Wait for a quiet period: every new activity restarts it.
                while tokio::time::timeout(IDLE, woken.notified()).await.is_ok() {}
                trim();
            }
        });
        Trimmer { activity }
    }

    /// Records activity: a trim follows once the shim has been idle for [`IDLE`].
    pub fn touch(&self) {
        self.activity.notify_one();
    }
}

/// Returns freed heap to the kernel and drops the mappings of clean file pages.
pub fn trim() {
    // SAFETY: malloc_trim only releases memory malloc holds free.
    unsafe { libc::malloc_trim(0) };
    match std::fs::read_to_string("/proc/self/smaps") {
        Ok(smaps) => {
            for (start, len) in clean_file_mappings(&smaps) {
                // SAFETY: the range is a read-only, file-backed mapping without private
                // (anonymous) pages: dropping its page-table entries loses nothing, the next
                // access maps the same file page again.
                unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
            }
        }
        Err(e) => tracing::debug!(error = %e, "reading /proc/self/smaps"),
    }
}

/// One mapping of `/proc/self/smaps` as far as trimming cares.
struct Mapping {
    start: usize,
    len: usize,
    trimmable: bool,
    anonymous_kib: u64,
}

/// The `(start, length)` of every mapping that is file-backed, not writable and holds no
/// anonymous (copied-on-write) pages.
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    let finish = |m: Option<Mapping>, out: &mut Vec<(usize, usize)>| {
        if let Some(m) = m
            && m.trimmable
            && m.anonymous_kib == 0
        {
            out.push((m.start, m.len));
        }
    };
    for line in smaps.lines() {
        if let Some(m) = parse_header(line) {
            finish(current.replace(m), &mut out);
        } else if let Some(rest) = line.strip_prefix("Anonymous:")
            && let Some(m) = current.as_mut()
        {
            m.anonymous_kib = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(u64::MAX);
        }
    }
    finish(current, &mut out);
    out
}

/// Parses a mapping header line: `start-end perms offset dev inode [path]`.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("");
    let trimmable = inode != 0
        && path.starts_with('/')
        && perms.starts_with('r')
        && !perms.contains('w')
        && perms.ends_with('p');
    Some(Mapping {
        start,
        len: end.checked_sub(start)?,
        trimmable,
        anonymous_kib: u64::MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:01 1234 /usr/bin/shim
Rss:                1024 kB
Anonymous:             0 kB
55d0a0100000-55d0a0500000 r-xp 00100000 fd:01 1234 /usr/bin/shim
Anonymous:             0 kB
55d0a0500000-55d0a0560000 r--p 00500000 fd:01 1234 /usr/bin/shim
Anonymous:           380 kB
55d0a0560000-55d0a0570000 rw-p 00560000 fd:01 1234 /usr/bin/shim
Anonymous:            12 kB
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           500 kB
7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xs 00000000 fd:01 99 /dev/shm/shared
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_file_mappings_are_trimmed() {
        let got = clean_file_mappings(SMAPS);
        assert_eq!(
            got,
            vec![(0x55d0a0000000, 0x100000), (0x55d0a0100000, 0x400000)]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_kept() {
        let smaps = "7f0000300000-7f0000400000 r-xp 00000000 fd:01 7 /lib/libc.so.6\n";
        assert!(clean_file_mappings(smaps).is_empty());
    }

    #[test]
    fn trimming_our_own_process_keeps_it_working() {
        let before: Vec<u64> = (0..1000).collect();
        trim();
        let after: u64 = before.iter().sum();
        assert_eq!(after, 499_500);
        assert!(
            !clean_file_mappings(&std::fs::read_to_string("/proc/self/smaps").unwrap()).is_empty()
        );
    }
}
