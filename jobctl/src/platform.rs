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

/// For `run --keep`: the job and what it holds stay after jobctl exits. On Linux the job is
/// made persistent; a Windows Job Object goes with its last handle, but without kill-on-close
/// its processes live on.
pub fn keep_after_exit(job: &JobObject) -> CliResult<()> {
    #[cfg(target_os = "linux")]
    return set_persistent(job);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = job;
        Ok(())
    }
}

/// Sends `signal` to every process of the job (Linux); elsewhere only the kill exists.
pub fn signal(job: &JobObject, signal: i32) -> Result<(), jobobject::Error> {
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::JobObjectExt;
        job.signal(signal)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (job, signal);
        Err(jobobject::Error::Unsupported {
            what: "signals to a job (Windows has only the kill)".into(),
        })
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

/// Runs the command as `uid` and `gid` (`run --uid/--gid`): Linux, as root.
pub fn identity(
    command: &mut jobobject::process::Command,
    uid: Option<u32>,
    gid: Option<u32>,
) -> CliResult<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use jobobject::os::linux::CommandExt;
        if !rustix::process::geteuid().is_root() {
            return Err(CliError::failure(
                "--uid and --gid need root: jobctl runs as another user",
            ));
        }
        if let Some(uid) = uid {
            command.uid(uid);
        }
        if let Some(gid) = gid {
            command.gid(gid);
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = command;
        Err(unsupported("--uid and --gid"))
    }
}

/// Runs the command at niceness `nice` (`run --nice`). On Linux the child inherits jobctl's
/// own: jobctl takes it just before the spawn, and keeps it (its loop mostly sleeps). On
/// Windows a priority class for the command.
pub fn nice(command: &mut jobobject::process::Command, nice: Option<i32>) -> CliResult<()> {
    let Some(nice) = nice else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    {
        let _ = command;
        rustix::process::setpriority_process(None, nice).map_err(|err| {
            CliError::failure(format!(
                "cannot set the niceness to {nice}: {err}{}",
                if nice < 0 {
                    " (a negative niceness needs root)"
                } else {
                    ""
                }
            ))
        })
    }
    #[cfg(windows)]
    {
        use jobobject::os::windows::CommandExt;
        // The process creation flags of the priority classes (WinBase.h).
        const IDLE_PRIORITY_CLASS: u32 = 0x40;
        const BELOW_NORMAL_PRIORITY_CLASS: u32 = 0x4000;
        const ABOVE_NORMAL_PRIORITY_CLASS: u32 = 0x8000;
        const HIGH_PRIORITY_CLASS: u32 = 0x80;
        let class = match nice {
            10.. => IDLE_PRIORITY_CLASS,
            1..=9 => BELOW_NORMAL_PRIORITY_CLASS,
            0 => 0,
            -9..=-1 => ABOVE_NORMAL_PRIORITY_CLASS,
            _ => HIGH_PRIORITY_CLASS,
        };
        command.creation_flags(class);
        Ok(())
    }
}

/// Checks that `fd` is an open descriptor and marks it close-on-exec, so that the command
/// does not inherit it (`run --summary-fd`).
pub fn keep_from_children(fd: i32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        // SAFETY: fcntl on any number is safe: a closed one is EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above; it changes only the descriptor's own flag.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = fd;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "descriptors are a Unix thing: use --summary-file",
        ))
    }
}

/// Writes all of `bytes` to descriptor `fd`, which stays open.
pub fn write_to_fd(fd: i32, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: `keep_from_children` found `fd` open at the start, and jobctl opens and
        // closes no descriptor of that number meanwhile that it does not own: the File is never
        // dropped (ManuallyDrop), so the caller's descriptor stays open.
        let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        file.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        let _ = (fd, bytes);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The number of the host's CPUs, whatever jobctl's own affinity: what "% of all CPUs"
/// (`--cpu-rate`, `top`) counts.
pub fn host_cpus() -> u32 {
    #[cfg(target_os = "linux")]
    if let Some(count) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| jobobject::cpu_list::parse(list.trim()).ok())
        .map(u64::count_ones)
        .filter(|&n| n > 0)
    {
        return count;
    }
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
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
