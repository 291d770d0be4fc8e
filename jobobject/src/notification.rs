//! What a job reports through [`JobObject::poll_notification`](crate::JobObject::poll_notification).

/// A message about a job.
///
/// Each platform reports what it can tell; a variant the platform cannot produce never
/// appears there. [`Unimplemented`](Self::Unimplemented) stands only for a message the platform
/// sent that has no variant yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Notification {
    /// Every process in the job has exited: the job went from holding processes to empty.
    /// Reported each time it happens.
    AllProcessesExited,
    /// A process joined the job (Windows).
    NewProcess {
        /// Its process id.
        pid: u32,
    },
    /// A process of the job exited (Windows).
    ProcessExited {
        /// Its process id.
        pid: u32,
        /// Its exit code; `None` when the process was gone before it could be read.
        exit_code: Option<u32>,
    },
    /// A process of the job ended abnormally (Windows).
    AbnormalProcessExit {
        /// Its process id.
        pid: u32,
        /// Its exit code (often an NTSTATUS); `None` when it could not be read.
        exit_code: Option<u32>,
    },
    /// The job's memory limit was reached.
    ///
    /// Linux v2: the `max` count of `memory.events` grew; v1: `memory.failcnt` grew, seen when
    /// an OOM event or a membership change wakes the event thread (v1 signals nothing else).
    JobMemoryLimit,
    /// A process reached its own memory limit (Windows).
    ProcessMemoryLimit {
        /// Its process id.
        pid: u32,
    },
    /// A process of the job was killed because the job reached its own memory limit.
    ///
    /// Linux v2: one per kill counted by `oom_kill` in `memory.events` within two seconds of
    /// a count of `oom` (the job's limit reached, allocation about to fail); kills without
    /// one are [`ExternalOutOfMemoryKill`](Self::ExternalOutOfMemoryKill). v1
    /// (`oom_kill` of `memory.oom_control`, whose eventfd wakes the event thread) cannot tell
    /// the two apart: every kill of a process of the job is reported here.
    OutOfMemoryKill,
    /// A process of the job was killed by an OOM killer that acted for something else than
    /// the job's own limit: the whole host ran out of memory, or a cgroup above the job
    /// reached its limit (Linux v2: an `oom_kill` of `memory.events` without an `oom`).
    ExternalOutOfMemoryKill,
    /// The job's limit was reached with [`JobObject::set_oom_group_kill`] on, and the kernel
    /// killed every process of the job at once (Linux v2: `oom_group_kill` of
    /// `memory.events`, Linux 5.16+). Each process killed is also an
    /// [`OutOfMemoryKill`](Self::OutOfMemoryKill).
    ///
    /// [`JobObject::set_oom_group_kill`]: crate::JobObject::set_oom_group_kill
    OutOfMemoryGroupKill,
    /// The job's process limit refused a new process (Linux: the `max` count of
    /// `pids.events` grew; v2 signals it at once, v1 is polled every 100 ms).
    ActiveProcessLimit,
    /// The job's CPU time limit ran out (Windows).
    EndOfJobTime,
    /// A process's CPU time limit ran out (Windows).
    EndOfProcessTime {
        /// Its process id.
        pid: u32,
    },
    /// A pressure trigger fired: the job's processes were stalled on `resource` for the
    /// trigger's time within its window (see
    /// [`JobObject::add_pressure_trigger`](crate::JobObject::add_pressure_trigger); Linux).
    Pressure {
        /// The resource they waited for.
        resource: crate::PressureResource,
    },
    /// A message the platform sent that this crate does not interpret.
    Unimplemented,
}
