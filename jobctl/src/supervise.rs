//! The loop of `jobctl run` while the command runs: it waits for the command's exit (and
//! with `--wait-all` for the job to empty), passes signals on, and enforces the timeout.

use std::process::ExitStatus;

use jobobject::JobObject;
use jobobject::process::Child;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use crate::output;
use crate::platform;
use crate::run::RunArgs;
use crate::signals::{self, Received};

/// How often the loop looks at the job when nothing else happens.
const TICK: Duration = Duration::from_millis(100);

/// What wakes the loop.
#[derive(Debug)]
pub enum Event {
    /// The command has exited (it is not reaped yet, so its pid is still its own). Not used
    /// where the loop polls for the exit instead (not Unix).
    #[cfg_attr(not(unix), allow(dead_code))]
    Exited,
    /// jobctl received a signal.
    Signal(Received),
    /// The job has no process left.
    AllExited,
}

/// How the run went.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The command's status (`None` if it could not be read).
    pub status: Option<ExitStatus>,
    pub wall: Duration,
    pub timed_out: bool,
    /// The signal sent to the job at the timeout (not for a kill at once).
    pub stop_signal: Option<i32>,
    /// jobctl killed the whole job (at the timeout, or when the job outlived the grace
    /// period after the signal).
    pub killed_job: bool,
    /// The processes jobctl killed, as counted just before each kill.
    pub kill_estimate: usize,
    /// The most processes seen in the job at once.
    pub peak_processes: usize,
}

/// Runs the loop until the command has exited, and with `--wait-all` until the job is empty.
pub fn supervise(
    job: &JobObject,
    mut child: Child,
    events: Receiver<Event>,
    args: &RunArgs,
    start: Instant,
) -> Outcome {
    let deadline = args.timeout.and_then(|t| deadline(start, t));
    let mut outcome = Outcome::default();
    let mut exited = false;
    // After the timeout's signal: when what is left of the job is killed.
    let mut kill_at: Option<Instant> = None;
    let kill = |outcome: &mut Outcome| {
        let count = job.pids().map(|p| p.len()).unwrap_or(0);
        outcome.kill_estimate = outcome.kill_estimate.saturating_add(count);
        outcome.killed_job = true;
        if let Err(err) = job.terminate(1) {
            output::note(&format!("cannot kill the job: {err}"));
        }
    };
    loop {
        let pids = job.pids().unwrap_or_default();
        outcome.peak_processes = outcome.peak_processes.max(pids.len());
        // Once signalled, the whole job has the grace period, not the command alone.
        let whole_job = args.wait_all || kill_at.is_some();
        if exited && (!whole_job || pids.is_empty()) {
            break;
        }
        let now = Instant::now();
        let mut wait = TICK;
        if let Some(at) = kill_at {
            if now >= at {
                kill_at = None;
                kill(&mut outcome);
                continue;
            }
            wait = wait.min(at - now);
        }
        if let (Some(deadline), false) = (deadline, outcome.timed_out) {
            if now >= deadline {
                outcome.timed_out = true;
                let signal = args.signal.unwrap_or(signals::STOP);
                if signal != signals::KILL && ask_to_end(job, signal) {
                    outcome.stop_signal = Some(signal);
                    let grace = args.kill_after.unwrap_or(crate::run::KILL_AFTER);
                    // Beyond what an instant holds: at once.
                    kill_at = Some(now.checked_add(grace).unwrap_or(now));
                } else {
                    kill(&mut outcome);
                }
                continue;
            }
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        match events.recv_timeout(wait) {
            Ok(Event::Exited) => {
                exited = true;
                outcome.status = child.wait().ok();
                outcome.wall = start.elapsed();
            }
            // Passed on as it came, never escalated: a Ctrl-C from the terminal reached the
            // command too (it shares jobctl's process group), and one sent to jobctl alone
            // is forwarded; what the command does with it is its own affair.
            Ok(Event::Signal(received)) => {
                if received.is_for_the_command() {
                    forward(job, &child, exited, received.signal);
                }
            }
            Ok(Event::AllExited) | Err(_) => {}
        }
        if !exited {
            poll_exit(&mut child, &mut exited, &mut outcome, start);
        }
    }
    if args.wait_all {
        outcome.wall = start.elapsed();
    }
    outcome
}

/// Sends the timeout's `signal` to every process of the job (then SIGCONT, so that a stopped
/// one gets it too); whether it went out (else the job is killed at once).
fn ask_to_end(job: &JobObject, signal: i32) -> bool {
    let sent = platform::signal(job, signal)
        .and_then(|()| platform::signal(job, signals::CONTINUE))
        .map_err(|err| output::note(&format!("cannot signal the job, killing it: {err}")));
    sent.is_ok()
}

/// When a run that began at `start` times out. `parse_duration` keeps a timeout within what
/// `Instant` can add; should a platform still overflow, the deadline lies beyond any run:
/// none, rather than a panic with the command running.
fn deadline(start: Instant, timeout: Duration) -> Option<Instant> {
    start.checked_add(timeout)
}

/// Passes a signal to the command, or once it has exited to every process left in the job.
fn forward(job: &JobObject, child: &Child, exited: bool, signal: i32) {
    let targets = if exited {
        job.pids().unwrap_or_default()
    } else {
        vec![child.id()]
    };
    for pid in targets {
        // A process that is gone meanwhile needs nothing.
        signals::send(pid, signal).ok();
    }
}

/// Where no thread reports the exit (not Unix), the loop checks at each turn.
#[cfg(not(unix))]
fn poll_exit(child: &mut Child, exited: &mut bool, outcome: &mut Outcome, start: Instant) {
    if let Ok(Some(status)) = child.try_wait() {
        *exited = true;
        outcome.status = Some(status);
        outcome.wall = start.elapsed();
    }
}

#[cfg(unix)]
fn poll_exit(_child: &mut Child, _exited: &mut bool, _outcome: &mut Outcome, _start: Instant) {}

/// Reports the command's exit without reaping it (`waitid` with `WNOWAIT`), so that a signal
/// forwarded meanwhile cannot reach a recycled pid: the loop reaps it.
#[cfg(unix)]
pub fn watch_exit(child: &Child, tx: Sender<Event>) {
    let pid = child.id();
    let spawned = std::thread::Builder::new()
        .name("jobctl-wait".into())
        .spawn(move || {
            loop {
                // SAFETY: `info` is plain data that waitid fills in.
                let result = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                let interrupted =
                    std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
                if result == 0 || !interrupted {
                    break;
                }
            }
            tx.send(Event::Exited).ok();
        });
    if let Err(err) = spawned {
        output::note(&format!("cannot start the wait thread: {err}"));
    }
}

#[cfg(not(unix))]
pub fn watch_exit(_child: &Child, _tx: Sender<Event>) {}

/// The command's exit code, or the signal that ended it.
pub fn decode(status: Option<ExitStatus>) -> (Option<i32>, Option<i32>) {
    let Some(status) = status else {
        return (None, None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return (None, Some(signal));
        }
    }
    (status.code(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_too_far_is_none_not_a_panic() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::MAX), None);
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        assert!(deadline(now, crate::units::MAX_DURATION).is_some());
    }
}
