//! A handle to a job: what `JobObject` calls on Linux.

use std::process::{Child, Command};
use std::sync::{Arc, PoisonError, RwLock};

use super::cgroup::{self, JobCgroups};
use super::shared::Shared;
use super::spawn;
use crate::events::Queue;
use crate::{Error, Notification, Options};

/// One handle: the job's shared state while open, and this handle's notification queue.
#[derive(Debug)]
pub(crate) struct Job {
    open: RwLock<Option<Arc<Shared>>>,
    queue: Option<Arc<Queue>>,
}

impl Job {
    pub(crate) fn create(options: &Options) -> Result<Self, Error> {
        if let Some(name) = &options.name {
            cgroup::check_name(name)?;
        }
        let cgroups = JobCgroups::create(&options.cgroup_parent, options.name.as_deref())?;
        match Shared::register(cgroups, true) {
            Ok(shared) => Self::with(shared, options),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn open(options: &Options) -> Result<Self, Error> {
        let Some(name) = &options.name else {
            return Err(Error::invalid("opening a job needs Options::name"));
        };
        cgroup::check_name(name)?;
        let cgroups = JobCgroups::open(&options.cgroup_parent, name)?;
        Self::with(Shared::register(cgroups, false)?, options)
    }

    fn with(shared: Arc<Shared>, options: &Options) -> Result<Self, Error> {
        let queue = options.notifications.then(|| Arc::new(Queue::new()));
        let job = Job {
            open: RwLock::new(Some(Arc::clone(&shared))),
            queue: queue.clone(),
        };
        if let Some(queue) = queue {
            // On failure `job` is dropped, which releases the handle.
            shared.add_queue(queue)?;
        }
        Ok(job)
    }

    /// The shared state, or `AlreadyClosed`.
    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.open
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::AlreadyClosed)
    }

    pub(crate) fn name(&self) -> Result<String, Error> {
        Ok(self.shared()?.cgroups.name().to_owned())
    }

    pub(crate) fn assign(&self, pid: u32) -> Result<(), Error> {
        let shared = self.shared()?;
        if pid == 0 {
            return Err(Error::invalid("process id 0"));
        }
        let armed = shared.arm();
        let result = shared.cgroups.assign(pid);
        shared.settle(armed, result.is_ok());
        result
    }

    pub(crate) fn spawn(&self, command: &mut Command) -> Result<Child, Error> {
        let shared = self.shared()?;
        let armed = shared.arm();
        let result = spawn::spawn(&shared.cgroups, command);
        shared.settle(armed, result.is_ok());
        result
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>, Error> {
        self.shared()?.cgroups.pids()
    }

    pub(crate) fn terminate(&self, _exit_code: u32) -> Result<(), Error> {
        self.shared()?.cgroups.kill()
    }

    pub(crate) fn set_terminate_on_last_handle_close(&self) -> Result<(), Error> {
        self.shared()?.set_terminate_on_close();
        Ok(())
    }

    pub(crate) fn poll_notification(&self) -> Result<Notification, Error> {
        self.shared()?;
        self.queue.as_ref().ok_or(Error::NotRegistered)?.pop()
    }

    pub(crate) fn close(&self) -> Result<(), Error> {
        let shared = self
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(Error::AlreadyClosed)?;
        if let Some(queue) = &self.queue {
            queue.close();
        }
        shared.release(self.queue.as_ref())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ = self.close();
    }
}
