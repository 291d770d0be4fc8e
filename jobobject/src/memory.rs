//! Memory beyond the hard limit: a soft limit, swap, what the OOM killer does, and the peak.

use crate::{JobLimits, JobObject, Result};

impl JobObject {
    /// Sets (`Some`) or removes (`None`) the job's soft memory limit, in bytes: above it the
    /// kernel slows the job's allocations and reclaims its memory, and kills nothing; the
    /// hard limit ([`set_memory_limit`](Self::set_memory_limit)) is where the OOM killer
    /// acts. Zero, and values the kernel cannot hold (as for the hard limit), are
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    ///
    /// Linux cgroup v2 (`memory.high`) only: on a v1 memory controller (hybrid and legacy
    /// hosts) it is [`Error::Unsupported`](crate::Error::Unsupported), v1's soft limit being
    /// another thing (reclaim under host-wide pressure only, no throttling); so it is on
    /// Windows, whose job limits are hard.
    ///
    /// ```
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// match job.set_memory_high(Some(256 << 20)) {
    ///     Ok(()) => assert_eq!(job.memory_high()?, Some(256 << 20)),
    ///     Err(jobobject::Error::Unsupported { .. }) => assert_eq!(job.memory_high()?, None),
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_memory_high(&self, bytes: Option<u64>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            memory_high: bytes.into(),
            ..JobLimits::new()
        })
    }

    /// The soft memory limit the kernel enforces (whole pages), `None` without one (and
    /// wherever there can be none).
    pub fn memory_high(&self) -> Result<Option<u64>> {
        self.inner.memory_high()
    }

    /// Sets (`Some`) or removes (`None`) how much swap the job may use, in bytes; `Some(0)`
    /// keeps all of its memory out of swap. Linux cgroup v2 (`memory.swap.max`) only:
    /// elsewhere [`Error::Unsupported`](crate::Error::Unsupported) (v1's `memsw` limits memory
    /// and swap together, and Windows counts committed memory wherever it lies).
    pub fn set_swap_limit(&self, bytes: Option<u64>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            swap: bytes.into(),
            ..JobLimits::new()
        })
    }

    /// The swap limit the kernel enforces, `None` without one.
    pub fn swap_limit(&self) -> Result<Option<u64>> {
        self.inner.swap_limit()
    }

    /// When the job reaches its memory limit and the kernel's OOM killer acts, kill every
    /// process of the job (`true`) instead of the one it picks (`false`, the default): for
    /// a job whose processes are no use without each other. The kill is reported as
    /// [`Notification::OutOfMemoryGroupKill`](crate::Notification::OutOfMemoryGroupKill).
    ///
    /// Linux cgroup v2 (`memory.oom.group`) only: elsewhere
    /// [`Error::Unsupported`](crate::Error::Unsupported) (Windows has no OOM killer: an
    /// allocation over a job's limit fails).
    pub fn set_oom_group_kill(&self, all: bool) -> Result<()> {
        self.inner.set_oom_group_kill(all)
    }

    /// Whether [`set_oom_group_kill`](Self::set_oom_group_kill) is on (`false` wherever it
    /// cannot be).
    pub fn oom_group_kill(&self) -> Result<bool> {
        self.inner.oom_group_kill()
    }

    /// Starts the job's memory peak ([`MemoryStats::peak`](crate::MemoryStats::peak)) again
    /// from what it uses now.
    ///
    /// Linux v2 (Linux 6.12+): the kernel keeps the reset peak for the open file it was
    /// written to, so it holds for this process's handles to the job, and other readers keep
    /// seeing the peak since the job began; v1 (`memory.max_usage_in_bytes`): for every
    /// reader. Before 6.12, and on Windows, [`Error::Unsupported`](crate::Error::Unsupported).
    pub fn reset_memory_peak(&self) -> Result<()> {
        self.inner.reset_memory_peak()
    }
}
