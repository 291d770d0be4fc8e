//! What a child's standard stream is connected to.

use std::fs::File;
use std::process::{ChildStderr, ChildStdin, ChildStdout};

#[cfg(unix)]
pub(crate) type Descriptor = std::os::fd::OwnedFd;
#[cfg(windows)]
pub(crate) type Descriptor = std::os::windows::io::OwnedHandle;

/// A child's standard input, output or error, as in [`std::process::Stdio`]: inherited from
/// the caller, `/dev/null` (`NUL` on Windows), a new pipe whose other end the
/// [`Child`](super::Child) holds, or any open file, pipe or socket.
///
/// ```
/// use jobobject::process::Stdio;
///
/// let _ = Stdio::null();
/// let _ = Stdio::from(std::fs::File::open(std::env::current_exe()?)?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Stdio(pub(crate) Kind);

#[derive(Debug)]
pub(crate) enum Kind {
    Inherit,
    Null,
    Piped,
    /// The child gets a copy; the builder keeps this one until it is dropped.
    Owned(Descriptor),
}

impl Stdio {
    /// The caller's own stream (the default).
    pub fn inherit() -> Self {
        Stdio(Kind::Inherit)
    }

    /// The null device: reads see end of file, writes are discarded.
    pub fn null() -> Self {
        Stdio(Kind::Null)
    }

    /// A new pipe: the child's end is this stream, the caller's end is in
    /// [`Child::stdin`](super::Child::stdin), [`stdout`](super::Child::stdout) or
    /// [`stderr`](super::Child::stderr).
    pub fn piped() -> Self {
        Stdio(Kind::Piped)
    }
}

impl From<Descriptor> for Stdio {
    fn from(descriptor: Descriptor) -> Self {
        Stdio(Kind::Owned(descriptor))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Self {
        Stdio(Kind::Owned(file.into()))
    }
}

impl From<ChildStdin> for Stdio {
    fn from(pipe: ChildStdin) -> Self {
        Stdio(Kind::Owned(pipe.into()))
    }
}

impl From<ChildStdout> for Stdio {
    fn from(pipe: ChildStdout) -> Self {
        Stdio(Kind::Owned(pipe.into()))
    }
}

impl From<ChildStderr> for Stdio {
    fn from(pipe: ChildStderr) -> Self {
        Stdio(Kind::Owned(pipe.into()))
    }
}
