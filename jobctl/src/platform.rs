//! What differs between Linux and Windows: where jobs live, listing them, keeping them after
//! jobctl exits, and deleting them. Everything else goes through the portable API.

use jobobject::{JobObject, Options};

use crate::error::{CliError, CliResult};

/// Options that every subcommand shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--parent`: where jobs live (Linux).
    pub parent: Option<String>,
    /// `--json`: machine-readable output.
    pub json: bool,
}

/// Options for a job named `name` (or an anonymous one), in the place `--parent` chose.
pub fn options(global: &Global, name: Option<&str>) -> CliResult<Options> {
    let mut options = Options::new();
    if let Some(name) = name {
        options = options.name(name);
    }
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::OptionsExt;
        options = options.cgroup_parent(cgroup_parent(global));
    }
    #[cfg(not(target_os = "linux"))]
    if global.parent.is_some() {
        return Err(CliError::usage(
            "--parent chooses a cgroup and exists on Linux only: leave it out",
        ));
    }
    Ok(options)
}

#[cfg(target_os = "linux")]
fn cgroup_parent(global: &Global) -> jobobject::os::linux::CgroupParent {
    use jobobject::os::linux::CgroupParent;
    match global.parent.as_deref() {
        None => CgroupParent::Default,
        Some("self") => CgroupParent::Own,
        Some("shared") => CgroupParent::Shared,
        Some(path) => CgroupParent::Path(path.trim_start_matches('/').into()),
    }
}

/// Opens the existing job `name`, with a message that says what to do when it is missing.
///
/// On Linux as an observer: jobctl acts on a job others hold but never holds it, so closing
/// its handle never removes or kills anything (reading a job changes nothing).
pub fn open(global: &Global, name: &str, notifications: bool) -> CliResult<JobObject> {
    let options = options(global, Some(name))?.notifications(notifications);
    #[cfg(target_os = "linux")]
    let options = {
        use jobobject::os::linux::OptionsExt;
        options.observer(true)
    };
    JobObject::open(&options).map_err(|e| CliError::from_job(Some(name), e))
}

/// The names of the jobs in the place `--parent` chose.
pub fn list_jobs(global: &Global) -> CliResult<Vec<String>> {
    #[cfg(target_os = "linux")]
    {
        jobobject::os::linux::list_jobs(&cgroup_parent(global))
            .map_err(|e| CliError::from_job(None, e))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = global;
        Err(unsupported("listing jobs"))
    }
}

/// Keeps the job in place after jobctl exits (until `jobctl delete`).
pub fn set_persistent(job: &JobObject) -> CliResult<()> {
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::JobObjectExt;
        job.set_persistent()
            .map_err(|e| CliError::from_job(job.name().ok().as_deref(), e))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = job;
        Err(unsupported(
            "a job that outlives jobctl (a Windows Job Object ends with its last handle)",
        ))
    }
}

/// Removes the (empty) job now and closes the handle.
pub fn delete(job: &JobObject) -> Result<(), jobobject::Error> {
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::JobObjectExt;
        job.delete()
    }
    #[cfg(not(target_os = "linux"))]
    {
        job.close()
    }
}

/// Where jobs live, for messages.
pub fn describe_parent(global: &Global) -> String {
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::CGROUP_PARENT_ENV;
        match global.parent.as_deref() {
            Some(parent) => format!("--parent {parent}"),
            None => match std::env::var(CGROUP_PARENT_ENV) {
                Ok(value) if !value.is_empty() => format!("{CGROUP_PARENT_ENV}={value}"),
                _ => "the shared place".to_owned(),
            },
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = global;
        "this session".to_owned()
    }
}

/// What to do about a permission error, for messages.
pub fn permission_hint() -> String {
    #[cfg(target_os = "linux")]
    {
        format!(
            "run jobctl as root, or delegate a cgroup subtree to this user (chown it) and point \
             --parent or {} at it",
            jobobject::os::linux::CGROUP_PARENT_ENV
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        "run jobctl as an administrator".to_owned()
    }
}

/// The command line of process `pid`, or `None` when it is gone or not readable.
pub fn command_line(pid: u32) -> Option<Vec<String>> {
    #[cfg(target_os = "linux")]
    {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if raw.is_empty() {
            // A kernel thread or a zombie: its name, in brackets as ps shows it.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            return Some(vec![format!("[{}]", comm.trim_end())]);
        }
        let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
        Some(
            raw.split(|b| *b == 0)
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect(),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

#[cfg(not(target_os = "linux"))]
fn unsupported(what: &str) -> CliError {
    CliError::failure(format!(
        "{what} is not supported on this platform by jobctl yet"
    ))
}
