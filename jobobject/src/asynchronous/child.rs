//! Awaiting a child of the library's own builder.

use std::io;
use std::process::ExitStatus;

use crate::process::Child;

impl Child {
    /// Waits for the child to exit and reaps it, without blocking the thread: the async
    /// [`wait`](Self::wait), as tokio's `Child::wait`. Closes its standard input first.
    /// Feature `tokio`; it must run inside a tokio runtime.
    ///
    /// On Linux the runtime's reactor watches the child's pidfd (on a kernel without pidfds,
    /// a blocking thread of the runtime waits for the exit, without reaping it); on Windows a
    /// wait registered on the process handle (`RegisterWaitForSingleObject`, as tokio's own
    /// `Child`) wakes the task. Cancel-safe: dropped before the exit, it leaves the child
    /// running and unreaped, to be waited for again.
    ///
    /// ```
    /// use jobobject::process::Command;
    /// use jobobject::{JobObject, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = JobObject::create(&Options::default())?;
    /// # #[cfg(unix)]
    /// let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn(&job)?;
    /// # #[cfg(windows)]
    /// # let mut child = Command::new("cmd").args(["/C", "exit 3"]).spawn(&job)?;
    /// assert_eq!(child.wait_async().await?.code(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_async(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.process.wait_async().await
    }
}
