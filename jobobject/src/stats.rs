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
}

/// CPU time and process counts of a job, from
/// [`JobObject::processor_stats`](crate::JobObject::processor_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ProcessorStats {
    /// CPU time spent in user mode by the job's processes, the exited ones included.
    pub user_time: Duration,
    /// CPU time spent in the kernel on behalf of the job's processes.
    pub kernel_time: Duration,
    /// Page faults of the job's processes.
    pub page_faults: u64,
    /// Processes that have been in the job, counting those that exited.
    pub total_processes: u32,
    /// Processes in the job now.
    pub active_processes: u32,
    /// Processes that were killed by a job limit or by terminate.
    pub terminated_processes: u32,
}

/// Disk I/O of a job, from [`JobObject::storage_stats`](crate::JobObject::storage_stats).
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
