//! Processes the tests start: reaped children; on Linux pidfds and signals.

#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// A child that is killed and waited for when dropped, unless it was waited for already.
pub struct Reap {
    child: Option<Child>,
    pub pid: u32,
}

impl Reap {
    pub fn new(child: Child) -> Self {
        let pid = child.id();
        Reap {
            child: Some(child),
            pid,
        }
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already waited for")
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child().wait().expect("wait");
        self.child = None;
        status
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// Whether the child is still running (not yet exited).
    pub fn running(&mut self) -> bool {
        self.child().try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Whether process `pid` is a keeper (see `jobobject::os::linux::keeper_pid`).
#[cfg(target_os = "linux")]
pub fn is_keeper(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "jobobject-keep")
}

/// Sends SIGKILL to a process.
/// Waits until each of `pids` sleeps (state S) before a v1 freeze: a process still loading
/// its program can be in an uninterruptible wait (the guests read programs over 9p), and the
/// v1 freezer waits for it, longer than `freeze` does.
#[cfg(target_os = "linux")]
pub fn wait_asleep(pids: &[u32]) {
    super::wait_for("the processes to sleep", super::TIMEOUT, || {
        pids.iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('S'))
            })
        })
    });
}

#[cfg(target_os = "linux")]
pub fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}

/// Sends SIGSTOP to a process.
#[cfg(target_os = "linux")]
pub fn sigstop(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("stop");
}

/// A pidfd of a running process (child or not), to learn race-free when it has exited.
#[cfg(target_os = "linux")]
pub fn pidfd(pid: u32) -> OwnedFd {
    try_pidfd(pid).unwrap_or_else(|e| panic!("pidfd_open {pid}: {e}"))
}

/// A pidfd of process `pid`, or why there is none (`ESRCH`: it has exited and been reaped).
#[cfg(target_os = "linux")]
pub fn try_pidfd(pid: u32) -> rustix::io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid as i32).ok_or(rustix::io::Errno::INVAL)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
}

/// Whether the process of `pidfd` has exited, waiting up to `timeout` for it.
#[cfg(target_os = "linux")]
pub fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) if fds[0].revents().contains(PollFlags::IN) => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Ok(_) => return false,
            Err(err) => panic!("poll pidfd: {err}"),
        }
    }
}

/// Whether the process `pid` has exited already (its pidfd is readable).
#[cfg(target_os = "linux")]
pub fn has_exited(pidfd: &OwnedFd) -> bool {
    exited_within(pidfd, Duration::ZERO)
}

/// The signals a process ignores (`SigIgn` of `/proc/PID/status`).
#[cfg(target_os = "linux")]
pub fn ignored_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn");
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// The session id of a process (field 6 of `/proc/PID/stat`).
#[cfg(target_os = "linux")]
pub fn session_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name in parentheses may contain spaces: count from its end.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(3).unwrap().parse().unwrap()
}

/// A process (a child or not) watched until it exits, on every platform: a pidfd on Linux,
/// a handle with `SYNCHRONIZE` on Windows.
pub struct Watched {
    #[cfg(target_os = "linux")]
    fd: Option<OwnedFd>,
    #[cfg(windows)]
    handle: windows_sys::Win32::Foundation::HANDLE,
}

impl Watched {
    /// Watches process `pid`; one gone already is seen as exited.
    pub fn new(pid: u32) -> Self {
        #[cfg(target_os = "linux")]
        {
            let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
            let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty());
            Watched { fd: fd.ok() }
        }
        #[cfg(windows)]
        {
            use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_SYNCHRONIZE};
            // SAFETY: a plain call; a null handle means the process is gone.
            let handle = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
            Watched { handle }
        }
    }

    /// Whether the process has exited, waiting up to `timeout`.
    pub fn exited_within(&self, timeout: Duration) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.as_ref().is_none_or(|fd| exited_within(fd, timeout));
        #[cfg(windows)]
        {
            use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
            use windows_sys::Win32::System::Threading::WaitForSingleObject;
            if self.handle.is_null() {
                return true;
            }
            let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
            // SAFETY: a handle this value owns.
            unsafe { WaitForSingleObject(self.handle, ms) == WAIT_OBJECT_0 }
        }
    }
}

#[cfg(windows)]
impl Drop for Watched {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: a handle this value owns, closed once.
            unsafe { windows_sys::Win32::Foundation::CloseHandle(self.handle) };
        }
    }
}
