//! A handle to a job: what `JobObject` calls on Windows.

use std::os::windows::io::OwnedHandle;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use windows_sys::Win32::Foundation::{ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_QUOTA, HANDLE};
use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, TerminateJobObject};
use windows_sys::Win32::System::Threading::{PROCESS_SET_QUOTA, PROCESS_TERMINATE};

use super::events::{self, Hold, Registration};
use super::handle::raw;
use super::limits::{self, Extended};
use super::{errors, groups, info, object, process, spawn, stats};
use crate::events::Queue;
use crate::handle::Handle;
use crate::{
    CpuLimit, Error, JobLimits, Limit, MemoryStats, Notification, Options, ProcessorStats,
    StorageStats,
};

/// One handle: the kernel handle while open, and this handle's notification queue.
#[derive(Debug)]
pub(crate) struct Job {
    handle: Handle<Inner>,
}

/// An open handle. Calls in flight keep it alive; it is closed when the last one ends.
#[derive(Debug)]
struct Inner {
    /// Dropped first: the notification thread's own handle goes before ours.
    registration: Option<Registration>,
    /// This process's hold on a named job, let go of before the handle closes.
    _hold: Option<Hold>,
    handle: OwnedHandle,
    /// The name it was created or opened with.
    name: Option<String>,
    /// The name for [`Job::name`]: the real one, or one made up for an anonymous job.
    display: String,
    /// The job as errors name it: `"NAME"` or `(anonymous)`.
    label: String,
    /// This handle turned on I/O tracking.
    io_tracking: AtomicBool,
    /// This handle set kill-on-close (kept on later limit writes where the system does not
    /// report the flag back).
    kill_on_close: AtomicBool,
}

impl Inner {
    fn job(&self) -> HANDLE {
        raw(&self.handle)
    }
}

impl Job {
    pub(crate) fn create(options: &Options) -> Result<Self, Error> {
        let name = options.name.as_deref();
        if let Some(name) = name {
            crate::name::check(name)?;
        }
        let label = label(name);
        let handle = object::create(name, options.use_nt_variant, &label)?;
        Self::with(handle, options, label)
    }

    pub(crate) fn open(options: &Options) -> Result<Self, Error> {
        let Some(name) = options.name.as_deref() else {
            return Err(Error::invalid("opening a job needs Options::name"));
        };
        crate::name::check(name)?;
        let label = label(Some(name));
        let handle = object::open(name, options.use_nt_variant, &label)?;
        Self::with(handle, options, label)
    }

    fn with(handle: OwnedHandle, options: &Options, label: String) -> Result<Self, Error> {
        static ANONYMOUS: AtomicU64 = AtomicU64::new(0);
        let name = options.name.clone();
        let hold = name.as_deref().map(events::hold);
        let (registration, queue) = if options.notifications {
            let (registration, queue) = events::register(&handle, name.as_deref(), &label)?;
            (Some(registration), Some(queue))
        } else {
            (None, None)
        };
        let display = name.clone().unwrap_or_else(|| {
            let n = ANONYMOUS.fetch_add(1, Ordering::Relaxed);
            format!("anonymous-{}-{n}", std::process::id())
        });
        let inner = Inner {
            registration,
            _hold: hold,
            handle,
            name,
            display,
            label,
            io_tracking: AtomicBool::new(false),
            kill_on_close: AtomicBool::new(false),
        };
        if options.enable_io_tracking {
            stats::set_io_tracking(inner.job(), &inner.label)?;
            inner.io_tracking.store(true, Ordering::Relaxed);
        }
        Ok(Job {
            handle: Handle::new(Arc::new(inner), queue),
        })
    }

    /// The open handle, or `AlreadyClosed`.
    fn inner(&self) -> Result<Arc<Inner>, Error> {
        self.handle.get()
    }

    pub(crate) fn name(&self) -> Result<String, Error> {
        Ok(self.inner()?.display.clone())
    }

    pub(crate) fn assign(&self, pid: u32) -> Result<(), Error> {
        let inner = self.inner()?;
        if pid == 0 {
            return Err(Error::invalid("process id 0"));
        }
        let process = process::open(pid, PROCESS_SET_QUOTA | PROCESS_TERMINATE).map_err(|err| {
            if err.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32) {
                Error::ProcessNotFound { pid, exited: false }
            } else {
                errors::os(&inner.label, format!("OpenProcess {pid}"), err)
            }
        })?;
        // SAFETY: both handles are valid; the process handle has PROCESS_SET_QUOTA and
        // PROCESS_TERMINATE, which the call needs.
        if unsafe { AssignProcessToJobObject(inner.job(), raw(&process)) } == 0 {
            let err = std::io::Error::last_os_error();
            // The job's process limit refused it, and Windows terminated the process: say
            // so, not that it is gone.
            if err.raw_os_error() == Some(ERROR_NOT_ENOUGH_QUOTA as i32) {
                return Err(errors::os(
                    &inner.label,
                    format!(
                        "AssignProcessToJobObject {pid} (refused by the job's process limit; \
                         Windows terminates a process it refuses so)"
                    ),
                    err,
                ));
            }
            // The process exited between the open and the assignment.
            if process::has_exited(&process) {
                return Err(Error::ProcessNotFound { pid, exited: true });
            }
            return Err(errors::os(
                &inner.label,
                format!("AssignProcessToJobObject {pid}"),
                err,
            ));
        }
        events::started(inner.registration.as_ref(), inner.name.as_deref());
        Ok(())
    }

    pub(crate) fn spawn(&self, command: &mut Command) -> Result<Child, Error> {
        let inner = self.inner()?;
        let child = spawn::spawn(inner.job(), &inner.label, command)?;
        events::started(inner.registration.as_ref(), inner.name.as_deref());
        Ok(child)
    }

    /// tokio's `Command`: created suspended, assigned, resumed, as std's.
    #[cfg(feature = "tokio")]
    pub(crate) fn spawn_tokio(
        &self,
        command: &mut tokio::process::Command,
    ) -> Result<tokio::process::Child, Error> {
        use std::os::windows::process::CommandExt;
        let inner = self.inner()?;
        let child = spawn::start_with(
            inner.job(),
            &inner.label,
            command,
            tokio::process::Command::as_std_mut,
            tokio::process::Command::spawn,
            0,
        );
        command.as_std_mut().creation_flags(0);
        let child = child?;
        events::started(inner.registration.as_ref(), inner.name.as_deref());
        Ok(child)
    }

    pub(crate) fn spawn_builder(
        &self,
        command: &crate::process::Command,
    ) -> Result<crate::process::Child, Error> {
        let inner = self.inner()?;
        let parts = command.parts();
        let child = spawn::spawn_builder(inner.job(), &inner.label, &parts, &command.windows)?;
        events::started(inner.registration.as_ref(), inner.name.as_deref());
        Ok(child)
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>, Error> {
        let inner = self.inner()?;
        info::process_ids(inner.job())
            .map_err(|err| errors::os(&inner.label, "query JobObjectBasicProcessIdList", err))
    }

    pub(crate) fn terminate(&self, exit_code: u32) -> Result<(), Error> {
        let inner = self.inner()?;
        // SAFETY: the job handle is valid (held by `inner`) and has JOB_OBJECT_TERMINATE.
        if unsafe { TerminateJobObject(inner.job(), exit_code) } == 0 {
            return Err(errors::last(&inner.label, "TerminateJobObject"));
        }
        // It returns before the processes are gone: the notification thread watches the
        // count until they are.
        events::terminated(inner.registration.as_ref(), inner.name.as_deref());
        Ok(())
    }

    /// Windows documents no call that freezes a job (see `JobObject::freeze`).
    pub(crate) fn freeze(&self, frozen: bool) -> Result<(), Error> {
        let inner = self.inner()?;
        Err(Error::Unsupported {
            what: format!(
                "{} job {}: Windows documents no call that suspends a whole job",
                if frozen { "freezing" } else { "thawing" },
                inner.label
            ),
        })
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, Error> {
        self.freeze(true).map(|()| false)
    }

    /// Windows has no signal for a whole job (a console's CTRL_BREAK reaches every process
    /// of a console, the caller's too): nothing is sent.
    pub(crate) fn ask_to_end(&self, _signal: Option<i32>) -> Result<bool, Error> {
        self.inner()?;
        Ok(false)
    }

    pub(crate) fn set_terminate_on_last_handle_close(&self) -> Result<(), Error> {
        let inner = self.inner()?;
        limits::set_extended(
            inner.job(),
            &inner.label,
            Extended {
                kill_on_close: true,
                ..Extended::default()
            },
        )?;
        inner.kill_on_close.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn poll_notification(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Notification>, Error> {
        self.handle.poll(deadline)
    }

    /// This handle's notifications, for an async task.
    #[cfg(feature = "tokio")]
    pub(crate) fn listener(&self) -> Result<Listener, Error> {
        Ok(Listener(self.handle.listener()?))
    }

    /// A watch for the job to be empty: a queue of its own, into which the event thread
    /// pushes when it reads the job's active process count at 0.
    pub(crate) fn empty_watch(&self) -> Result<EmptyWatch, Error> {
        let inner = self.inner()?;
        let queue = self.handle.waiter()?;
        let watch = events::watch_empty(&inner.handle, &queue, &inner.label)?;
        Ok(EmptyWatch {
            inner,
            queue,
            _watch: watch,
        })
    }

    pub(crate) fn cpu_limit(&self) -> Result<Option<CpuLimit>, Error> {
        let inner = self.inner()?;
        none_if_unsupported(limits::cpu(inner.job(), &inner.label))
    }

    pub(crate) fn cpu_affinity(&self) -> Result<Option<u64>, Error> {
        let inner = self.inner()?;
        limits::cpu_affinity(inner.job(), &inner.label)
    }

    /// A set within the first 64 CPUs is the job's affinity mask; a wider one, one affinity
    /// per processor group.
    pub(crate) fn set_cpu_set(&self, cpus: Option<&crate::CpuSet>) -> Result<(), Error> {
        let affinity = match cpus.map(|set| (set, set.mask())) {
            None => Limit::Clear,
            Some((_, Some(mask))) => Limit::Set(mask),
            Some((set, None)) => {
                let inner = self.inner()?;
                return groups::set(inner.job(), &inner.label, set);
            }
        };
        self.set_resource_limits(&JobLimits {
            cpu_affinity: affinity,
            ..JobLimits::new()
        })
    }

    /// The affinity mask's CPUs, else those of the processor groups (none where they are
    /// every CPU, or where the system cannot say).
    pub(crate) fn cpu_set(&self) -> Result<Option<crate::CpuSet>, Error> {
        if let Some(mask) = self.cpu_affinity()? {
            return Ok(Some(crate::CpuSet::from_mask(mask)));
        }
        let inner = self.inner()?;
        match groups::get(inner.job(), &inner.label) {
            Ok(Some(set)) if set != groups::online() => Ok(Some(set)),
            Ok(_) | Err(Error::Unsupported { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn memory_limit(&self) -> Result<Option<u64>, Error> {
        let inner = self.inner()?;
        limits::memory_limit(inner.job(), &inner.label)
    }

    pub(crate) fn io_max_bandwidth_limit(&self) -> Result<Option<u64>, Error> {
        let inner = self.inner()?;
        none_if_unsupported(limits::io(inner.job(), &inner.label).map(|(bandwidth, _)| bandwidth))
    }

    pub(crate) fn io_max_iops_limit(&self) -> Result<Option<u64>, Error> {
        let inner = self.inner()?;
        none_if_unsupported(limits::io(inner.job(), &inner.label).map(|(_, iops)| iops))
    }

    pub(crate) fn max_processes(&self) -> Result<Option<u32>, Error> {
        let inner = self.inner()?;
        limits::max_processes(inner.job(), &inner.label)
    }

    /// Windows job limits are hard: there is no soft one.
    pub(crate) fn memory_high(&self) -> Result<Option<u64>, Error> {
        self.inner()?;
        Ok(None)
    }

    /// Windows limits committed memory, wherever it lies: there is no swap limit.
    pub(crate) fn swap_limit(&self) -> Result<Option<u64>, Error> {
        self.inner()?;
        Ok(None)
    }

    /// Windows has no OOM killer: an allocation over a job's limit fails.
    pub(crate) fn set_oom_group_kill(&self, _all: bool) -> Result<(), Error> {
        let inner = self.inner()?;
        Err(Error::Unsupported {
            what: format!(
                "job {}: killing the whole job on OOM (Windows has no OOM killer: an \
                 allocation over the job's limit fails)",
                inner.label
            ),
        })
    }

    pub(crate) fn oom_group_kill(&self) -> Result<bool, Error> {
        self.inner()?;
        Ok(false)
    }

    /// Windows keeps no pressure measure of a job.
    pub(crate) fn pressure_stats(&self) -> Result<crate::PressureStats, Error> {
        let inner = self.inner()?;
        Err(Error::Unsupported {
            what: format!(
                "pressure of job {}: Windows keeps no pressure stall measure",
                inner.label
            ),
        })
    }

    pub(crate) fn add_pressure_trigger(
        &self,
        _trigger: &crate::PressureTrigger,
    ) -> Result<(), Error> {
        self.pressure_stats().map(drop)
    }

    /// Windows keeps the job's peak from its start, with no call to reset it.
    pub(crate) fn reset_memory_peak(&self) -> Result<(), Error> {
        let inner = self.inner()?;
        Err(Error::Unsupported {
            what: format!(
                "job {}: resetting the memory peak (Windows keeps PeakJobMemoryUsed from the \
                 job's start)",
                inner.label
            ),
        })
    }

    pub(crate) fn set_resource_limits(&self, limits: &JobLimits) -> Result<(), Error> {
        let inner = self.inner()?;
        let kill_on_close = inner.kill_on_close.load(Ordering::Relaxed);
        limits::set_resource_limits(inner.job(), &inner.label, limits, kill_on_close)
    }

    pub(crate) fn memory_stats(&self) -> Result<MemoryStats, Error> {
        let inner = self.inner()?;
        stats::memory(inner.job(), &inner.label)
    }

    pub(crate) fn processor_stats(&self) -> Result<ProcessorStats, Error> {
        let inner = self.inner()?;
        stats::processor(inner.job(), &inner.label)
    }

    pub(crate) fn storage_stats(&self) -> Result<StorageStats, Error> {
        let inner = self.inner()?;
        let tracking = inner.io_tracking.load(Ordering::Relaxed);
        stats::storage(inner.job(), &inner.label, tracking)
    }

    pub(crate) fn set_io_tracking(&self) -> Result<(), Error> {
        let inner = self.inner()?;
        stats::set_io_tracking(inner.job(), &inner.label)?;
        inner.io_tracking.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn private_working_set(&self) -> Result<u64, Error> {
        let inner = self.inner()?;
        stats::private_working_set(inner.job(), &inner.label)
    }

    pub(crate) fn close(&self) -> Result<(), Error> {
        // The handle closes here, or when the last call in flight on it returns.
        drop(self.handle.close()?);
        Ok(())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // A second close is the only error, and it cannot happen here.
        let _ = self.close();
    }
}

/// A limit that the system cannot hold (Wine's CPU rate and I/O controls) is none: getters say
/// `None` for it, as for a soft memory limit, and only setters say `Unsupported`.
fn none_if_unsupported<T>(read: Result<Option<T>, Error>) -> Result<Option<T>, Error> {
    match read {
        Err(Error::Unsupported { .. }) => Ok(None),
        other => other,
    }
}

/// How errors name a job.
fn label(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name:?}"),
        None => "(anonymous)".to_owned(),
    }
}

/// A handle's notifications, as an async task waits for them: the queue the event thread
/// fills.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub(crate) struct Listener(Arc<Queue>);

#[cfg(feature = "tokio")]
impl Listener {
    pub(crate) fn next(
        &self,
    ) -> impl std::future::Future<Output = Result<Notification, Error>> + Send + 'static {
        crate::events::next(Arc::clone(&self.0))
    }
}

/// What a call waiting for the job to be empty holds (see [`events::watch_empty`]).
#[derive(Debug)]
pub(crate) struct EmptyWatch {
    inner: Arc<Inner>,
    queue: Arc<Queue>,
    _watch: events::EmptyWatch,
}

impl EmptyWatch {
    pub(crate) fn is_empty(&self) -> Result<bool, Error> {
        Ok(info::active_processes(self.inner.job())
            .map_err(|err| errors::os(&self.inner.label, "query the active processes", err))?
            == 0)
    }

    /// Blocks for the next change until `deadline`; `Ok(None)` when it passed first.
    pub(crate) fn changed_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Notification>, Error> {
        self.queue.pop_until(deadline)
    }

    /// The next change, for an async task.
    #[cfg(feature = "tokio")]
    pub(crate) async fn changed(&self) -> Result<Notification, Error> {
        crate::events::next(Arc::clone(&self.queue)).await
    }
}
