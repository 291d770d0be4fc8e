//! The async methods of [`JobObject`].

use std::future::Future;

use super::Notifications;
use crate::{Error, JobObject, Notification, Result};

impl JobObject {
    /// The next notification of the job: the async
    /// [`poll_notification`](Self::poll_notification), with the same errors. Feature `tokio`.
    ///
    /// The future holds no borrow of the handle (spawn it, or keep it across a `close`), and
    /// is cancel-safe: a notification leaves the queue only when the future returns it, so
    /// one dropped while pending (a `select!` branch that lost, a timeout) loses nothing.
    /// [`close`](Self::close) ends it with [`Error::AlreadyClosed`](crate::Error::AlreadyClosed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobobject::process::Command;
    /// use jobobject::{JobObject, Notification, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::new().notifications(true))?;
    /// // Nothing yet: the timeout drops the pending future, and loses nothing by it.
    /// let quiet = tokio::time::timeout(Duration::from_millis(10), job.next_notification());
    /// assert!(quiet.await.is_err());
    /// # #[cfg(unix)]
    /// let mut child = Command::new("true").spawn(&job)?;
    /// # #[cfg(windows)]
    /// # let mut child = Command::new("cmd").args(["/C", "exit 0"]).spawn(&job)?;
    /// loop {
    ///     // Windows also reports each process's start and exit.
    ///     if job.next_notification().await? == Notification::AllProcessesExited {
    ///         break;
    ///     }
    /// }
    /// child.wait_async().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_notification(&self) -> impl Future<Output = Result<Notification>> + Send + 'static {
        let listener = self.inner.listener();
        async move { listener?.next().await }
    }

    /// Every notification of the job, as a [`Stream`](futures_core::Stream) (use it with
    /// `tokio_stream::StreamExt` or `futures::StreamExt`); it ends when the handle is closed.
    /// See [`Notifications`]. Feature `tokio`.
    pub fn notifications(&self) -> Notifications {
        Notifications::new(self.inner.listener())
    }

    /// Resolves when the job holds no process (at once if it holds none): the async
    /// [`wait_empty`](Self::wait_empty), which needs no
    /// [`Options::notifications`](crate::Options::notifications) either. Bound it with
    /// `tokio::time::timeout`. Feature `tokio`.
    ///
    /// It listens from the call on, holds no borrow of the handle, and is cancel-safe.
    /// [`close`](Self::close) ends it with [`Error::AlreadyClosed`](crate::Error::AlreadyClosed).
    ///
    /// A command run under a time limit, the whole tree killed when it runs over:
    /// ```
    /// use std::time::Duration;
    /// use jobobject::process::Command;
    /// use jobobject::{JobObject, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::default())?;
    /// # #[cfg(unix)]
    /// let mut child = Command::new("sh").args(["-c", "sleep 60 & sleep 60"]).spawn(&job)?;
    /// # #[cfg(windows)]
    /// # let mut child = Command::new("cmd").args(["/C", "ping -n 60 127.0.0.1 >NUL"]).spawn(&job)?;
    /// let limit = Duration::from_millis(100);
    /// if tokio::time::timeout(limit, job.wait_empty_async()).await.is_err() {
    ///     job.terminate(1)?; // ran over: kill the shell and both sleeps
    ///     job.wait_empty_async().await?;
    /// }
    /// child.wait_async().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_empty_async(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let watch = self.inner.empty_watch();
        async move {
            let watch = watch?;
            loop {
                if watch.is_empty()? {
                    return Ok(());
                }
                match watch.changed().await {
                    Ok(_) => {}
                    // Deleted meanwhile (Linux): the kernel removes only empty cgroups.
                    Err(Error::NotFound { .. }) => return Ok(()),
                    Err(err) => return Err(err),
                }
            }
        }
    }

    /// Starts a `tokio::process::Command` inside the job and returns tokio's `Child`: the
    /// compatibility path of [`spawn`](Self::spawn) for tokio programs, with the same
    /// guarantees and costs (on Linux a `pre_exec` hook, disarmed when the spawn returns; on
    /// Windows the child is created suspended, assigned, resumed, and the command's creation
    /// flags are reset to 0). Prefer [`process::Command`](crate::process::Command) and
    /// [`Child::wait_async`](crate::process::Child::wait_async), which spawn at the cost of a
    /// plain spawn. Feature `tokio`; it must run inside a tokio runtime.
    ///
    /// ```
    /// use jobobject::{JobObject, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::default())?;
    /// # #[cfg(unix)]
    /// let mut command = tokio::process::Command::new("true");
    /// # #[cfg(windows)]
    /// # let mut command = tokio::process::Command::new("cmd");
    /// # #[cfg(windows)]
    /// # command.args(["/C", "exit 0"]);
    /// let mut child = job.spawn_tokio(&mut command)?;
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_tokio(
        &self,
        command: &mut tokio::process::Command,
    ) -> Result<tokio::process::Child> {
        self.inner.spawn_tokio(command)
    }
}
