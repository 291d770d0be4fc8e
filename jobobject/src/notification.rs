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
    /// A process inside the job was killed because the job ran out of memory (Linux: one per
    /// kill counted by `oom_kill` in v2 `memory.events` or v1 `memory.oom_control`, whose
    /// eventfd wakes the event thread).
    OutOfMemoryKill,
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
    /// A message the platform sent that this crate does not interpret.
    Unimplemented,
}
