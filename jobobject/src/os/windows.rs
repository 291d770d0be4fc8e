//! Windows-specific parts of the API, as `std::os::windows` is std's.

use std::os::windows::io::BorrowedHandle;

/// What [`process::Command`](crate::process::Command) can do on Windows only, as std's
/// `std::os::windows::process::CommandExt`.
///
/// ```
/// use jobobject::os::windows::CommandExt;
/// use jobobject::process::Command;
/// use jobobject::{JobObject, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// const CREATE_NO_WINDOW: u32 = 0x0800_0000;
/// let job = JobObject::create(&Options::default())?;
/// let mut child = Command::new("cmd")
///     .args(["/C", "exit 0"])
///     .creation_flags(CREATE_NO_WINDOW)
///     .spawn(&job)?;
/// assert!(child.wait()?.success());
/// # Ok(())
/// # }
/// ```
pub trait CommandExt {
    /// Sets the process creation flags (`CreateProcessW`'s `dwCreationFlags`). They are
    /// kept as given: the spawn adds what it needs to place the child in the job.
    fn creation_flags(&mut self, flags: u32) -> &mut Self;
}

/// The Windows settings of a [`process::Command`](crate::process::Command).
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandOptions {
    pub(crate) creation_flags: u32,
}

impl CommandExt for crate::process::Command {
    fn creation_flags(&mut self, flags: u32) -> &mut Self {
        self.windows.creation_flags = flags;
        self
    }
}

/// What a [`process::Child`](crate::process::Child) has on Windows only.
pub trait ChildExt {
    /// The child's process handle (all access rights).
    fn process_handle(&self) -> BorrowedHandle<'_>;
}

impl ChildExt for crate::process::Child {
    fn process_handle(&self) -> BorrowedHandle<'_> {
        self.process.handle()
    }
}
