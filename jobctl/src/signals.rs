//! Signals that `jobctl run` passes on to its command.
//!
//! Every signal that would end jobctl by default and that a process can block is forwarded,
//! so that no signal can end jobctl while its command runs and leave the job behind:
//! SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGUSR1, SIGSEGV,
//! SIGUSR2, SIGALRM, SIGTERM, SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO
//! (SIGPOLL), SIGPWR, SIGSYS, and the real-time signals SIGRTMIN to SIGRTMAX (as glibc numbers
//! them: it keeps the two below for itself).
//!
//! Left alone:
//! - SIGKILL and SIGSTOP, which cannot be blocked;
//! - SIGCHLD, SIGCONT, SIGWINCH and SIGURG, which do not end a process;
//! - SIGTSTP, SIGTTIN and SIGTTOU, which stop jobctl (and from the terminal the command too)
//!   until SIGCONT;
//! - SIGPIPE, which Rust ignores from the start: a write to a closed pipe fails with EPIPE
//!   instead, so it cannot end jobctl (the command gets the default action back at exec).
//!
//! Blocking the fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) only catches
//! those sent with `kill`: one raised by a real fault of jobctl is forced on it by the kernel,
//! blocked or not, and still ends it (with a core dump); `abort()` unblocks SIGABRT first.
//!
//! On Unix they are blocked in every thread (call [`block`] before any thread starts, the
//! library's event thread included) and one thread takes them with `sigwaitinfo`, which also
//! tells who sent each. Only those from another process are forwarded: one the kernel
//! generated came from the terminal (Ctrl-C, Ctrl-\, hangup), which has sent it to the
//! command too since it shares jobctl's process group, or from jobctl's own timers and
//! resource limits, as does one jobctl sent itself (SIGXFSZ for a write beyond its file size
//! limit): those are jobctl's, not the command's. A real-time signal is forwarded with `kill`,
//! so a value sent with `sigqueue` does not follow it. The command must not inherit the mask
//! (std leaves it as it is across fork and exec): [`Blocked::restore_in_child`] gives it the
//! mask jobctl started with.
//!
//! Elsewhere (Windows) nothing is forwarded: the console delivers Ctrl-C to every process
//! attached to it, the command included.

/// Who sent a signal jobctl received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Without Unix signals only `Process` is ever named (and nothing is received).
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Origin {
    /// The kernel: the terminal, for the foreground process group that the command is in too,
    /// or jobctl's own timers and limits.
    Kernel,
    /// jobctl itself.
    Jobctl,
    /// Another process.
    Process,
}

/// A signal jobctl received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signal: i32,
    pub origin: Origin,
}

impl Received {
    /// Whether the command should get it too: only what another process sent jobctl.
    pub fn is_for_the_command(&self) -> bool {
        self.origin == Origin::Process
    }
}

#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix {
    use super::{Origin, Received};
    use std::io;

    /// SIGKILL: the kill of the whole job.
    pub const KILL: i32 = libc::SIGKILL;
    /// What `run --timeout` sends first, without `--signal`.
    pub const STOP: i32 = libc::SIGTERM;
    /// Sent after the timeout's signal, so that a stopped process gets it too.
    pub const CONTINUE: i32 = libc::SIGCONT;

    /// The standard signals `run` forwards (the real-time ones are added at run time).
    const FORWARDED: &[i32] = &[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGUSR1,
        libc::SIGSEGV,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::SIGSTKFLT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::SIGPWR,
        libc::SIGSYS,
    ];

    /// The real-time signals, SIGRTMIN to SIGRTMAX as the C library has them.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn real_time() -> std::ops::RangeInclusive<i32> {
        libc::SIGRTMIN()..=libc::SIGRTMAX()
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn real_time() -> std::ops::RangeInclusive<i32> {
        // None known here: an empty range.
        1..=0
    }

    /// Every signal `run` forwards.
    pub fn forwarded() -> impl Iterator<Item = i32> {
        FORWARDED.iter().copied().chain(real_time())
    }

    /// The forwarded signals as a set.
    fn forwarded_set() -> libc::sigset_t {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; sigaddset
        // only writes into it (and refuses a number that is not a signal).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in forwarded() {
                libc::sigaddset(&mut set, signal);
            }
            set
        }
    }

    /// The forwarded signals, blocked in this thread and every thread it starts from now on
    /// (the command starts with none blocked: the library's spawn unblocks every signal).
    pub struct Blocked {
        set: libc::sigset_t,
    }

    /// Blocks the forwarded signals in the calling thread; threads started later inherit that.
    pub fn block() -> Blocked {
        let set = forwarded_set();
        // SAFETY: `set` is a valid set; the call writes this thread's mask.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        Blocked { set }
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
                            origin: origin(&info),
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

    /// Who sent the signal `info` describes.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn origin(info: &libc::siginfo_t) -> Origin {
        if info.si_code == libc::SI_KERNEL {
            return Origin::Kernel;
        }
        // si_code <= 0: sent by a process (kill, tgkill, sigqueue), which si_pid names.
        // SAFETY: for those codes the kernel fills in the si_pid field that this reads.
        if info.si_code <= 0 && unsafe { info.si_pid() } == std::process::id() as libc::pid_t {
            return Origin::Jobctl;
        }
        Origin::Process
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn origin(_info: &libc::siginfo_t) -> Origin {
        Origin::Process
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

    /// The signal's name, `SIGTERM`, `SIGRTMIN+3`, or its number.
    pub fn name(signal: i32) -> String {
        let known = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGTRAP, "SIGTRAP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGCONT, "SIGCONT"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGTSTP, "SIGTSTP"),
            (libc::SIGTTIN, "SIGTTIN"),
            (libc::SIGTTOU, "SIGTTOU"),
            (libc::SIGURG, "SIGURG"),
            (libc::SIGXCPU, "SIGXCPU"),
            (libc::SIGXFSZ, "SIGXFSZ"),
            (libc::SIGVTALRM, "SIGVTALRM"),
            (libc::SIGPROF, "SIGPROF"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGIO, "SIGIO"),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            (libc::SIGPWR, "SIGPWR"),
            (libc::SIGSYS, "SIGSYS"),
        ];
        if let Some((_, name)) = known.iter().find(|(n, _)| *n == signal) {
            return (*name).to_owned();
        }
        let rt = real_time();
        if rt.contains(&signal) {
            // As `kill -l` names them: from the nearer end of the range.
            let (low, high) = (signal - rt.start(), rt.end() - signal);
            return match (low, high) {
                (0, _) => "SIGRTMIN".to_owned(),
                (_, 0) => "SIGRTMAX".to_owned(),
                (low, high) if low <= high => format!("SIGRTMIN+{low}"),
                (_, high) => format!("SIGRTMAX-{high}"),
            };
        }
        format!("signal {signal}")
    }

    /// The signal `text` names: `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+3` (as [`name`] prints
    /// them, with or without `SIG`).
    pub fn parse(text: &str) -> Result<i32, String> {
        let highest = *real_time().end().max(&31);
        if let Ok(number) = text.parse::<i32>() {
            if (1..=highest).contains(&number) {
                return Ok(number);
            }
            return Err(format!("{number} is not a signal (1-{highest})"));
        }
        let upper = text.to_ascii_uppercase();
        let wanted = match upper.strip_prefix("SIG") {
            Some(_) => upper.clone(),
            None => format!("SIG{upper}"),
        };
        (1..=highest)
            .find(|&n| name(n) == wanted)
            .ok_or_else(|| format!("{text:?} is not a signal name (TERM, INT, HUP, KILL, USR1...)"))
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        use super::*;

        #[test]
        fn signals_parse_by_name_and_number() {
            assert_eq!(parse("TERM"), Ok(libc::SIGTERM));
            assert_eq!(parse("sigint"), Ok(libc::SIGINT));
            assert_eq!(parse("9"), Ok(libc::SIGKILL));
            assert_eq!(parse("RTMIN+2"), Ok(libc::SIGRTMIN() + 2));
            assert!(parse("0").is_err());
            assert!(parse("TERMINATE").is_err());
        }

        #[test]
        fn every_signal_that_ends_a_process_by_default_is_forwarded() {
            let forwarded: Vec<i32> = forwarded().collect();
            for signal in [
                libc::SIGHUP,
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGALRM,
                libc::SIGSEGV,
                libc::SIGSYS,
                libc::SIGRTMIN(),
                libc::SIGRTMAX(),
            ] {
                assert!(forwarded.contains(&signal), "{}", name(signal));
            }
            for signal in [
                libc::SIGKILL,
                libc::SIGSTOP,
                libc::SIGCHLD,
                libc::SIGCONT,
                libc::SIGWINCH,
                libc::SIGURG,
                libc::SIGTSTP,
                libc::SIGTTIN,
                libc::SIGTTOU,
                libc::SIGPIPE,
            ] {
                assert!(!forwarded.contains(&signal), "{}", name(signal));
            }
            // Each once, and every number from 1 to SIGRTMAX is decided: forwarded or left.
            let mut sorted = forwarded.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), forwarded.len());
            let left = 10;
            let reserved = libc::SIGRTMIN() - 32; // glibc's own, 32 and up
            assert_eq!(
                forwarded.len() as i32 + left + reserved,
                libc::SIGRTMAX(),
                "{forwarded:?}"
            );
        }

        #[test]
        fn names() {
            assert_eq!(name(libc::SIGTERM), "SIGTERM");
            assert_eq!(name(libc::SIGPWR), "SIGPWR");
            assert_eq!(name(libc::SIGRTMIN()), "SIGRTMIN");
            assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
            assert_eq!(name(libc::SIGRTMAX() - 2), "SIGRTMAX-2");
            assert_eq!(name(libc::SIGRTMAX()), "SIGRTMAX");
            assert_eq!(name(200), "signal 200");
        }
    }
}

#[cfg(not(unix))]
pub use other::*;

#[cfg(not(unix))]
mod other {
    use super::Received;
    use std::io;

    /// What `--signal KILL` parses to: the kill of the whole job.
    pub const KILL: i32 = 9;
    /// What `run --timeout` does without `--signal`: the kill, as there is nothing else.
    pub const STOP: i32 = KILL;
    /// Never sent here (only the kill is).
    pub const CONTINUE: i32 = 18;

    /// Nothing is blocked: the platform has no such signals.
    pub struct Blocked;

    pub fn block() -> Blocked {
        Blocked
    }

    impl Blocked {
        pub fn start(self, _handler: impl FnMut(Received) + Send + 'static) {}
    }

    pub fn send(_pid: u32, _signal: i32) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn name(signal: i32) -> String {
        match signal {
            9 => "SIGKILL".to_owned(),
            _ => format!("signal {signal}"),
        }
    }

    /// Only SIGKILL (9) means something here: the kill of the whole job.
    pub fn parse(text: &str) -> Result<i32, String> {
        match text.to_ascii_uppercase().as_str() {
            "9" | "KILL" | "SIGKILL" => Ok(9),
            _ => Err(format!(
                "{text:?}: only KILL can be sent here (Windows has no signals for a whole job)"
            )),
        }
    }
}
