//! The public handle.

use std::process::{Child, Command};

use crate::{Notification, Options, Result, sys};

/// A handle to a job: a group of processes controlled as one unit.
///
/// A job holds processes: ones started in it with [`spawn`](Self::spawn), ones moved into it
/// with [`assign`](Self::assign), and every descendant they start. It can list them
/// ([`pids`](Self::pids)), kill all of them ([`terminate`](Self::terminate)) and report when
/// the last one has exited ([`poll_notification`](Self::poll_notification)).
///
/// On Linux a job is a cgroup: a directory `PARENT/NAME` in each cgroup hierarchy the crate
/// uses (see [`CgroupParent`](crate::CgroupParent)). On Windows it is a Job Object.
///
/// The handle is `Send + Sync`; share it with an `Arc`. Every method takes `&self`, and
/// every method after [`close`](Self::close) returns [`Error::AlreadyClosed`](crate::Error).
///
/// # Lifetime
/// A job this process created is removed when its last handle in this process is closed
/// (or dropped) and no process is left in it. If processes remain, it stays until they have
/// all exited, and the process that created it removes it then, as long as that process is
/// still running; otherwise it stays in place, and anyone can [`open`](Self::open) it by name
/// and close it once empty. A job that a handle in another process still holds is never
/// removed under it (every handle holds a shared `flock` on the job's directory).
/// [`set_terminate_on_last_handle_close`](Self::set_terminate_on_last_handle_close) kills the
/// processes at that last close instead, then removes the job.
///
/// # Example
/// ```
/// use std::process::Command;
/// use jobobject::{JobObject, Notification, Options};
///
/// # fn main() -> Result<(), jobobject::Error> {
/// let job = JobObject::create(&Options::new().notifications(true))?;
/// let mut child = job.spawn(Command::new("sleep").arg("0.1"))?;
/// assert_eq!(job.pids()?, vec![child.id()]);
/// assert_eq!(job.poll_notification()?, Notification::AllProcessesExited);
/// child.wait().unwrap();
/// job.close()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JobObject {
    inner: sys::Job,
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
    /// that does not exist is [`Error::NotFound`](crate::Error::NotFound).
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
    /// Pid 0 is [`Error::InvalidArgument`](crate::Error::InvalidArgument); a process that does
    /// not exist is [`Error::NotFound`](crate::Error::NotFound). A process may run code before
    /// it is assigned; use [`spawn`](Self::spawn) where that matters.
    pub fn assign(&self, pid: u32) -> Result<()> {
        self.inner.assign(pid)
    }

    /// Starts `command` inside the job: the child is in the job before it runs any code of
    /// its own, so it cannot escape it by forking early.
    ///
    /// On Linux the child joins the job between fork and exec, through a hook that stays on
    /// `command`: spawning the same `Command` again, with or without this method, starts the
    /// new child in this job too (and fails once the job is removed).
    pub fn spawn(&self, command: &mut Command) -> Result<Child> {
        self.inner.spawn(command)
    }

    /// Every process in the job, including those of jobs nested in it, in ascending order.
    pub fn pids(&self) -> Result<Vec<u32>> {
        self.inner.pids()
    }

    /// Kills every process in the job and in jobs nested in it. It returns once each of them
    /// has been sent the kill, race-free against processes forking meanwhile; they are gone
    /// a moment later.
    ///
    /// On Windows every process exits with `exit_code`. On Linux a process killed this way
    /// has no exit code: its parent sees it terminated by SIGKILL (a shell reports status
    /// 137), and `exit_code` is not used.
    pub fn terminate(&self, exit_code: u32) -> Result<()> {
        self.inner.terminate(exit_code)
    }

    /// Makes the close of the last handle to the job in this process kill every process in
    /// it, then remove the job.
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
    /// the event thread polls the job's `cgroup.procs` every 20 ms instead.
    pub fn poll_notification(&self) -> Result<Notification> {
        self.inner.poll_notification()
    }

    /// Closes the handle; see [Lifetime](Self#lifetime). Every later call, including a
    /// [`poll_notification`](Self::poll_notification) blocked in another thread, returns
    /// [`Error::AlreadyClosed`](crate::Error::AlreadyClosed), and so does a second `close`.
    /// Dropping the handle closes it too.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}
