//! Stopping a job gracefully: ask, wait for the emptying, then kill what is left.

use std::time::Duration;

use crate::{JobObject, Result};

/// What [`JobObject::stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped {
    /// The job was empty before the grace period ran out (or held no process to begin with).
    pub in_time: bool,
    /// The processes left at the end of the grace period, and killed (counted just before
    /// the kill).
    pub killed: usize,
}

impl JobObject {
    /// Stops the job gracefully: asks every process in it to end, waits up to `grace` for the
    /// job to be empty, then [`terminate`](Self::terminate)s what is left; what happened.
    ///
    /// On Linux the request is SIGTERM to every process of the job and of the jobs nested in
    /// it, then SIGCONT (so that a stopped process gets it too), and a
    /// [frozen](JobObject::freeze) job is thawed so that its processes see it; the wait is
    /// [`wait_empty`](Self::wait_empty)'s, driven by the emptying event, not by polling.
    /// [`os::linux::JobObjectExt::stop_with_signal`](crate::os::linux::JobObjectExt) sends
    /// another signal. Windows has no request a whole job can be sent (a console's
    /// CTRL_BREAK reaches every process of the console, the caller's too): it terminates at
    /// once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobobject::process::Command;
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::default())?;
    /// # #[cfg(unix)] {
    /// // SIGTERM ends a sleep (its default action): the job empties in time.
    /// let mut child = Command::new("sleep").arg("60").spawn(&job)?;
    /// let stopped = job.stop(Duration::from_secs(10))?;
    /// assert!(stopped.in_time && stopped.killed == 0);
    /// assert!(!child.wait()?.success());
    /// # }
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop(&self, grace: Duration) -> Result<Stopped> {
        stop(self, None, grace)
    }

    /// [`stop`](Self::stop) for an async task: the wait is
    /// [`wait_empty_async`](Self::wait_empty_async)'s, bounded by a tokio timer (the runtime
    /// needs its time driver, as `tokio::time::timeout` does). Feature `tokio`.
    #[cfg(feature = "tokio")]
    pub async fn stop_async(&self, grace: Duration) -> Result<Stopped> {
        let asked = self.inner.ask_to_end(None)?;
        let grace = if asked { grace } else { Duration::ZERO };
        if let Ok(emptied) = tokio::time::timeout(grace, self.wait_empty_async()).await {
            emptied?;
            return Ok(Stopped {
                in_time: true,
                killed: 0,
            });
        }
        kill_the_rest(self)
    }
}

/// [`JobObject::stop`], with `signal` as the request where the platform has one.
pub(crate) fn stop(job: &JobObject, signal: Option<i32>, grace: Duration) -> Result<Stopped> {
    let asked = job.inner.ask_to_end(signal)?;
    if job.wait_empty(Some(if asked { grace } else { Duration::ZERO }))? {
        return Ok(Stopped {
            in_time: true,
            killed: 0,
        });
    }
    kill_the_rest(job)
}

fn kill_the_rest(job: &JobObject) -> Result<Stopped> {
    let left = job.pids()?.len();
    job.terminate(1)?;
    Ok(Stopped {
        in_time: left == 0,
        killed: left,
    })
}
