//! Linux-specific parts of the API, as `std::os::linux` is std's: where jobs live (the cgroup
//! parent, the layout), a job's cgroups, jobs that outlive their handles, the list of jobs, and
//! observer handles.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

pub use crate::sys::CgroupLayout;
use crate::{JobObject, Options, Result, Stopped, sys};

/// Linux: the cgroup below which a job's directories are made (one per hierarchy).
///
/// A job named `NAME` is the directory `PARENT/NAME` in every cgroup hierarchy the library
/// uses. Two processes see the same job when they resolve the same parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupParent {
    /// The environment decides: `JOBOBJECT_CGROUP_PARENT=self` means [`Own`](Self::Own),
    /// `JOBOBJECT_CGROUP_PARENT=PATH` means [`Path`](Self::Path), and unset means
    /// [`Shared`](Self::Shared).
    #[default]
    Default,
    /// The well-known place shared by every process on the host: `/jobobject` at the top of
    /// each hierarchy, made on first use.
    Shared,
    /// Below the calling process's own cgroup, in each hierarchy: where it was when it first
    /// used this parent (a process's parents are resolved once and kept open, one directory
    /// per hierarchy; they are resolved again if that directory has gone or refuses a job).
    Own,
    /// This path, relative to the root of each hierarchy (for example `ci/runner-3`). It must
    /// exist, and may not contain `..`.
    Path(PathBuf),
}

/// The environment variable that changes [`CgroupParent::Default`].
pub const CGROUP_PARENT_ENV: &str = "JOBOBJECT_CGROUP_PARENT";

/// What a job can do on Linux only.
///
/// ```
/// use jobobject::os::linux::{CgroupParent, JobObjectExt, list_jobs};
/// use jobobject::{JobObject, Options};
///
/// # fn main() -> Result<(), jobobject::Error> {
/// let name = format!("doc-persistent-{}", std::process::id());
/// let job = JobObject::create(&Options::new().name(&name))?;
/// job.set_persistent()?;
/// job.close()?; // the job stays
/// assert!(list_jobs(&CgroupParent::Default)?.contains(&name));
///
/// let job = JobObject::open(&Options::new().name(&name))?;
/// println!("cgroups: {:?}", job.cgroup_paths()?);
/// job.delete()?; // removes it (it holds no process) and closes the handle
/// # Ok(())
/// # }
/// ```
pub trait JobObjectExt {
    /// The job's cgroup directories, one per hierarchy (the v2 one first where there is one).
    fn cgroup_paths(&self) -> Result<Vec<PathBuf>>;

    /// Keeps the job in place when its handles are closed, even empty, until
    /// [`delete`](Self::delete)d: a named job made for others to open later, as
    /// `jobctl create` does.
    fn set_persistent(&self) -> Result<()>;

    /// Removes the job now and closes this handle. A job that still holds processes or nested
    /// jobs is [`Error::Busy`](crate::Error::Busy) (terminate it first). Other handles to it
    /// fail from then on.
    fn delete(&self) -> Result<()>;

    /// Sends `signal` (a signal number, such as `libc::SIGTERM`; real-time ones included) to
    /// every process of the job and of the jobs nested in it, in passes until one finds no
    /// process it has not signalled. A process forked meanwhile by a signalled one gets it too,
    /// unless that one blocked or ignored it (the kernel delivers a pending signal before it
    /// lets the fork happen). Anything but a signal number is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    fn signal(&self, signal: i32) -> Result<()>;

    /// [`JobObject::stop`] with `signal` as the request instead of SIGTERM (then SIGCONT,
    /// unless it is SIGCONT or SIGKILL).
    fn stop_with_signal(&self, signal: i32, grace: std::time::Duration) -> Result<Stopped>;
}

impl JobObjectExt for JobObject {
    fn cgroup_paths(&self) -> Result<Vec<PathBuf>> {
        self.inner.cgroup_paths()
    }

    fn set_persistent(&self) -> Result<()> {
        self.inner.set_persistent()
    }

    fn delete(&self) -> Result<()> {
        self.inner.delete()
    }

    fn signal(&self, signal: i32) -> Result<()> {
        self.inner.signal(signal)
    }

    fn stop_with_signal(&self, signal: i32, grace: std::time::Duration) -> Result<Stopped> {
        crate::stop::stop(self, Some(signal), grace)
    }
}

/// The names of the jobs below `parent`, sorted (anonymous ones included).
pub fn list_jobs(parent: &CgroupParent) -> Result<Vec<String>> {
    sys::list_jobs(parent)
}

/// The pid of this process's keeper, while one runs: the small process that acts for this
/// process's jobs if it ends (killed, `process::exit`, `abort`) or `exec`s without closing
/// them, as Windows does when a process's last handle to a job goes. It is started with the
/// first job this process holds, is nobody's child (init or the nearest subreaper reaps it),
/// runs in a session of its own as `jobobject-keep`, and exits once this process has ended
/// and the jobs it held are dealt with. See the `JobObject` docs (Lifetime).
///
/// ```
/// use jobobject::{JobObject, Options};
///
/// let job = JobObject::create(&Options::default())?;
/// // A process that holds a job has a keeper, unless it could not start one.
/// if let Some(pid) = jobobject::os::linux::keeper_pid() {
///     assert_ne!(pid, std::process::id());
/// }
/// job.close()?;
/// # Ok::<(), jobobject::Error>(())
/// ```
pub fn keeper_pid() -> Option<u32> {
    sys::keeper_pid()
}

/// What [`Options`] can say on Linux only, as std's `CommandExt` does for `Command`.
pub trait OptionsExt {
    /// Where the job's cgroups live (see [`CgroupParent`]); the default follows
    /// [`CGROUP_PARENT_ENV`].
    ///
    /// ```
    /// use jobobject::os::linux::{CgroupParent, OptionsExt};
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// // Below this process's own cgroups, whatever the environment says.
    /// let job = JobObject::create(&Options::new().cgroup_parent(CgroupParent::Own))?;
    /// # Ok(())
    /// # }
    /// ```
    fn cgroup_parent(self, parent: CgroupParent) -> Self;

    /// Opens the job as an observer: a handle that reads and controls the job (statistics,
    /// limits, `pids`, `assign`, `terminate`, notifications) without holding it. It keeps no
    /// other handle from being the last one, so the job is removed as if it were not there,
    /// and closing it removes and kills nothing, whatever else holds the job. Later calls on a
    /// job removed meanwhile fail with [`Error::NotFound`](crate::Error::NotFound).
    ///
    /// For tools that look at jobs others own, as `jobctl list` does: reading never changes
    /// anything. [`JobObject::create`] refuses it (a job is made by a handle that holds it),
    /// and so does
    /// [`set_terminate_on_last_handle_close`](crate::JobObject::set_terminate_on_last_handle_close).
    ///
    /// ```
    /// use jobobject::os::linux::OptionsExt;
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let options = Options::new().name(format!("doc-observer-{}", std::process::id()));
    /// let job = JobObject::create(&options)?;
    /// let observer = JobObject::open(&options.clone().observer(true))?;
    /// job.close()?; // the last holder: the job is removed, the observer notwithstanding
    /// assert!(observer.pids().is_err());
    /// # Ok(())
    /// # }
    /// ```
    fn observer(self, enabled: bool) -> Self;
}

impl OptionsExt for Options {
    fn cgroup_parent(mut self, parent: CgroupParent) -> Self {
        self.cgroup_parent = parent;
        self
    }

    fn observer(mut self, enabled: bool) -> Self {
        self.observer = enabled;
        self
    }
}

/// What [`process::Command`](crate::process::Command) can do on Linux only, as std's
/// `std::os::unix::process::CommandExt`.
///
/// ```
/// use jobobject::os::linux::CommandExt;
/// use jobobject::process::Command;
/// use jobobject::{JobObject, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let job = JobObject::create(&Options::default())?;
/// // Its own process group, so that a terminal's Ctrl-C does not reach it.
/// let mut child = Command::new("true").process_group(0).spawn(&job)?;
/// assert!(child.wait()?.success());
/// # Ok(())
/// # }
/// ```
pub trait CommandExt {
    /// Runs the child as user `uid` (the caller must be allowed to: root, usually). When
    /// root changes the user, the child's supplementary groups are dropped, as std does.
    fn uid(&mut self, uid: u32) -> &mut Self;

    /// Runs the child with group `gid`.
    fn gid(&mut self, gid: u32) -> &mut Self;

    /// Puts the child in process group `pgroup`; 0 makes a new group led by the child.
    fn process_group(&mut self, pgroup: i32) -> &mut Self;

    /// Tests only: the spawn takes this path or fails.
    #[doc(hidden)]
    fn spawn_path(&mut self, path: SpawnPath) -> &mut Self;
}

/// Tests only: how a [`process::Command`](crate::process::Command) starts its child.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnPath {
    /// clone3 `CLONE_INTO_CGROUP` into the v2 directory (plus joins on v1).
    BornInJob,
    /// A vfork-style clone whose child joins every hierarchy.
    Join,
    /// The same without `CLONE_PIDFD`.
    JoinWithoutPidfd,
}

/// The Linux settings of a [`process::Command`](crate::process::Command).
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandOptions {
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) process_group: Option<i32>,
    pub(crate) path: Option<SpawnPath>,
}

impl CommandExt for crate::process::Command {
    fn uid(&mut self, uid: u32) -> &mut Self {
        self.linux.uid = Some(uid);
        self
    }

    fn gid(&mut self, gid: u32) -> &mut Self {
        self.linux.gid = Some(gid);
        self
    }

    fn process_group(&mut self, pgroup: i32) -> &mut Self {
        self.linux.process_group = Some(pgroup);
        self
    }

    fn spawn_path(&mut self, path: SpawnPath) -> &mut Self {
        self.linux.path = Some(path);
        self
    }
}

/// What a [`process::Child`](crate::process::Child) has on Linux only.
pub trait ChildExt {
    /// The child's pidfd (Linux 5.2 and later), for `poll`, `waitid(P_PIDFD)` or
    /// `pidfd_send_signal`: it names this child even after its pid is reused.
    fn pidfd(&self) -> Option<BorrowedFd<'_>>;
}

impl ChildExt for crate::process::Child {
    fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.process.pidfd()
    }
}
