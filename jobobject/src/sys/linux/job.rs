//! A handle to a job: what `JobObject` calls on Linux.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Instant;

use super::cgroup::{self, JobCgroups};
use super::shared::{Holder, Shared};
use super::{process, spawn, waiting};
use crate::events::Queue;
use crate::handle::Handle;
use crate::{
    CpuLimit, Error, JobLimits, MemoryStats, Notification, Options, ProcessorStats, StorageStats,
};

/// One handle: the job's shared state while open, this handle's notification queue, and what
/// the handle is to the job.
#[derive(Debug)]
pub(crate) struct Job {
    handle: Handle<Shared>,
    holder: Holder,
}

impl Job {
    pub(crate) fn create(options: &Options) -> Result<Self, Error> {
        if options.observer {
            return Err(Error::invalid(
                "a job is created by a handle that holds it: observer() is for opening",
            ));
        }
        if let Some(name) = &options.name {
            cgroup::check_name(name)?;
        }
        let cgroups = JobCgroups::create(&options.cgroup_parent, options.name.as_deref())?;
        cgroups.mark_made();
        if options.name.is_none() {
            cgroups.mark_anonymous();
        }
        let shared = Shared::register(cgroups, Holder::Creator)?;
        Self::with(shared, Holder::Creator, options)
    }

    pub(crate) fn open(options: &Options) -> Result<Self, Error> {
        let Some(name) = &options.name else {
            return Err(Error::invalid("opening a job needs Options::name"));
        };
        cgroup::check_name(name)?;
        let cgroups = JobCgroups::open(&options.cgroup_parent, name)?;
        if !options.observer && cgroups.is_anonymous() {
            return Err(Error::NotFound {
                what: format!(
                    "job {name:?} by name: it was made anonymous, and an anonymous job is not \
                     opened by name (as on Windows); an observer handle \
                     (os::linux::OptionsExt::observer) reads and controls it"
                ),
            });
        }
        let holder = if options.observer {
            Holder::Observer
        } else {
            Holder::Opener
        };
        Self::with(Shared::register(cgroups, holder)?, holder, options)
    }

    fn with(shared: Arc<Shared>, holder: Holder, options: &Options) -> Result<Self, Error> {
        let job = Job {
            handle: Handle::new(
                Arc::clone(&shared),
                options.notifications.then(|| Arc::new(Queue::new())),
            ),
            holder,
        };
        // On failure `job` is dropped, which releases the handle.
        if let Some(queue) = job.handle.queue() {
            shared.add_queue(Arc::clone(queue))?;
        }
        if options.enable_io_tracking {
            shared.set_io_tracking()?;
        }
        Ok(job)
    }

    /// The shared state, or `AlreadyClosed`.
    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.handle.get()
    }

    pub(crate) fn name(&self) -> Result<String, Error> {
        Ok(self.shared()?.cgroups.name().to_owned())
    }

    pub(crate) fn assign(&self, pid: u32) -> Result<(), Error> {
        let shared = self.shared()?;
        check_assignable(pid)?;
        let armed = shared.arm();
        let result = shared.cgroups.assign(pid);
        shared.settle(armed, result.as_ref().ok().map(|()| pid));
        result
    }

    pub(crate) fn spawn(&self, command: &mut Command) -> Result<Child, Error> {
        let shared = self.shared()?;
        refuse_if_frozen(&shared)?;
        let armed = shared.arm();
        let result = spawn::spawn(&shared.cgroups, command);
        shared.settle(armed, result.as_ref().ok().map(Child::id));
        result
    }

    /// tokio's `Command`, through the same hook as std's.
    #[cfg(feature = "tokio")]
    pub(crate) fn spawn_tokio(
        &self,
        command: &mut tokio::process::Command,
    ) -> Result<tokio::process::Child, Error> {
        let shared = self.shared()?;
        refuse_if_frozen(&shared)?;
        let armed = shared.arm();
        let result = spawn::spawn_with(
            &shared.cgroups,
            command,
            tokio::process::Command::as_std_mut,
            tokio::process::Command::spawn,
        );
        shared.settle(
            armed,
            result.as_ref().ok().and_then(tokio::process::Child::id),
        );
        result
    }

    pub(crate) fn spawn_builder(
        &self,
        command: &crate::process::Command,
    ) -> Result<crate::process::Child, Error> {
        let shared = self.shared()?;
        refuse_if_frozen(&shared)?;
        let armed = shared.arm();
        let result = process::spawn(&shared.cgroups, &command.parts(), &command.linux);
        shared.settle(armed, result.as_ref().ok().map(|s| s.process.id()));
        let spawned = result?;
        Ok(crate::process::Child::new(spawned.process, spawned.pipes))
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>, Error> {
        self.shared()?.cgroups.pids()
    }

    pub(crate) fn freeze(&self, frozen: bool) -> Result<(), Error> {
        self.shared()?.cgroups.freeze(frozen)
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, Error> {
        self.shared()?.cgroups.frozen()
    }

    pub(crate) fn terminate(&self, _exit_code: u32) -> Result<(), Error> {
        let shared = self.shared()?;
        shared.count_killed(shared.cgroups.pids()?.len());
        shared.cgroups.kill()
    }

    /// Sends `signal` (a signal number) to every process of the job and its nested jobs.
    pub(crate) fn signal(&self, signal: i32) -> Result<(), Error> {
        let signal = to_signal(signal)?;
        self.shared()?.cgroups.signal(signal)
    }

    /// Asks every process to end: `signal` (SIGTERM by default), then SIGCONT, so that a
    /// stopped process gets it too; whether anything was sent (always, here).
    pub(crate) fn ask_to_end(&self, signal: Option<i32>) -> Result<bool, Error> {
        let signal = signal.unwrap_or(libc::SIGTERM);
        self.signal(signal)?;
        if signal != libc::SIGKILL && signal != libc::SIGCONT {
            self.signal(libc::SIGCONT)?;
        }
        // A frozen process would see the request only at the thaw: thawed now, as systemd
        // thaws a unit it stops.
        let cgroups = &self.shared()?.cgroups;
        if cgroups.freezing() {
            cgroups.freeze(false)?;
        }
        Ok(true)
    }

    pub(crate) fn set_terminate_on_last_handle_close(&self) -> Result<(), Error> {
        let shared = self.shared()?;
        if self.holder == Holder::Observer {
            return Err(Error::invalid(
                "an observer handle does not hold the job: its close kills nothing",
            ));
        }
        shared.set_terminate_on_close();
        Ok(())
    }

    pub(crate) fn poll_notification(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Notification>, Error> {
        let shared = self.shared()?;
        let queue = self.handle.queue().ok_or(Error::NotRegistered)?;
        waiting::pop_until(&shared, queue, deadline)
    }

    /// This handle's notifications, for an async task.
    #[cfg(feature = "tokio")]
    pub(crate) fn listener(&self) -> Result<Listener, Error> {
        Ok(Listener {
            shared: self.shared()?,
            queue: self.handle.listener()?,
        })
    }

    /// A watch for the job to be empty: a queue of its own, fed by the event thread.
    pub(crate) fn empty_watch(&self) -> Result<EmptyWatch, Error> {
        let shared = self.shared()?;
        let queue = self.handle.waiter()?;
        shared.add_queue(Arc::clone(&queue))?;
        Ok(EmptyWatch { shared, queue })
    }

    pub(crate) fn cpu_limit(&self) -> Result<Option<CpuLimit>, Error> {
        self.shared()?.limits().cpu_limit()
    }

    pub(crate) fn cpu_affinity(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().cpu_affinity()
    }

    pub(crate) fn cpu_set(&self) -> Result<Option<crate::CpuSet>, Error> {
        self.shared()?.limits().cpu_set()
    }

    pub(crate) fn set_cpu_set(&self, cpus: Option<&crate::CpuSet>) -> Result<(), Error> {
        self.shared()?.limits().set_cpu_set(cpus)
    }

    pub(crate) fn memory_limit(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().memory_limit()
    }

    pub(crate) fn memory_high(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().memory_high()
    }

    pub(crate) fn swap_limit(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().swap_limit()
    }

    pub(crate) fn set_oom_group_kill(&self, all: bool) -> Result<(), Error> {
        self.shared()?.limits().set_oom_group_kill(all)
    }

    pub(crate) fn oom_group_kill(&self) -> Result<bool, Error> {
        self.shared()?.limits().oom_group_kill()
    }

    pub(crate) fn pressure_stats(&self) -> Result<crate::PressureStats, Error> {
        self.shared()?.cgroups.pressure()
    }

    pub(crate) fn add_pressure_trigger(
        &self,
        trigger: &crate::PressureTrigger,
    ) -> Result<(), Error> {
        let shared = self.shared()?;
        self.handle.queue().ok_or(Error::NotRegistered)?;
        shared.add_pressure_trigger(trigger)
    }

    pub(crate) fn reset_memory_peak(&self) -> Result<(), Error> {
        self.shared()?.stats().reset_memory_peak()
    }

    pub(crate) fn io_max_bandwidth_limit(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().io_max_bandwidth_limit()
    }

    pub(crate) fn io_max_iops_limit(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().io_max_iops_limit()
    }

    pub(crate) fn max_processes(&self) -> Result<Option<u32>, Error> {
        self.shared()?.limits().max_processes()
    }

    pub(crate) fn set_resource_limits(&self, limits: &JobLimits) -> Result<(), Error> {
        self.shared()?.limits().set_resource_limits(limits)
    }

    pub(crate) fn memory_stats(&self) -> Result<MemoryStats, Error> {
        self.shared()?.stats().memory()
    }

    pub(crate) fn processor_stats(&self) -> Result<ProcessorStats, Error> {
        self.shared()?.processor_stats()
    }

    pub(crate) fn storage_stats(&self) -> Result<StorageStats, Error> {
        self.shared()?.storage_stats()
    }

    pub(crate) fn set_io_tracking(&self) -> Result<(), Error> {
        self.shared()?.set_io_tracking()
    }

    pub(crate) fn private_working_set(&self) -> Result<u64, Error> {
        self.shared()?.stats().private_working_set()
    }

    pub(crate) fn cgroup_paths(&self) -> Result<Vec<std::path::PathBuf>, Error> {
        Ok(self.shared()?.cgroups.paths())
    }

    pub(crate) fn set_persistent(&self) -> Result<(), Error> {
        self.shared()?.set_persistent();
        Ok(())
    }

    /// Removes the job, then closes this handle.
    pub(crate) fn delete(&self) -> Result<(), Error> {
        let shared = self.shared()?;
        shared.delete()?;
        shared.set_persistent();
        self.close()
    }

    pub(crate) fn close(&self) -> Result<(), Error> {
        self.handle
            .close()?
            .release(self.handle.queue(), self.holder)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ = self.close();
    }
}

/// Refuses the processes no job may take: pid 0 (not a process), init (pid 1: a job's
/// terminate would kill the whole system, or container) and kernel threads.
fn check_assignable(pid: u32) -> Result<(), Error> {
    match pid {
        0 => Err(Error::invalid("process id 0 is not a process")),
        1 => Err(Error::invalid(
            "process 1 is init: it may not be moved into a job (terminating the job would \
             kill it)",
        )),
        _ => match cgroup::is_kernel_thread(pid) {
            Some(true) => Err(Error::invalid(format!(
                "process {pid} is a kernel thread: it cannot be moved into a job"
            ))),
            Some(false) => Ok(()),
            None => Err(Error::ProcessNotFound { pid, exited: false }),
        },
    }
}

/// A handle's notifications, as an async task waits for them.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    shared: Arc<Shared>,
    queue: Arc<Queue>,
}

#[cfg(feature = "tokio")]
impl Listener {
    /// The next notification (see [`waiting::next_async`]).
    pub(crate) fn next(
        &self,
    ) -> impl std::future::Future<Output = Result<Notification, Error>> + Send + 'static {
        let Listener { shared, queue } = self.clone();
        async move { waiting::next_async(&shared, queue).await }
    }
}

/// What a call waiting for the job to be empty holds: a queue that was listening before the
/// first look at the job, so that no emptying falls between a look and the wait.
#[derive(Debug)]
pub(crate) struct EmptyWatch {
    shared: Arc<Shared>,
    queue: Arc<Queue>,
}

impl EmptyWatch {
    pub(crate) fn is_empty(&self) -> Result<bool, Error> {
        Ok(!self.shared.cgroups.populated()?)
    }

    /// Blocks for the next change until `deadline`; `Ok(None)` when it passed first.
    pub(crate) fn changed_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Notification>, Error> {
        waiting::pop_until(&self.shared, &self.queue, deadline)
    }

    /// The next change, for an async task.
    #[cfg(feature = "tokio")]
    pub(crate) async fn changed(&self) -> Result<Notification, Error> {
        waiting::next_async(&self.shared, Arc::clone(&self.queue)).await
    }
}

impl Drop for EmptyWatch {
    fn drop(&mut self) {
        self.shared.remove_queue(&self.queue);
    }
}

/// The signal numbered `number`: a named one, or a real-time one (SIGRTMIN-SIGRTMAX as the C
/// library numbers them); anything else is `InvalidArgument`.
fn to_signal(number: i32) -> Result<rustix::process::Signal, Error> {
    if let Some(signal) = rustix::process::Signal::from_named_raw(number) {
        return Ok(signal);
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&number) {
        // SAFETY: a real-time signal the C library leaves to programs.
        return Ok(unsafe { rustix::process::Signal::from_raw_unchecked(number) });
    }
    Err(Error::invalid(format!("{number} is not a signal")))
}

/// A child started in a frozen job would be frozen before its `exec`, and its spawn, which
/// waits for the `exec`, would wait for the thaw: refused instead.
fn refuse_if_frozen(shared: &Shared) -> Result<(), Error> {
    if shared.cgroups.freezing() {
        return Err(Error::Busy {
            what: format!(
                "job {:?} is frozen: a process started in it could not run until it is thawed",
                shared.cgroups.name()
            ),
        });
    }
    Ok(())
}
