//! Limits that may not exceed the calling process's own: rlimits (raising
//! a hard limit needs `CAP_SYS_RESOURCE`, so runc fails with `EPERM`) and
//! `oom_score_adj` (lowering it needs the same capability).

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use rustix::process::{Resource, getrlimit};

use crate::SpecError;

/// Where a process reads its own OOM score adjustment.
const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// The kernel's range for `oom_score_adj`.
const OOM_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// The calling process's hard limit for `typ`; `None` means unlimited.
pub fn own_hard_limit(typ: PosixRlimitType) -> Option<u64> {
    let resource = match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    };
    getrlimit(resource).maximum
}

/// An rlimit of `soft`/`hard`, both lowered to at most `ceiling` (the hard
/// limit of whoever will run the container; `None` = unlimited).
pub fn clamp_rlimit(
    typ: PosixRlimitType,
    soft: u64,
    hard: u64,
    ceiling: Option<u64>,
) -> PosixRlimit {
    let hard = ceiling.map_or(hard, |c| hard.min(c));
    PosixRlimitBuilder::default()
        .typ(typ)
        .hard(hard)
        .soft(soft.min(hard))
        .build()
        .expect("every field is set")
}

/// An rlimit of `soft`/`hard`, both lowered to at most the calling
/// process's own hard limit for `typ`.
pub fn clamp_to_own_limit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
    clamp_rlimit(typ, soft, hard, own_hard_limit(typ))
}

/// The calling process's `oom_score_adj`.
pub fn own_oom_score_adj() -> Result<i32, SpecError> {
    let io = |source| SpecError::Io {
        what: "reading",
        path: OOM_SCORE_ADJ.into(),
        source,
    };
    let text = std::fs::read_to_string(OOM_SCORE_ADJ).map_err(io)?;
    text.trim()
        .parse()
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Checks `requested` is in the kernel's range and raises it to `floor`
/// (the value the container's creator already has) if it is lower.
pub fn clamp_oom_score_adj(requested: i32, floor: i32) -> Result<i32, SpecError> {
    if !OOM_RANGE.contains(&requested) {
        return Err(SpecError::invalid(
            "oom_score_adj",
            format!("{requested} is outside -1000..=1000"),
        ));
    }
    Ok(requested.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_is_clamped_to_the_ceiling() {
        let l = clamp_rlimit(
            PosixRlimitType::RlimitNofile,
            1 << 20,
            1 << 20,
            Some(20_000),
        );
        assert_eq!((l.soft(), l.hard()), (20_000, 20_000));
        let l = clamp_rlimit(PosixRlimitType::RlimitNofile, 1024, 4096, None);
        assert_eq!((l.soft(), l.hard()), (1024, 4096));
        let l = clamp_rlimit(PosixRlimitType::RlimitNofile, 8192, 4096, Some(10_000));
        assert_eq!(
            (l.soft(), l.hard()),
            (4096, 4096),
            "soft never exceeds hard"
        );
    }

    #[test]
    fn own_limit_is_respected() {
        let own = own_hard_limit(PosixRlimitType::RlimitNofile);
        let l = clamp_to_own_limit(PosixRlimitType::RlimitNofile, u64::MAX, u64::MAX);
        assert_eq!(Some(l.hard()), own.or(Some(u64::MAX)));
    }

    #[test]
    fn oom_score_adj_never_goes_below_the_floor() {
        assert_eq!(clamp_oom_score_adj(-500, 0).unwrap(), 0);
        assert_eq!(clamp_oom_score_adj(300, 0).unwrap(), 300);
        assert_eq!(clamp_oom_score_adj(-999, -1000).unwrap(), -999);
        assert!(clamp_oom_score_adj(1001, 0).is_err());
        assert!(clamp_oom_score_adj(-1001, -1000).is_err());
        let own = own_oom_score_adj().unwrap();
        assert!(OOM_RANGE.contains(&own));
    }
}
