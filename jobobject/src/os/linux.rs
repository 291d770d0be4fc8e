//! Linux-specific parts of the API: a job's cgroups, jobs that outlive their handles, and the
//! list of jobs.

use std::path::PathBuf;

use crate::{CgroupParent, JobObject, Result, sys};

/// What a job can do on Linux only.
///
/// ```
/// use jobobject::os::linux::{JobObjectExt, list_jobs};
/// use jobobject::{CgroupParent, JobObject, Options};
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
}

/// The names of the jobs below `parent`, sorted (anonymous ones included).
pub fn list_jobs(parent: &CgroupParent) -> Result<Vec<String>> {
    sys::list_jobs(parent)
}
