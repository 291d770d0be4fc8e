//! Waiting for conditions, for processes in a job, and for its notifications.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use jobobject::{Error, JobObject, Notification};

/// Polls `condition` with a growing delay until it holds; panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Runs `true` in the job and waits for it: a process that comes and goes.
#[cfg(target_os = "linux")]
pub fn run_true(job: &JobObject) {
    let status = job
        .spawn(&mut std::process::Command::new("true"))
        .expect("spawn true")
        .wait()
        .expect("wait true");
    assert!(status.success(), "true: {status}");
}

/// Waits until the job holds exactly `count` processes and returns them.
pub fn wait_pid_count(job: &JobObject, count: usize, timeout: Duration) -> Vec<u32> {
    let mut pids = Vec::new();
    wait_for(&format!("{count} processes in the job"), timeout, || {
        pids = job.pids().expect("pids");
        pids.len() == count
    });
    pids
}

/// Waits until the job holds no process.
pub fn wait_empty(job: &JobObject, timeout: Duration) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        let pids = job.pids().expect("pids");
        if pids.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "the job still holds {} processes after {timeout:?}: {pids:?}",
            pids.len()
        );
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

// Notifications

/// A thread that reads every notification of a job, with the time it was read, until the
/// handle is closed. Dropping it closes the job's handle (which ends the thread).
pub struct Watcher {
    job: Arc<JobObject>,
    received: mpsc::Receiver<(Notification, Instant)>,
    thread: Option<thread::JoinHandle<Error>>,
}

impl Watcher {
    pub fn start(job: &Arc<JobObject>) -> Self {
        let (send, received) = mpsc::channel();
        let polled = Arc::clone(job);
        let thread = thread::Builder::new()
            .name("notification-watcher".into())
            .spawn(move || {
                loop {
                    match polled.poll_notification() {
                        Ok(message) => {
                            if send.send((message, Instant::now())).is_err() {
                                polled.close().ok();
                            }
                        }
                        Err(err) => return err,
                    }
                }
            })
            .expect("spawn watcher");
        Watcher {
            job: Arc::clone(job),
            received,
            thread: Some(thread),
        }
    }

    /// The next notification, with the time it was read; panics after `timeout`.
    pub fn next(&self, timeout: Duration) -> (Notification, Instant) {
        match self.received.recv_timeout(timeout) {
            Ok(message) => message,
            Err(err) => {
                // Release the watcher thread before failing, so the job is removed.
                self.job.close().ok();
                panic!("no notification within {timeout:?} ({err})");
            }
        }
    }

    /// The notifications up to the next `AllProcessesExited` (included); panics if it does not
    /// come within `timeout`. (Windows also reports each process's start and exit.)
    pub fn until_all_exited(&self, timeout: Duration) -> Vec<Notification> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(message) = self.try_next(left) else {
                self.job.close().ok();
                panic!("no AllProcessesExited within {timeout:?}; got {seen:?}");
            };
            seen.push(message);
            if message == Notification::AllProcessesExited {
                return seen;
            }
        }
    }

    /// The next notification, or `None` after `timeout`.
    pub fn try_next(&self, timeout: Duration) -> Option<Notification> {
        self.received.recv_timeout(timeout).ok().map(|(n, _)| n)
    }

    /// Panics if a notification arrives within `window`.
    pub fn assert_quiet(&self, window: Duration, context: &str) {
        if let Ok((message, _)) = self.received.recv_timeout(window) {
            self.job.close().ok();
            panic!("unexpected notification {message:?} {context}");
        }
    }

    /// Closes the job's handle, waits for the thread, and returns what it read meanwhile and
    /// the error that ended it.
    pub fn finish(mut self) -> (Vec<Notification>, Error) {
        self.job.close().ok();
        let error = self.thread.take().unwrap().join().expect("watcher thread");
        let rest = self.received.try_iter().map(|(n, _)| n).collect();
        (rest, error)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.job.close().ok();
            thread.join().ok();
        }
    }
}

/// `poll_notification` with a timeout: on timeout the handle is closed (releasing the
/// blocked thread) and the test fails.
pub fn poll_within(job: &Arc<JobObject>, timeout: Duration) -> Result<Notification, Error> {
    let (send, receive) = mpsc::channel();
    let polled = Arc::clone(job);
    let thread = thread::spawn(move || {
        send.send(polled.poll_notification()).ok();
    });
    match receive.recv_timeout(timeout) {
        Ok(result) => {
            thread.join().unwrap();
            result
        }
        Err(_) => {
            job.close().ok();
            thread.join().ok();
            panic!("poll_notification did not return within {timeout:?}");
        }
    }
}
