//! cgroup metrics as shims report them in `Tasks.Metrics`: an Any holding containerd's
//! `io.containerd.cgroups.v1.Metrics` or `io.containerd.cgroups.v2.Metrics`. Only the fields
//! `stats` shows are declared, with the upstream field numbers (containerd/cgroups
//! `stats/v1/metrics.proto` and `v2/stats/metrics.proto`); prost skips the rest.

use anyhow::bail;
use prost::Message;

/// cgroup v1 messages.
mod v1 {
    /// `io.containerd.cgroups.v1.Metrics`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "2")]
        pub pids: Option<PidsStat>,
        #[prost(message, optional, tag = "3")]
        pub cpu: Option<CpuStat>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<MemoryStat>,
        #[prost(message, optional, tag = "5")]
        pub blkio: Option<BlkIoStat>,
    }

    /// `PidsStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PidsStat {
        #[prost(uint64, tag = "1")]
        pub current: u64,
    }

    /// `CPUStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CpuStat {
        #[prost(message, optional, tag = "1")]
        pub usage: Option<CpuUsage>,
    }

    /// `CPUUsage` (nanoseconds).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CpuUsage {
        #[prost(uint64, tag = "1")]
        pub total: u64,
    }

    /// `MemoryStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemoryStat {
        #[prost(uint64, tag = "30")]
        pub total_inactive_file: u64,
        #[prost(message, optional, tag = "33")]
        pub usage: Option<MemoryEntry>,
    }

    /// `MemoryEntry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemoryEntry {
        #[prost(uint64, tag = "1")]
        pub limit: u64,
        #[prost(uint64, tag = "2")]
        pub usage: u64,
    }

    /// `BlkIOStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BlkIoStat {
        #[prost(message, repeated, tag = "1")]
        pub io_service_bytes_recursive: Vec<BlkIoEntry>,
    }

    /// `BlkIOEntry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BlkIoEntry {
        #[prost(string, tag = "1")]
        pub op: String,
        #[prost(uint64, tag = "5")]
        pub value: u64,
    }
}

/// cgroup v2 messages.
mod v2 {
    /// `io.containerd.cgroups.v2.Metrics`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "1")]
        pub pids: Option<PidsStat>,
        #[prost(message, optional, tag = "2")]
        pub cpu: Option<CpuStat>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<MemoryStat>,
        #[prost(message, optional, tag = "6")]
        pub io: Option<IoStat>,
    }

    /// `PidsStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PidsStat {
        #[prost(uint64, tag = "1")]
        pub current: u64,
    }

    /// `CPUStat` (microseconds).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CpuStat {
        #[prost(uint64, tag = "1")]
        pub usage_usec: u64,
    }

    /// `MemoryStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemoryStat {
        #[prost(uint64, tag = "13")]
        pub inactive_file: u64,
        #[prost(uint64, tag = "32")]
        pub usage: u64,
        #[prost(uint64, tag = "33")]
        pub usage_limit: u64,
    }

    /// `IOStat`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IoStat {
        #[prost(message, repeated, tag = "1")]
        pub usage: Vec<IoEntry>,
    }

    /// `IOEntry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IoEntry {
        #[prost(uint64, tag = "3")]
        pub rbytes: u64,
        #[prost(uint64, tag = "4")]
        pub wbytes: u64,
    }
}

/// One reading of a container's cgroup, whichever version it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// CPU time used so far, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, without the inactive page cache (docker's figure).
    pub memory: u64,
    /// Memory limit (0 when none is reported).
    pub memory_limit: u64,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
    /// Number of processes.
    pub pids: u64,
}

/// Decodes a metrics Any by its type URL.
pub fn decode(type_url: &str, value: &[u8]) -> anyhow::Result<Sample> {
    if type_url.ends_with("cgroups.v1.Metrics") {
        let m = v1::Metrics::decode(value)?;
        let mem = m.memory.unwrap_or_default();
        let usage = mem.usage.unwrap_or_default();
        let blk = m.blkio.unwrap_or_default().io_service_bytes_recursive;
        let sum = |op: &str| {
            blk.iter()
                .filter(|e| e.op.eq_ignore_ascii_case(op))
                .map(|e| e.value)
                .sum()
        };
        return Ok(Sample {
            cpu_ns: m.cpu.and_then(|c| c.usage).map_or(0, |u| u.total),
            memory: usage.usage.saturating_sub(mem.total_inactive_file),
            memory_limit: usage.limit,
            block_read: sum("read"),
            block_write: sum("write"),
            pids: m.pids.map_or(0, |p| p.current),
        });
    }
    if type_url.ends_with("cgroups.v2.Metrics") {
        let m = v2::Metrics::decode(value)?;
        let mem = m.memory.unwrap_or_default();
        let io = m.io.unwrap_or_default().usage;
        return Ok(Sample {
            cpu_ns: m.cpu.map_or(0, |c| c.usage_usec.saturating_mul(1000)),
            memory: mem.usage.saturating_sub(mem.inactive_file),
            memory_limit: mem.usage_limit,
            block_read: io.iter().map(|e| e.rbytes).sum(),
            block_write: io.iter().map(|e| e.wbytes).sum(),
            pids: m.pids.map_or(0, |p| p.current),
        });
    }
    bail!("unknown metrics type {type_url:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_versions() {
        let m1 = v1::Metrics {
            pids: Some(v1::PidsStat { current: 2 }),
            cpu: Some(v1::CpuStat {
                usage: Some(v1::CpuUsage { total: 5 }),
            }),
            memory: Some(v1::MemoryStat {
                total_inactive_file: 10,
                usage: Some(v1::MemoryEntry {
                    limit: 1000,
                    usage: 110,
                }),
            }),
            blkio: Some(v1::BlkIoStat {
                io_service_bytes_recursive: vec![
                    v1::BlkIoEntry {
                        op: "Read".into(),
                        value: 7,
                    },
                    v1::BlkIoEntry {
                        op: "Write".into(),
                        value: 9,
                    },
                ],
            }),
        };
        let s = decode("io.containerd.cgroups.v1.Metrics", &m1.encode_to_vec()).unwrap();
        assert_eq!(
            s,
            Sample {
                cpu_ns: 5,
                memory: 100,
                memory_limit: 1000,
                block_read: 7,
                block_write: 9,
                pids: 2
            }
        );
        let m2 = v2::Metrics {
            pids: Some(v2::PidsStat { current: 1 }),
            cpu: Some(v2::CpuStat { usage_usec: 3 }),
            memory: Some(v2::MemoryStat {
                inactive_file: 1,
                usage: 11,
                usage_limit: 50,
            }),
            io: Some(v2::IoStat {
                usage: vec![v2::IoEntry {
                    rbytes: 4,
                    wbytes: 6,
                }],
            }),
        };
        let s = decode("io.containerd.cgroups.v2.Metrics", &m2.encode_to_vec()).unwrap();
        assert_eq!((s.cpu_ns, s.memory, s.memory_limit), (3000, 10, 50));
        assert_eq!((s.block_read, s.block_write, s.pids), (4, 6, 1));
        assert!(decode("x", &[]).is_err());
    }
}
