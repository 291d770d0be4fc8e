//! Helpers for the end-to-end tests of the `jobctl` binary.
//!
//! Rules (the machine's supervisor depends on them):
//! - every jobctl runs with `JOBOBJECT_CGROUP_PARENT=self`, so its jobs live below the test
//!   process's own cgroups and no process leaves them except into descendants;
//! - every job is named `jobobject-test-jobctl-<what>-<pid>` and has a [`Guard`] that runs
//!   `jobctl delete --force` when the test ends, also when it fails;
//! - a test that lacks root or cgroups prints `SKIP ...` and returns, except under `CI=true`,
//!   where that is a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a jobctl that should end may take (generous: slow machines).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The jobctl binary, with jobs below this process's own cgroups, and every signal's default
/// action.
pub fn jobctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    command.env("JOBOBJECT_CGROUP_PARENT", "self");
    command.stdin(Stdio::null());
    default_signal_actions(&mut command);
    command
}

/// Makes `command` start with no signal ignored. Tests run in the background or under nohup
/// inherit SIGINT, SIGQUIT or SIGHUP ignored, and so would jobctl and its command (a shell
/// cannot even trap a signal ignored when it started): the signal tests would then wait for
/// a command that never dies of what they send.
fn default_signal_actions(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let last = libc::SIGRTMAX();
    // SAFETY: the hook runs between fork and exec, where only async-signal-safe calls are
    // allowed: signal() is (it is sigaction); it fails harmlessly on the numbers it refuses.
    unsafe {
        command.pre_exec(move || {
            for signal in 1..=last {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            Ok(())
        });
    }
}

/// The name of this test process's job `what`.
pub fn name(what: &str) -> String {
    format!("jobobject-test-jobctl-{what}-{}", std::process::id())
}

/// Deletes the job (killing what is in it) when dropped.
pub struct Guard(pub String);

impl Guard {
    pub fn new(what: &str) -> Self {
        Guard(name(what))
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The job is usually gone already: "no job named" is fine.
        jobctl()
            .args(["delete", "--force", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok();
    }
}

/// Whether this host lets the tests make cgroups: root, and a cgroup layout. Otherwise
/// prints `SKIP` and returns false, or panics under `CI=true`.
pub fn require_cgroups(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing = if !root {
        Some("not running as root (jobs need root or a delegated cgroup subtree)".to_owned())
    } else {
        jobobject::os::linux::CgroupLayout::detect()
            .err()
            .map(|e| format!("no usable cgroups: {e}"))
    };
    match missing {
        None => true,
        Some(reason) => skip(test, &reason),
    }
}

/// Prints `SKIP test: reason` and returns false; under `CI=true` panics instead.
pub fn skip(test: &str, reason: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {reason} (CI=true: a missing capability is a failure)")
    }
    println!("SKIP {test}: {reason}");
    false
}

/// What a finished jobctl printed, and its status.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("jobctl ended by a signal: {self:?}"))
    }

    /// The last line of stderr parsed as JSON (the `--json` summary of `run`).
    pub fn summary(&self) -> serde_json::Value {
        let line = self.stderr.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the last stderr line is not JSON ({e}): {self:?}"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs jobctl with `args` to its end (killing it after [`TIMEOUT`]).
pub fn run(args: &[&str]) -> Outcome {
    let mut command = jobctl();
    command.args(args);
    finish(spawn(&mut command), Instant::now())
}

/// Starts jobctl with its output piped.
pub fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jobctl")
}

/// Waits for a started jobctl, killing it after [`TIMEOUT`], and collects its output.
pub fn finish(mut child: Child, start: Instant) -> Outcome {
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for jobctl") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!("jobctl did not end within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed,
    }
}

fn reader(stream: Option<Box<dyn Read + Send>>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stream) = stream {
            stream.read_to_string(&mut text).ok();
        }
        text
    })
}

/// Reads stdout of a started jobctl until a line equal to `wanted`; returns the lines read.
pub fn read_until(stdout: &mut BufReader<ChildStdout>, wanted: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read jobctl's stdout");
        assert!(n > 0, "stdout ended before {wanted:?}; read {lines:?}");
        let line = line.trim_end().to_owned();
        let done = line == wanted;
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// Whether process `pid` is gone (or a zombie no one has reaped yet).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits until `condition` holds, at most [`TIMEOUT`]; whether it did.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory effects.
    let result = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal})");
}

/// A jobctl on a pseudo-terminal of its own, as the foreground job of a new session: the
/// test is the terminal (it types keys, reads the screen).
pub struct Terminal {
    pub child: Child,
    master: std::fs::File,
    /// Everything read from the terminal so far.
    pub seen: String,
    start: Instant,
}

impl Terminal {
    /// Starts `command` on a new pseudo-terminal; `None` (after `skip`) without one.
    pub fn spawn(command: &mut Command) -> Option<Terminal> {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: out-pointers to two ints; the name, termios and size may be null.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if opened != 0 {
            let err = std::io::Error::last_os_error();
            skip("terminal", &format!("no pseudo-terminal: {err}"));
            return None;
        }
        // SAFETY: openpty returned two new descriptors, ours alone.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave.try_clone().unwrap());
        // SAFETY: between fork and exec: setsid and ioctl are async-signal-safe system calls.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        Some(Terminal {
            child,
            master,
            seen: String::new(),
            start: Instant::now(),
        })
    }

    /// Types `keys`.
    pub fn type_keys(&mut self, keys: &[u8]) {
        use std::io::Write;
        self.master.write_all(keys).unwrap();
    }

    /// Reads the terminal until it has shown `wanted`, within [`TIMEOUT`].
    pub fn wait_for(&mut self, wanted: &str) {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(wanted) {
            let left = TIMEOUT.saturating_sub(self.start.elapsed());
            let mut ready = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let polled = unsafe { libc::poll(&mut ready, 1, left.as_millis() as i32) };
            assert!(
                polled > 0,
                "no {wanted:?} within the timeout: {:?}",
                self.seen
            );
            let n = self.master.read(&mut buf).unwrap_or(0);
            assert!(
                n > 0,
                "the terminal closed before {wanted:?}: {:?}",
                self.seen
            );
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}
