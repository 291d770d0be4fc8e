//! A spawned child as the backend holds it: waited for with `waitpid` (it is our unreaped
//! child, so its pid cannot be reused before we reap it), signalled through its pidfd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::process::{Pid, Signal};

#[derive(Debug)]
pub(crate) struct Process {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// Set once reaped: the pid may belong to another process from then on.
    status: Option<ExitStatus>,
}

impl Process {
    pub(super) fn new(pid: libc::pid_t, pidfd: Option<OwnedFd>) -> Self {
        Process {
            pid,
            pidfd,
            status: None,
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, Signal::KILL)?,
            None => {
                let pid = Pid::from_raw(self.pid).ok_or(io::ErrorKind::InvalidInput)?;
                rustix::process::kill_process(pid, Signal::KILL)?;
            }
        }
        Ok(())
    }

    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        match self.status {
            Some(status) => Ok(status),
            None => self.reap(0).map(|status| status.unwrap_or_default()),
        }
    }

    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.status {
            Some(status) => Ok(Some(status)),
            None => self.reap(libc::WNOHANG),
        }
    }

    /// Waits for the child without blocking the thread: its pidfd turns readable when it
    /// exits. Without a pidfd (a kernel before 5.3), a blocking thread of tokio's waits for
    /// the exit without reaping it (`WNOWAIT`), so a dropped wait loses nothing.
    #[cfg(feature = "tokio")]
    pub(crate) async fn wait_async(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let pid = self.pid;
        let opened;
        let pidfd = match &self.pidfd {
            Some(fd) => Some(fd.as_fd()),
            None => {
                opened = Pid::from_raw(pid).and_then(|pid| {
                    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
                });
                opened.as_ref().map(AsFd::as_fd)
            }
        };
        let status = match pidfd {
            Some(pidfd) => exited(pid, pidfd).await?,
            None => exited_without_pidfd(pid).await?,
        };
        self.status = Some(status);
        Ok(status)
    }

    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        let status = reap(self.pid, flags)?;
        self.status = status;
        Ok(status)
    }
}

/// Reaps `pid` once its pidfd says it has exited.
#[cfg(feature = "tokio")]
async fn exited(pid: libc::pid_t, pidfd: BorrowedFd<'_>) -> io::Result<ExitStatus> {
    // SAFETY: the borrow keeps the pidfd open, and the same, for as long as the `AsyncFd`.
    let ready = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }?;
    loop {
        if let Some(status) = reap(pid, libc::WNOHANG)? {
            return Ok(status);
        }
        ready.readable().await?.clear_ready();
    }
}

/// Reaps `pid` once a blocking thread has seen it exit.
#[cfg(feature = "tokio")]
async fn exited_without_pidfd(pid: libc::pid_t) -> io::Result<ExitStatus> {
    let waited = tokio::task::spawn_blocking(move || {
        let pid = Pid::from_raw(pid).ok_or(io::ErrorKind::InvalidInput)?;
        loop {
            let id = rustix::process::WaitId::Pid(pid);
            let options =
                rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT;
            match rustix::process::waitid(id, options) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map(drop).map_err(io::Error::from),
            }
        }
    });
    waited.await.map_err(io::Error::other)??;
    reap(pid, libc::WNOHANG)?
        .ok_or_else(|| io::Error::other("the child exited but could not be reaped"))
}

/// `waitpid(pid, flags)`, retried on `EINTR`: the status, or `None` (`WNOHANG`, running).
pub(super) fn reap(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            0 => return Ok(None),
            _ => return Ok(Some(ExitStatus::from_raw(status))),
        }
    }
}
