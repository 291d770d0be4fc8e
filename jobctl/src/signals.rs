//! Signals that `jobctl run` passes on to its command: SIGINT, SIGTERM, SIGHUP and SIGQUIT.
//!
//! On Unix they are blocked in every thread (call [`block`] before any thread starts, the
//! library's event thread included) and one thread takes them with `sigwaitinfo`, which also
//! tells who sent each: a signal the terminal generated (Ctrl-C, Ctrl-\, hangup) has already
//! reached the command, which shares jobctl's process group, so it is not sent twice.
//! The command must not inherit that mask (std leaves it as it is across fork and exec):
//! [`unblock_in_child`] restores it between fork and exec.
//!
//! Elsewhere (Windows) nothing is forwarded: the console delivers Ctrl-C to every process
//! attached to it, the command included.

/// A signal jobctl received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signal: i32,
    /// The kernel generated it for the terminal's foreground process group, which the command
    /// is in too: it has it already.
    pub from_terminal: bool,
}

#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix {
    use super::Received;
    use std::io;

    /// SIGINT: a second one kills the whole job.
    pub const INTERRUPT: i32 = libc::SIGINT;
    /// The signals `run` forwards.
    const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

    /// The forwarded signals, blocked in this thread and every thread it starts from now on.
    pub struct Blocked {
        set: libc::sigset_t,
    }

    /// Blocks the forwarded signals in the calling thread; threads started later inherit that.
    pub fn block() -> Blocked {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the calls
        // only read and write that set and this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in FORWARDED {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Blocked { set }
        }
    }

    impl Blocked {
        /// Starts the thread that takes the blocked signals and hands each to `handler`.
        pub fn start(self, mut handler: impl FnMut(Received) + Send + 'static) {
            let set = self.set;
            let spawned = std::thread::Builder::new()
                .name("jobctl-signals".into())
                .spawn(move || {
                    loop {
                        // SAFETY: `info` is written by sigwaitinfo; `set` is a valid set.
                        let (signal, info) = unsafe {
                            let mut info: libc::siginfo_t = std::mem::zeroed();
                            (libc::sigwaitinfo(&set, &mut info), info)
                        };
                        if signal < 0 {
                            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                                continue;
                            }
                            return;
                        }
                        handler(Received {
                            signal,
                            from_terminal: from_kernel(&info),
                        });
                    }
                });
            if let Err(err) = spawned {
                crate::output::note(&format!(
                    "cannot start the signal thread ({err}): signals are not forwarded"
                ));
            }
        }
    }

    /// Whether the kernel sent the signal (as the terminal driver does), not a process.
    #[cfg(target_os = "linux")]
    fn from_kernel(info: &libc::siginfo_t) -> bool {
        info.si_code == libc::SI_KERNEL
    }

    #[cfg(not(target_os = "linux"))]
    fn from_kernel(_info: &libc::siginfo_t) -> bool {
        false
    }

    /// Makes the child of `command` start with the forwarded signals unblocked again.
    pub fn unblock_in_child(command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook runs between fork and exec, where only async-signal-safe calls are
        // allowed: sigemptyset, sigaddset and pthread_sigmask are, and nothing is allocated.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for signal in FORWARDED {
                    libc::sigaddset(&mut set, signal);
                }
                match libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) {
                    0 => Ok(()),
                    code => Err(io::Error::from_raw_os_error(code)),
                }
            });
        }
    }

    /// Sends `signal` to process `pid`.
    pub fn send(pid: u32, signal: i32) -> io::Result<()> {
        let pid =
            libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: kill has no memory effects.
        if unsafe { libc::kill(pid, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The signal's name, `SIGTERM`, or its number.
    pub fn name(signal: i32) -> String {
        let known = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGXCPU, "SIGXCPU"),
        ];
        known
            .iter()
            .find(|(n, _)| *n == signal)
            .map(|(_, name)| (*name).to_owned())
            .unwrap_or_else(|| format!("signal {signal}"))
    }
}

#[cfg(not(unix))]
pub use other::*;

#[cfg(not(unix))]
mod other {
    use super::Received;
    use std::io;

    /// No signal has this number here.
    pub const INTERRUPT: i32 = 2;

    /// Nothing is blocked: the platform has no such signals.
    pub struct Blocked;

    pub fn block() -> Blocked {
        Blocked
    }

    impl Blocked {
        pub fn start(self, _handler: impl FnMut(Received) + Send + 'static) {}
    }

    pub fn unblock_in_child(_command: &mut std::process::Command) {}

    pub fn send(_pid: u32, _signal: i32) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn name(signal: i32) -> String {
        format!("signal {signal}")
    }
}
