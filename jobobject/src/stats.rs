//! What a job has used.

use std::time::Duration;

/// Memory use of a job, from [`JobObject::memory_stats`](crate::JobObject::memory_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Bytes the job uses now.
    ///
    /// Linux v2: `memory.current`; v1: `memory.usage_in_bytes` (both include the page cache
    /// charged to the job). Windows: `JobMemory` of JobObjectMemoryUsageInformation.
    pub current: u64,
    /// The most bytes the job has used at once.
    ///
    /// Linux v2: `memory.peak` (Linux 5.19+, else the current value); v1:
    /// `memory.max_usage_in_bytes`. Windows: `PeakJobMemoryUsed`.
    pub peak: u64,
    /// The job's memory limit in bytes as enforced, or `None` without one.
    pub limit: Option<u64>,
    /// Bytes of the job's memory in swap now, where the kernel counts it.
    ///
    /// Linux v2: `memory.swap.current`; v1: `memory.memsw.usage_in_bytes` less
    /// `memory.usage_in_bytes`. `None` without swap accounting, and on Windows (which counts
    /// committed memory, wherever it lies).
    pub swap: Option<u64>,
}

/// CPU time and process counts of a job, from
/// [`JobObject::processor_stats`](crate::JobObject::processor_stats).
///
/// On Windows every field comes from JobObjectBasicAccountingInformation. On Linux the times
/// and faults come from the job's cgroups and count every process that was ever in the job;
/// Linux keeps no count of processes that passed through a cgroup, so the process totals are
/// the library's own, as each field says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ProcessorStats {
    /// CPU time spent in user mode by the job's processes, the exited ones included.
    ///
    /// Linux v2 (also the v2 mount of a hybrid host): `user_usec` of `cpu.stat`; v1 only:
    /// `cpuacct.usage_user`.
    pub user_time: Duration,
    /// CPU time spent in the kernel on behalf of the job's processes.
    ///
    /// Linux v2 (also the v2 mount of a hybrid host): `system_usec` of `cpu.stat`; v1 only:
    /// `cpuacct.usage_sys`.
    pub kernel_time: Duration,
    /// Page faults of the job's processes.
    ///
    /// Linux v2: `pgfault` of `memory.stat`; v1: `total_pgfault` of `memory.stat`; 0 where the
    /// job has no memory controller.
    pub page_faults: u64,
    /// Processes that have been in the job, counting those that exited.
    ///
    /// A running total on both systems: it never goes down. Linux keeps no such count, so it
    /// is a lower bound: the processes that handles in this process spawned or assigned, or
    /// the active and terminated ones together if that is higher, and never less than this
    /// process reported before (descendants forked inside the job that exited on their own
    /// are not counted).
    pub total_processes: u32,
    /// Processes in the job now (Linux: the `cgroup.procs` of the job and its nested jobs).
    pub active_processes: u32,
    /// Processes killed by the job. Linux: by [`terminate`](crate::JobObject::terminate) (those
    /// this process terminated) or by the OOM killer (`oom_kill` of `memory.events`, or of
    /// `memory.oom_control` on v1). Windows: `TotalTerminatedProcesses`, the processes Windows
    /// terminated for a limit the job sets (a process over its time limit, say); processes
    /// ended by `terminate` count there only as far as Windows counts them.
    pub terminated_processes: u32,
    /// The most processes the job has held at once, where the system counts it: Linux
    /// `pids.peak` (from Linux 6.1, on v2 and v1 alike, with the pids controller), which counts
    /// threads too. `None` elsewhere, and on Windows.
    pub peak_processes: Option<u64>,
    /// How many times the process limit refused a new process, where the system counts it:
    /// Linux, the `max` count of `pids.events`. `None` on Windows, which reports each refusal
    /// as a [`Notification::ActiveProcessLimit`](crate::Notification::ActiveProcessLimit)
    /// only.
    pub process_limit_refusals: Option<u64>,
}

/// Disk I/O of a job, from [`JobObject::storage_stats`](crate::JobObject::storage_stats).
///
/// Windows: JobObjectIoAttribution. Linux v2: `io.stat` (`rios`, `rbytes`, `wios`, `wbytes`)
/// summed over devices, which includes the writeback of the job's buffered writes; v1:
/// `blkio.throttle.io_serviced_recursive` and `io_service_bytes_recursive`, which count
/// reads and direct writes but not the writeback of buffered writes (v1 cannot attribute it).
/// Kernels before about 6.3 count a v1 cgroup's I/O there only while it has a throttle rule
/// on the disk, so on v1 turning I/O tracking on installs a bandwidth rule that never
/// throttles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StorageStats {
    /// Read operations.
    pub read_operations: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Write operations.
    pub write_operations: u64,
    /// Bytes written.
    pub write_bytes: u64,
}
