//! Errors a person can act on: one line that names the problem and what to do, and the exit
//! status that goes with it.

use std::fmt;

/// The exit statuses of jobctl itself (`run` also passes the command's own status through).
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// The operation failed: unknown job, job busy, no permission, no cgroups, a system error.
    pub const FAILURE: i32 = 1;
    /// A bad command line: unknown option, bad value or unit. Nothing was started or changed.
    pub const USAGE: i32 = 2;
    /// `run`: the command ran out of its `--timeout` and the job was killed.
    pub const TIMEOUT: i32 = 124;
    /// `run`: jobctl itself failed (the job could not be made or limited), the command did
    /// not run.
    pub const RUN_FAILED: i32 = 125;
    /// `run`: the command was found but could not be executed.
    pub const CANNOT_EXECUTE: i32 = 126;
    /// `run`: the command was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// An error of jobctl: the message (without the `jobctl: ` prefix) and the exit status.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub status: i32,
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn new(status: i32, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            status,
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(status::FAILURE, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(status::USAGE, message)
    }

    /// The same error with another exit status (`run` maps failures to 125).
    pub fn with_status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    /// Turns a library error about job `job` (if known) into a message with what to do,
    /// telling errors apart by their kind, never by their text.
    pub fn from_job(job: Option<&str>, err: jobobject::Error) -> Self {
        use jobobject::ErrorKind as K;
        let name = job.unwrap_or("(anonymous)");
        match err.kind() {
            K::JobNotFound => Self::failure(format!(
                "no job named {name:?} here: see the jobs with `jobctl list`, or make it with \
                 `jobctl create {name}`"
            )),
            K::ProcessNotFound => {
                Self::failure(format!("{err}: check the pid (it may have exited already)"))
            }
            K::AlreadyExists => Self::failure(format!(
                "a job named {name:?} already exists: pick another name, or remove it with \
                 `jobctl delete --force {name}`"
            )),
            K::ParentNotFound => Self::usage(format!(
                "{err}: create it, or choose another --parent (self, shared or an existing \
                 cgroup path)"
            )),
            K::InvalidArgument => Self::usage(match err {
                jobobject::Error::InvalidArgument { message } => message,
                other => other.to_string(),
            }),
            K::Busy => Self::failure(format!(
                "{err}: kill them first with `jobctl kill {name}`, or use `jobctl delete \
                 --force {name}`"
            )),
            K::Unsupported => Self::failure(format!("{err} here")),
            K::PermissionDenied => Self::failure(format!(
                "permission denied: {err}: {}",
                crate::platform::permission_hint()
            )),
            _ => Self::failure(err.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line (a message from the system may carry a newline), and escaped: messages
        // quote names and paths.
        write!(f, "jobctl: {}", crate::output::one_line(&self.message))
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        Self::failure(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_job_says_what_to_do() {
        let err = jobobject::Error::NotFound {
            what: "job \"x\" (no /sys/fs/cgroup/x)".into(),
        };
        let cli = CliError::from_job(Some("x"), err);
        assert_eq!(cli.status, status::FAILURE);
        assert!(cli.to_string().starts_with("jobctl: no job named \"x\""));
        assert!(cli.to_string().contains("jobctl list"));
    }

    #[test]
    fn one_line() {
        let err = CliError::failure("a\nb");
        assert_eq!(err.to_string(), "jobctl: a b");
    }
}
