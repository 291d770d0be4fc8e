//! The public handle.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::{
    CpuLimit, JobLimits, MemoryStats, Notification, Options, ProcessorStats, Result, StorageStats,
    sys,
};

/// A handle to a job: a group of processes controlled as one unit.
///
/// A job holds processes: ones started in it with [`spawn`](Self::spawn), ones moved into it
/// with [`assign`](Self::assign), and every descendant they start. It can list them
/// ([`pids`](Self::pids)), kill all of them ([`terminate`](Self::terminate)) and report when
/// the last one has exited ([`poll_notification`](Self::poll_notification)).
///
/// On Linux a job is a cgroup: a directory `PARENT/NAME` in each cgroup hierarchy the crate
/// uses (see [`CgroupParent`](crate::os::linux::CgroupParent)). On Windows it is a Job Object.
///
/// The handle is `Send + Sync`; share it with an `Arc`. Every method takes `&self`, and
/// every method after [`close`](Self::close) returns [`Error::AlreadyClosed`](crate::Error).
///
/// # Lifetime
/// A job is removed when the last handle to it, in any process, is released and no process
/// is left in it, as a Windows job object is. A handle is released when it is closed or
/// dropped, and also when its process ends without doing so: killed, `process::exit`,
/// `abort` (a panic with `panic = "abort"`), or `exec` of another program. If processes
/// remain at that moment, the job is removed once they have all exited; meanwhile anyone can
/// [`open`](Self::open) it by name, and then holds it again.
/// [`set_terminate_on_last_handle_close`](Self::set_terminate_on_last_handle_close) kills the
/// processes at that last release instead, then removes the job once they are gone. A close
/// never waits for either: both finish a moment after it returns.
///
/// On Windows the kernel does all of this. On Linux:
/// - every process with a handle holds a shared `flock` on the job's directory: the last one
///   is the process that can then lock it exclusively. A job is marked as the library's own
///   with an extended attribute (`user.jobobject.job`), so a cgroup that another tool made
///   and this crate opened by name is never removed; where the kernel keeps no extended
///   attributes on cgroups, only the process that created a job removes it.
/// - a process that ends without closing its handles has a **keeper** do it: a small process
///   ([`keeper_pid`](crate::os::linux::keeper_pid)) started with the first job the process
///   holds, which watches for its end (a pidfd, and a socket closed by `exec`), then does the
///   last close for every job its process still held (marked `user.jobobject.holder.<token>`):
///   nothing if another process holds the job, else the kill if the job is marked
///   kill-on-close, and the removal (now, or once empty) of a job this library made. It
///   holds no job open, and exits once its process is gone and those jobs are dealt with. It
///   runs in its process's cgroups, so a process inside a job that holds jobs of its own adds
///   its keeper to that job. A process that cannot start one (out of processes or memory)
///   still holds its jobs, unprotected.
/// - [`JobObjectExt::set_persistent`](crate::os::linux::JobObjectExt) keeps a job when it is
///   released, and an observer handle ([`OptionsExt::observer`](crate::os::linux::OptionsExt))
///   never holds one.
///
/// No other user can hold, pin or change a job: its directories are mode 0711 (others cannot
/// open them to lock them) and its files keep the kernel's modes. A lock is never waited for
/// without bound: a job that another process holds exclusively (it is removing it) for more
/// than a few seconds is [`Error::Busy`](crate::Error::Busy).
///
/// # Example
/// ```
/// use std::process::Command;
/// use jobobject::{JobObject, Notification, Options};
///
/// # fn main() -> Result<(), jobobject::Error> {
/// let job = JobObject::create(&Options::new().notifications(true))?;
/// # #[cfg(unix)]
/// let mut child = job.spawn(Command::new("sleep").arg("0.1"))?;
/// # #[cfg(windows)]
/// # let mut child = job.spawn(Command::new("cmd").args(["/C", "ping -n 2 127.0.0.1 >NUL"]))?;
/// assert!(job.pids()?.contains(&child.id()));
/// // Windows also tells each process's start and exit: wait for the emptying.
/// while job.poll_notification()? != Notification::AllProcessesExited {}
/// child.wait().unwrap();
/// job.close()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JobObject {
    pub(crate) inner: sys::Job,
}

impl JobObject {
    /// Creates a new job; `Options::default()` makes an anonymous one without
    /// notifications.
    ///
    /// A name that already exists is [`Error::AlreadyExists`](crate::Error::AlreadyExists);
    /// a malformed name is [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub fn create(options: &Options) -> Result<Self> {
        sys::Job::create(options).map(|inner| Self { inner })
    }

    /// Opens the existing job named in `options`.
    ///
    /// Without a name this is [`Error::InvalidArgument`](crate::Error::InvalidArgument); a job
    /// that does not exist is [`Error::NotFound`](crate::Error::NotFound), and so is an
    /// anonymous job: it has no name on Windows, and on Linux the name it was given for its
    /// directory does not open it (an observer handle, `os::linux::OptionsExt::observer`,
    /// may read and control it, as `jobctl list` does).
    ///
    /// ```
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let options = Options::new().name(format!("doc-open-{}", std::process::id()));
    /// let job = JobObject::create(&options)?;
    /// let same = JobObject::open(&options)?;
    /// assert_eq!(same.pids()?, job.pids()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(options: &Options) -> Result<Self> {
        sys::Job::open(options).map(|inner| Self { inner })
    }

    /// The job's name: the one it was created with, or the generated one of an anonymous
    /// job.
    pub fn name(&self) -> Result<String> {
        self.inner.name()
    }

    /// Moves the running process `pid`, with all its threads, into the job. Its later
    /// children are born in the job.
    ///
    /// Pid 0, pid 1 (init: terminating the job would take the whole system or container down)
    /// and kernel threads are [`Error::InvalidArgument`](crate::Error::InvalidArgument); a
    /// process that does not exist is [`Error::NotFound`](crate::Error::NotFound). A process
    /// may run code before it is assigned; use [`spawn`](Self::spawn) where that matters.
    ///
    /// On Linux with cgroup v1 (hybrid or legacy) a job is a directory in each hierarchy and
    /// the kernel moves a process one hierarchy at a time: children the process forks meanwhile
    /// are moved too before this returns, so every process of its tree that is in the job is
    /// in it in every hierarchy, and each is counted by the process limit from the first
    /// write. If the kernel refuses a move (a real-time process the v1 cpu controller cannot
    /// hold is [`Error::InvalidArgument`](crate::Error::InvalidArgument)), the process and its
    /// new children are moved back where they were. The process limit refuses forks, not the
    /// move: the assigned process itself may take the job one over its limit. On Windows the
    /// process limit refuses the assignment itself, and Windows then terminates the process:
    /// that is an [`Error::Os`](crate::Error::Os) that says so (`ERROR_NOT_ENOUGH_QUOTA`).
    ///
    /// The memory a process allocated before it was assigned stays charged where it was on
    /// Linux (a cgroup is charged for what its processes allocate while in it, and pages are
    /// not moved): the job's memory use and limit count only what the process uses from then
    /// on. Windows counts a process's committed memory wherever it was allocated.
    pub fn assign(&self, pid: u32) -> Result<()> {
        self.inner.assign(pid)
    }

    /// Starts a std `command` inside the job: the child is in the job before it runs any code
    /// of its own, so it cannot escape it by forking early. This is the compatibility path
    /// for code that already has a `std::process::Command`; prefer
    /// [`process::Command`](crate::process::Command), which spawns at the cost of a plain
    /// spawn.
    ///
    /// On Linux the child joins the job between fork and exec, through a `pre_exec` hook. A
    /// hook makes std fork the caller instead of using `posix_spawn`, and a fork copies the
    /// caller's page tables: a spawn this way costs more than a plain spawn, and much more
    /// from a caller with a large resident heap (`cargo bench -p jobobject` measures both).
    /// std cannot take a hook off a `Command`, so this one is disarmed when the spawn
    /// returns: spawning the same `Command` again starts its child where the caller is, not
    /// in the job (std still forks for it).
    ///
    /// On Windows the child is created suspended, assigned to the job, then resumed (std's
    /// `Command` offers no stable way to pass `PROC_THREAD_ATTRIBUTE_JOB_LIST`); this sets
    /// the command's creation flags, so flags set on it before are not kept.
    pub fn spawn(&self, command: &mut Command) -> Result<Child> {
        self.inner.spawn(command)
    }

    /// What [`process::Command::spawn`](crate::process::Command::spawn) calls.
    pub(crate) fn spawn_builder(
        &self,
        command: &crate::process::Command,
    ) -> Result<crate::process::Child> {
        self.inner.spawn_builder(command)
    }

    /// Every process in the job, including those of jobs nested in it, in ascending order.
    pub fn pids(&self) -> Result<Vec<u32>> {
        self.inner.pids()
    }

    /// Freezes every process in the job and in jobs nested in it, and returns once the
    /// kernel reports all of them frozen: they get no CPU time and do nothing (timers and
    /// signals wait) until [`thaw`](Self::thaw), and a process assigned meanwhile freezes
    /// too. A frozen job can still be [`terminate`](Self::terminate)d. A process cannot be
    /// started in it ([`spawn`](Self::spawn) is [`Error::Busy`](crate::Error::Busy)): it would
    /// be frozen before it could run its program.
    ///
    /// On Linux it is the cgroup v2 freezer (`cgroup.freeze`, Linux 5.2+; also on a hybrid
    /// host's unified mount), else the v1 freezer (`freezer.state`). A process in an
    /// uninterruptible sleep freezes only when it returns from it: a freeze not complete
    /// after 10 s is undone and an error. A job nested in this one and frozen on its own stays
    /// frozen at the thaw. On Windows it is
    /// [`Error::Unsupported`](crate::Error::Unsupported): Windows documents no call that
    /// suspends a job (its job freeze information class is undocumented, and suspending
    /// every thread one by one races with the processes and threads started meanwhile).
    ///
    /// ```
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// # #[cfg(unix)] {
    /// job.freeze()?;
    /// assert!(job.is_frozen()?);
    /// job.thaw()?;
    /// assert!(!job.is_frozen()?);
    /// # }
    /// # #[cfg(windows)]
    /// # assert!(matches!(job.freeze(), Err(jobobject::Error::Unsupported { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn freeze(&self) -> Result<()> {
        self.inner.freeze(true)
    }

    /// Thaws a job frozen by [`freeze`](Self::freeze): its processes run again. Thawing a
    /// job that is not frozen does nothing.
    pub fn thaw(&self) -> Result<()> {
        self.inner.freeze(false)
    }

    /// Whether the kernel reports every process of the job frozen, by this job's
    /// [`freeze`](Self::freeze) or by a freeze of a job it is nested in.
    pub fn is_frozen(&self) -> Result<bool> {
        self.inner.is_frozen()
    }

    /// Kills every process in the job and in jobs nested in it. It returns once each of them
    /// has been sent the kill, race-free against processes forking meanwhile; they are gone
    /// a moment later.
    ///
    /// On Windows every process exits with `exit_code`. On Linux a process killed this way
    /// has no exit code: its parent sees it terminated by SIGKILL (a shell reports status
    /// 137), and `exit_code` is not used. A [frozen](Self::freeze) job (or a job nested in
    /// it that someone froze) is killed too, and left thawed: a process frozen by the v1
    /// freezer ignores SIGKILL until thawed, so every cgroup of the job frozen that way is
    /// thawed after the kill.
    pub fn terminate(&self, exit_code: u32) -> Result<()> {
        self.inner.terminate(exit_code)
    }

    /// Makes the close of the last handle to the job, in any process, kill every process in
    /// the job, then (on Linux) remove the job.
    ///
    /// It is the job's, not the handle's: set through any handle in any process, it holds for
    /// every process, and fires only when the last handle anywhere goes. Two processes holding
    /// the job: the first close kills nothing, the second kills. Observer handles hold nothing
    /// and cannot set it.
    ///
    /// On Windows that is the kernel's `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, however the last
    /// handle is released. On Linux the job is marked with an extended attribute
    /// (`user.jobobject.kill-on-close`) and the last holder is told by its `flock`; a process
    /// that ends without closing its handles (killed, `process::exit`, `abort`, `exec`) has
    /// its keeper do the close for it (see [Lifetime](Self#lifetime)).
    pub fn set_terminate_on_last_handle_close(&self) -> Result<()> {
        self.inner.set_terminate_on_last_handle_close()
    }

    /// Blocks until the next notification of the job.
    ///
    /// Needs [`Options::notifications`](crate::Options::notifications), else it is
    /// [`Error::NotRegistered`](crate::Error::NotRegistered). Messages queue without bound
    /// until read; none is dropped. [`close`](Self::close) from another thread ends the wait
    /// with [`Error::AlreadyClosed`](crate::Error::AlreadyClosed).
    ///
    /// On Linux the job reports [`Notification::AllProcessesExited`] each time it goes from
    /// holding processes to empty, from an inotify watch on the v2 `cgroup.events` file (the
    /// unified mount in a hybrid layout). On a legacy v1-only host, which has no such event,
    /// the event thread polls the job's `cgroup.procs` every 20 ms instead. A job deleted under
    /// the handle (by another handle's `delete`, or by anyone's `rmdir`) reports every emptying
    /// that came before the deletion, then [`Error::NotFound`](crate::Error::NotFound).
    pub fn poll_notification(&self) -> Result<Notification> {
        loop {
            // Without a deadline it returns only with a notification or an error.
            if let Some(notification) = self.inner.poll_notification(None)? {
                return Ok(notification);
            }
        }
    }

    /// [`poll_notification`](Self::poll_notification) that waits at most `timeout`:
    /// `Ok(None)` when it ran out first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::new().notifications(true))?;
    /// assert_eq!(job.poll_notification_timeout(Duration::from_millis(10))?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_notification_timeout(&self, timeout: Duration) -> Result<Option<Notification>> {
        self.inner.poll_notification(deadline(timeout))
    }

    /// Blocks until the job holds no process (at once if it holds none), for at most
    /// `timeout` (`None`: without bound); whether it is empty. It needs no
    /// [`Options::notifications`](crate::Options::notifications), and
    /// [`close`](Self::close) from another thread ends it with
    /// [`Error::AlreadyClosed`](crate::Error::AlreadyClosed).
    ///
    /// On Linux it waits for the same events as `poll_notification` (no polling, but on a
    /// v1-only host); on Windows the event thread reads the job's count of active processes,
    /// 1 ms after the call and then at doubling intervals up to 50 ms (a job tells its
    /// emptying only to the one completion port it may be associated with).
    ///
    /// A command run under a time limit, the whole tree killed when it runs over (in a tokio
    /// program, `wait_empty_async` (feature `tokio`) does this without a thread):
    /// ```
    /// use std::time::Duration;
    /// use jobobject::process::Command;
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::default())?;
    /// assert!(job.wait_empty(Some(Duration::ZERO))?); // empty: at once
    /// # #[cfg(unix)]
    /// let mut child = Command::new("sh").args(["-c", "sleep 60 & sleep 60"]).spawn(&job)?;
    /// # #[cfg(windows)]
    /// # let mut child = Command::new("cmd").args(["/C", "ping -n 60 127.0.0.1 >NUL"]).spawn(&job)?;
    /// if !job.wait_empty(Some(Duration::from_millis(100)))? {
    ///     job.terminate(1)?; // ran over: kill the shell and both sleeps
    ///     job.wait_empty(None)?;
    /// }
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_empty(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(deadline);
        let watch = self.inner.empty_watch()?;
        loop {
            if watch.is_empty()? {
                return Ok(true);
            }
            match watch.changed_until(deadline) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(false),
                // Deleted meanwhile (Linux): the kernel removes only empty cgroups.
                Err(crate::Error::NotFound { .. }) => return Ok(true),
                Err(err) => return Err(err),
            }
        }
    }

    /// Sets the job's CPU limit, a weight of 1-9 or a rate of 1-10000 (percent × 100 of all
    /// the host's CPUs), replacing the other kind; `None` removes it. Out of range is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument), and changes nothing.
    ///
    /// On Linux a weight doubles the CPU share at each step, with 5 at the kernel's default
    /// (v2 `cpu.weight` 100, v1 `cpu.shares` 1024); a rate `r` is the CFS quota
    /// `r × CPUs × 10` µs per 100 ms (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), with a longer
    /// period where that quota would be under the kernel's 1 ms floor (so on a 2-CPU host the
    /// smallest rate it can enforce is 5). A value the kernel refuses (a CFS quota below the
    /// job's CFS burst, or on cgroup v1 below a nested job's quota) is an error that changes
    /// nothing: the weight or rate cleared on the way is put back as it was.
    ///
    /// ```
    /// use jobobject::{CpuLimit, JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// match job.set_cpu_limit(Some(CpuLimit::Rate(2_500))) {
    ///     // A quarter of the machine.
    ///     Ok(()) => assert_eq!(job.cpu_limit()?, Some(CpuLimit::Rate(2_500))),
    ///     // A system without CPU rate control (Wine) says so, and nothing is set.
    ///     Err(jobobject::Error::Unsupported { .. }) => {}
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_cpu_limit(&self, limit: Option<CpuLimit>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            cpu: limit.into(),
            ..JobLimits::new()
        })
    }

    /// The job's CPU limit, `None` without one (on Linux a weight of 5, the kernel's default
    /// share, is none). Like every limit's getter, it says `None` where the system cannot
    /// hold such a limit (Wine), and only the setter says
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    pub fn cpu_limit(&self) -> Result<Option<CpuLimit>> {
        self.inner.cpu_limit()
    }

    /// Restricts the job to the logical CPUs whose bits are set (bit `i` = CPU `i`); `None`
    /// lets it run on every CPU it could without a limit. Zero, or a bit of a CPU the host does
    /// not have, is [`Error::InvalidArgument`](crate::Error::InvalidArgument). Linux:
    /// `cpuset.cpus` (on v1 the job's `cpuset.mems` is copied from its parent when the job is
    /// made; removing the limit copies the parent's `cpuset.cpus` too). CPUs the kernel refuses
    /// (on cgroup v1 outside the parent's `cpuset.cpus`, or leaving out CPUs a nested job uses;
    /// on v2 CPUs another cgroup holds exclusively) are an error that changes nothing.
    pub fn set_cpu_affinity(&self, mask: Option<u64>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            cpu_affinity: mask.into(),
            ..JobLimits::new()
        })
    }

    /// The CPUs the job is restricted to, `None` when it is not (Linux: no `cpuset.cpus` of
    /// its own on v2, or its parent's on v1).
    pub fn cpu_affinity(&self) -> Result<Option<u64>> {
        self.inner.cpu_affinity()
    }

    /// Limits the memory of the whole job to `bytes`, or removes the limit (`None`): when it
    /// is reached the kernel reclaims, then kills a process of the job (Linux's OOM killer;
    /// Windows fails the allocation). Linux v2: `memory.max`; v1: `memory.limit_in_bytes`.
    /// Both count the page cache the job uses. Windows limits the memory the job's processes
    /// have committed (private memory, wherever it lies: in RAM or the page file), not what
    /// is resident.
    ///
    /// Zero is [`Error::InvalidArgument`](crate::Error::InvalidArgument). On Linux the kernel
    /// counts whole pages, rounding down: `bytes` must be at least one page (4096 bytes on most
    /// machines) and below `PAGE_COUNTER_MAX` pages (2^63 bytes less one page on 64-bit), where
    /// the kernel would hold no limit at all; anything else is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) and changes nothing. On cgroup
    /// v1 a limit below what the job uses that the kernel cannot reclaim down to is refused
    /// (EBUSY) and changes nothing.
    pub fn set_memory_limit(&self, bytes: Option<u64>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            memory: bytes.into(),
            ..JobLimits::new()
        })
    }

    /// The memory limit the system enforces (Linux rounds down to whole pages), `None`
    /// without one.
    pub fn memory_limit(&self) -> Result<Option<u64>> {
        self.inner.memory_limit()
    }

    /// Limits disk I/O to `bandwidth` bytes/s and `iops` operations/s, each on every disk and
    /// for reads and writes each; `None` removes that limit. Zero, and on Linux an `iops` above
    /// 4294967294 (the kernel holds operation limits in 32 bits, the last value meaning none),
    /// are [`Error::InvalidArgument`](crate::Error::InvalidArgument). On Linux an error changes
    /// no disk's limits. To change one of the two and keep the other, use
    /// [`set_resource_limits`](Self::set_resource_limits).
    ///
    /// On Linux "every disk" is every whole disk in `/sys/block` when the call is made, but
    /// loop, RAM and zram devices (`io.max` on v2, `blkio.throttle.*` on v1; partitions are
    /// covered by their disk). A disk attached later is not limited until the limit is set
    /// again. On v1 only direct I/O is throttled: buffered writes reach the disk later, from
    /// the kernel's writeback, outside the job.
    ///
    /// On Windows it is the job's I/O rate control with no volume named, which Windows applies
    /// to each volume on its own (a limit per volume, as on Linux per disk); Windows counts
    /// operations normalized to its base I/O size (an 8 KiB request is one operation, a
    /// larger one several), and bandwidth in bytes per second.
    pub fn set_io_limit(&self, bandwidth: Option<u64>, iops: Option<u64>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            io_bandwidth: bandwidth.into(),
            io_iops: iops.into(),
            ..JobLimits::new()
        })
    }

    /// The I/O bandwidth limit in bytes/s, `None` without one (Linux: the highest of the
    /// job's disks).
    pub fn io_max_bandwidth_limit(&self) -> Result<Option<u64>> {
        self.inner.io_max_bandwidth_limit()
    }

    /// The I/O operations limit per second, `None` without one (Linux: the highest of the
    /// job's disks).
    pub fn io_max_iops_limit(&self) -> Result<Option<u64>> {
        self.inner.io_max_iops_limit()
    }

    /// Limits the number of processes alive in the job at once, or removes the limit
    /// (`None`); a fork or spawn beyond it fails. Zero, and on Linux more than 4194304 (the
    /// kernel's `PID_MAX_LIMIT`), is [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// and changes nothing. Linux: `pids.max`, which counts threads too; Windows: the active
    /// process limit.
    pub fn set_max_processes(&self, count: Option<u32>) -> Result<()> {
        self.set_resource_limits(&JobLimits {
            max_processes: count.into(),
            ..JobLimits::new()
        })
    }

    /// The process limit, `None` without one.
    pub fn max_processes(&self) -> Result<Option<u32>> {
        self.inner.max_processes()
    }

    /// Sets, keeps or removes each limit as `limits` says, after checking every value: one
    /// invalid value, or one the system cannot hold (see each setter), is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) and changes nothing. On Linux
    /// the call is all or nothing: if the kernel still refuses a value, every limit the call had
    /// applied is put back to exactly what it was, and the error names the refused limit (and
    /// says so if putting one back failed too).
    ///
    /// ```
    /// use jobobject::{JobLimits, JobObject, Limit, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// let limits = JobLimits::new().memory(256 << 20).max_processes(32);
    /// if let Err(err) = job.set_resource_limits(&limits) {
    ///     // A system without these limits (Wine) says so, and nothing is set.
    ///     assert!(matches!(err, jobobject::Error::Unsupported { .. }), "{err}");
    ///     return Ok(());
    /// }
    /// let mut change = JobLimits::new();
    /// change.memory = Limit::Clear; // remove the memory limit, keep the process limit
    /// job.set_resource_limits(&change)?;
    /// assert_eq!(job.memory_limit()?, None);
    /// assert_eq!(job.max_processes()?, Some(32));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_resource_limits(&self, limits: &JobLimits) -> Result<()> {
        self.inner.set_resource_limits(limits)
    }

    /// The job's memory use.
    pub fn memory_stats(&self) -> Result<MemoryStats> {
        self.inner.memory_stats()
    }

    /// The job's CPU times and process counts.
    pub fn processor_stats(&self) -> Result<ProcessorStats> {
        self.inner.processor_stats()
    }

    /// The job's disk I/O. It fails until I/O tracking is on
    /// ([`set_io_tracking`](Self::set_io_tracking) or
    /// [`Options::enable_io_tracking`](crate::Options::enable_io_tracking)).
    pub fn storage_stats(&self) -> Result<StorageStats> {
        self.inner.storage_stats()
    }

    /// Turns on I/O accounting for the job, for [`storage_stats`](Self::storage_stats).
    pub fn set_io_tracking(&self) -> Result<()> {
        self.inner.set_io_tracking()
    }

    /// The memory that belongs to the job's processes alone, in bytes: anonymous memory, not
    /// file pages that others could share (Windows: the sum of each process's private
    /// working set, leaving out a process that exited meanwhile or that this process may not
    /// open, as hcsshim does; Linux v2: `anon` of `memory.stat`; v1: `total_rss`).
    pub fn private_working_set(&self) -> Result<u64> {
        self.inner.private_working_set()
    }

    /// Closes the handle; see [Lifetime](Self#lifetime). Every later call, including a
    /// [`poll_notification`](Self::poll_notification) blocked in another thread (or a pending
    /// async wait), returns [`Error::AlreadyClosed`](crate::Error::AlreadyClosed), and so does
    /// a second `close`. Dropping the handle closes it too.
    ///
    /// It never waits for processes, so it is safe on an async runtime's thread: the last
    /// close of a kill-on-close job sends the kill and returns, and a job that still holds
    /// processes, or that the kernel reports busy a moment after its last exit, is removed by
    /// the event thread once it can be (on Linux; on Windows the kernel does the same). Until
    /// then its name is taken: [`wait_empty`](Self::wait_empty) before closing makes the end
    /// predictable.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}

/// The instant `timeout` from now; `None` (no deadline) where that is beyond what an instant
/// holds.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
