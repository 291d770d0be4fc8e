//! The library's error type.

use std::io;
use std::path::PathBuf;

/// The result type of every fallible call of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and where.
///
/// Errors that come from the operating system keep the OS error as their
/// [`source`](std::error::Error::source) and name the job and the file or the call that failed.
///
/// ```
/// use jobobject::{Error, JobObject, Options};
///
/// // Opening a job needs a name.
/// let err = JobObject::open(&Options::default()).unwrap_err();
/// assert!(matches!(err, Error::InvalidArgument { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handle was closed; every call after [`close`](crate::JobObject::close) returns this.
    #[error("the job handle has already been closed")]
    AlreadyClosed,

    /// [`poll_notification`](crate::JobObject::poll_notification) on a handle created or
    /// opened without [`Options::notifications`](crate::Options::notifications).
    #[error("the job is not registered to receive notifications (set Options::notifications)")]
    NotRegistered,

    /// [`storage_stats`](crate::JobObject::storage_stats) before I/O tracking was turned on.
    #[error(
        "I/O tracking is off for this job: call set_io_tracking() or set Options::enable_io_tracking"
    )]
    IoTrackingDisabled,

    /// An argument was rejected before anything was changed.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong with it.
        message: String,
    },

    /// A job that does not exist, or no longer does (it was deleted under the handle).
    #[error("{what} does not exist")]
    NotFound {
        /// The missing job, such as `job "build-42"`, and what is known of why.
        what: String,
    },

    /// A process that does not exist, or has exited.
    #[error("process {pid} {}", if *.exited { "has exited" } else { "does not exist" })]
    ProcessNotFound {
        /// Its process id.
        pid: u32,
        /// It existed, but had exited (a zombie, or gone meanwhile).
        exited: bool,
    },

    /// Linux: the cgroup parent a job should live below does not exist.
    #[error("cgroup parent {} does not exist", .path.display())]
    ParentNotFound {
        /// The parent's directory, in one hierarchy.
        path: PathBuf,
    },

    /// The job is busy: it cannot be deleted while it holds processes or nested jobs, another
    /// process has held it locked for longer than an open waits (it was removing it), it is
    /// frozen and a process started in it could not run until it is thawed, or (Windows)
    /// another process gets its notifications.
    #[error("{what}")]
    Busy {
        /// What keeps it busy.
        what: String,
    },

    /// [`JobObject::create`](crate::JobObject::create) with the name of a job that exists.
    #[error("job {job:?} already exists")]
    AlreadyExists {
        /// The job's name.
        job: String,
    },

    /// The operation is not available on this system, and why.
    #[error("not supported: {what}")]
    Unsupported {
        /// What is missing.
        what: String,
    },

    /// The system cannot hold jobs at all (no cgroup filesystem, or not writable), with the
    /// way to fix it.
    #[error("{message}")]
    Unavailable {
        /// What is missing and how to fix it.
        message: String,
        /// The operating system's error, when one said so.
        #[source]
        source: Option<io::Error>,
    },

    /// A program could not be started in the job: it was not found, may not be run, or is
    /// not an executable the system can load.
    #[error("job {job}: cannot run {program}: {source}")]
    Spawn {
        /// The job it was for (its name, or `(anonymous)`).
        job: String,
        /// The program, quoted.
        program: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A system call or file operation failed.
    #[error("job {job}: {op}{}: {source}", path_suffix(.path))]
    Os {
        /// The job it was for (its name, or `(anonymous)`).
        job: String,
        /// The call or action that failed, such as `write cgroup.procs` or `rmdir`.
        op: String,
        /// The file it was applied to, when there is one.
        path: Option<PathBuf>,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" {}", p.display()),
        None => String::new(),
    }
}

/// What kind of error an [`Error`] is: what callers match on (the messages are for people and
/// may change).
///
/// ```
/// use jobobject::{ErrorKind, JobObject, Options};
///
/// let missing = Options::new().name(format!("surely-absent-{}", std::process::id()));
/// match JobObject::open(&missing) {
///     Err(err) if err.kind() == ErrorKind::JobNotFound => {}
///     Err(err) => panic!("{err}"),
///     Ok(_) => panic!("it exists"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::AlreadyClosed`].
    AlreadyClosed,
    /// [`Error::NotRegistered`].
    NotRegistered,
    /// [`Error::IoTrackingDisabled`].
    IoTrackingDisabled,
    /// [`Error::InvalidArgument`].
    InvalidArgument,
    /// [`Error::NotFound`]: the job.
    JobNotFound,
    /// [`Error::ProcessNotFound`].
    ProcessNotFound,
    /// [`Error::ParentNotFound`].
    ParentNotFound,
    /// [`Error::Busy`].
    Busy,
    /// [`Error::AlreadyExists`].
    AlreadyExists,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::Unavailable`].
    Unavailable,
    /// [`Error::Spawn`]: the program does not exist (or, on Linux, an interpreter it names).
    ProgramNotFound,
    /// [`Error::Os`] or [`Error::Spawn`] for lack of privileges.
    PermissionDenied,
    /// Any other [`Error::Os`].
    Other,
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::AlreadyClosed => ErrorKind::AlreadyClosed,
            Error::NotRegistered => ErrorKind::NotRegistered,
            Error::IoTrackingDisabled => ErrorKind::IoTrackingDisabled,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::NotFound { .. } => ErrorKind::JobNotFound,
            Error::ProcessNotFound { .. } => ErrorKind::ProcessNotFound,
            Error::ParentNotFound { .. } => ErrorKind::ParentNotFound,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Os { source, .. } | Error::Spawn { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::PermissionDenied
            }
            Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::ProgramNotFound
            }
            Error::Os { .. } | Error::Spawn { .. } => ErrorKind::Other,
        }
    }

    /// The OS error code behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } | Error::Spawn { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the OS refused the operation for lack of privileges.
    pub fn is_permission_denied(&self) -> bool {
        self.kind() == ErrorKind::PermissionDenied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_names_job_call_and_file() {
        let err = Error::Os {
            job: "\"build\"".into(),
            op: "write cgroup.procs".into(),
            path: Some("/sys/fs/cgroup/jobobject/build".into()),
            source: io::Error::from_raw_os_error(libc_esrch()),
        };
        let text = err.to_string();
        assert!(
            text.starts_with("job \"build\": write cgroup.procs /sys/fs/cgroup/jobobject/build: ")
        );
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.raw_os_error(), Some(libc_esrch()));
    }

    fn libc_esrch() -> i32 {
        3
    }
}
