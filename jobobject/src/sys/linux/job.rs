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
        let shared = Shared::register(cgroups, Holder::Creator)?;
        Self::with(shared, Holder::Creator, options)
    }

    pub(crate) fn open(options: &Options) -> Result<Self, Error> {
        let Some(name) = &options.name else {
            return Err(Error::invalid("opening a job needs Options::name"));
        };
        cgroup::check_name(name)?;
        let cgroups = JobCgroups::open(&options.cgroup_parent, name)?;
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
        let armed = shared.arm();
        let result = spawn::spawn(&shared.cgroups, command);
        shared.settle(armed, result.as_ref().ok().map(Child::id));
        result
    }

    pub(crate) fn spawn_builder(
        &self,
        command: &crate::process::Command,
    ) -> Result<crate::process::Child, Error> {
        let shared = self.shared()?;
        let armed = shared.arm();
        let result = process::spawn(&shared.cgroups, &command.parts(), &command.linux);
        shared.settle(armed, result.as_ref().ok().map(|s| s.process.id()));
        let spawned = result?;
        Ok(crate::process::Child::new(spawned.process, spawned.pipes))
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>, Error> {
        self.shared()?.cgroups.pids()
    }

    pub(crate) fn terminate(&self, _exit_code: u32) -> Result<(), Error> {
        let shared = self.shared()?;
        shared.count_killed(shared.cgroups.pids()?.len());
        shared.cgroups.kill()
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

    /// Waits on a queue of its own, fed by the event thread, for the job to read as empty.
    pub(crate) fn wait_empty(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        let shared = self.shared()?;
        let queue = self.handle.waiter()?;
        shared.add_queue(Arc::clone(&queue))?;
        let empty = wait_until_empty(&shared, &queue, deadline);
        shared.remove_queue(&queue);
        empty
    }

    pub(crate) fn cpu_limit(&self) -> Result<Option<CpuLimit>, Error> {
        self.shared()?.limits().cpu_limit()
    }

    pub(crate) fn cpu_affinity(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().cpu_affinity()
    }

    pub(crate) fn memory_limit(&self) -> Result<Option<u64>, Error> {
        self.shared()?.limits().memory_limit()
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

/// Reads the job after every message on `queue` (which was listening before the first read,
/// so that no emptying falls between a read and the wait) until it holds no process.
fn wait_until_empty(
    shared: &Arc<Shared>,
    queue: &Queue,
    deadline: Option<Instant>,
) -> Result<bool, Error> {
    loop {
        if !shared.cgroups.populated()? {
            return Ok(true);
        }
        match waiting::pop_until(shared, queue, deadline) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(false),
            // Deleted meanwhile: the kernel removes only empty cgroups.
            Err(Error::NotFound { .. }) => return Ok(true),
            Err(err) => return Err(err),
        }
    }
}
