//! A child started by [`Command::spawn`](super::Command::spawn).

use std::io::{self, Read};
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use std::thread;

use super::stdio::Descriptor;
use crate::sys;

/// A process started inside a job, shaped like [`std::process::Child`].
///
/// Its pipes are std's own types. As with std, dropping a `Child` neither waits for it nor
/// kills it: [`wait`](Self::wait) for it (or kill the whole job) so that it is reaped. On
/// Linux it holds a pidfd ([`os::linux::ChildExt`](crate::os::linux::ChildExt)), on Windows
/// the process handle ([`os::windows::ChildExt`](crate::os::windows::ChildExt)).
#[derive(Debug)]
pub struct Child {
    /// The caller's end of the child's standard input, if it was
    /// [`piped`](super::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The caller's end of the child's standard output, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The caller's end of the child's standard error, if it was piped.
    pub stderr: Option<ChildStderr>,
    pub(crate) process: sys::Process,
}

impl Child {
    /// A child from the backend's process and the caller's ends of its piped stdin, stdout
    /// and stderr.
    pub(crate) fn new(process: sys::Process, pipes: [Option<Descriptor>; 3]) -> Self {
        let [stdin, stdout, stderr] = pipes;
        Child {
            stdin: stdin.map(Into::into),
            stdout: stdout.map(Into::into),
            stderr: stderr.map(Into::into),
            process,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Kills the child (SIGKILL on Linux, `TerminateProcess` on Windows). A child that has
    /// already exited is left as it is, and this returns `Ok`, as std's does.
    pub fn kill(&mut self) -> io::Result<()> {
        self.process.kill()
    }

    /// Waits for the child to exit and reaps it. Closes its standard input first, so that a
    /// child reading it sees the end.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.process.wait()
    }

    /// The child's exit status if it has exited (and reaps it), without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.process.try_wait()
    }

    /// Waits for the child and collects what it wrote to its piped standard output and
    /// error (read concurrently, so that neither pipe fills up and blocks it).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = match (self.stdout.take(), self.stderr.take()) {
            (Some(out), Some(err)) => thread::scope(|scope| {
                let err = scope.spawn(|| read_all(Some(err)));
                let out = read_all(Some(out));
                let err = err
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("reader panicked")));
                Ok::<_, io::Error>((out?, err?))
            })?,
            (out, err) => (read_all(out)?, read_all(err)?),
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

fn read_all(pipe: Option<impl Read>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}
