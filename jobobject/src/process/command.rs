//! The builder: what to run, with what environment and standard streams.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::{Child, Stdio};
use crate::{JobObject, Result};

/// A process builder, shaped like [`std::process::Command`], whose
/// [`spawn`](Self::spawn) starts the process inside a job.
///
/// The child is in the job from its first instruction, and the spawn costs what a plain
/// `std::process::Command::spawn` costs. On Linux it is born in the job's cgroup
/// (clone3 `CLONE_INTO_CGROUP` with a shared address space, as `posix_spawn` does; on
/// cgroup v1 it joins the other hierarchies before it execs); on Windows it is created in
/// the job. [`JobObject::spawn`] takes a `std::process::Command` instead, for code that
/// already has one, at the cost of a fork on Linux.
///
/// Unset settings are inherited, as std's are: the environment, the working directory and
/// the three standard streams. Platform settings are in
/// [`os::linux::CommandExt`](crate::os::linux::CommandExt) (user, group, process group) and
/// [`os::windows::CommandExt`](crate::os::windows::CommandExt) (creation flags).
///
/// ```
/// use jobobject::process::{Command, Stdio};
/// use jobobject::{JobObject, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let job = JobObject::create(&Options::default())?;
/// # #[cfg(unix)] let (program, args) = ("echo", ["hello"]);
/// # #[cfg(windows)] let (program, args) = ("cmd", ["/C", "echo", "hello"]);
/// let child = Command::new(program)
///     .args(args)
///     .stdout(Stdio::piped())
///     .spawn(&job)?;
/// let output = child.wait_with_output()?;
/// assert!(output.status.success());
/// assert!(String::from_utf8_lossy(&output.stdout).starts_with("hello"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: EnvChanges,
    current_dir: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    #[cfg(target_os = "linux")]
    pub(crate) linux: crate::os::linux::CommandOptions,
    #[cfg(windows)]
    pub(crate) windows: crate::os::windows::CommandOptions,
}

/// The environment as the child gets it: the caller's, cleared or not, with these changes.
#[derive(Debug, Default, Clone)]
pub(crate) struct EnvChanges {
    /// Start from an empty environment instead of the caller's.
    pub(crate) clear: bool,
    /// Variables set (`Some`) or removed (`None`), by name.
    pub(crate) vars: BTreeMap<OsString, Option<OsString>>,
}

impl Command {
    /// A builder for `program`, with no arguments, inheriting everything else.
    ///
    /// A program without a path separator is looked up in the `PATH` of the child's
    /// environment (as set on this builder, else the caller's).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: EnvChanges::default(),
            current_dir: None,
            stdin: None,
            stdout: None,
            stderr: None,
            #[cfg(target_os = "linux")]
            linux: Default::default(),
            #[cfg(windows)]
            windows: Default::default(),
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        let (key, value) = (key.as_ref().to_owned(), value.as_ref().to_owned());
        self.env.vars.insert(key, Some(value));
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.vars.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts the child with an empty environment (plus what is set after this call).
    pub fn env_clear(&mut self) -> &mut Self {
        self.env.clear = true;
        self.env.vars.clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets the child's standard input (inherited when unset).
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdin = Some(stdio.into());
        self
    }

    /// Sets the child's standard output (inherited when unset).
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stdout = Some(stdio.into());
        self
    }

    /// Sets the child's standard error (inherited when unset).
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Self {
        self.stderr = Some(stdio.into());
        self
    }

    /// The program, as given to [`new`](Self::new).
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, without the program.
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The environment changes: `(key, Some(value))` set, `(key, None)` removed.
    pub fn get_envs(&self) -> impl ExactSizeIterator<Item = (&OsStr, Option<&OsStr>)> {
        self.env
            .vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_deref()))
    }

    /// The working directory, if set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.current_dir.as_deref()
    }

    /// Starts the child inside `job`.
    ///
    /// The child is in the job before it runs any code of its own. Errors name the job and
    /// the program: a program that cannot be found is
    /// [`ErrorKind::ProgramNotFound`](crate::ErrorKind::ProgramNotFound), one that may not be
    /// run [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied). Like std's,
    /// a builder can spawn again; descriptors given as standard streams stay open in it
    /// until it is dropped.
    ///
    /// On Linux with cgroup v2 a job at its process limit refuses the child (the kernel's
    /// `EAGAIN`), as a Windows job at its active process limit does. Where the child joins
    /// after its birth (cgroup v1 alone, or a kernel without clone3's `CLONE_INTO_CGROUP`) it
    /// may take the job one over, as [`JobObject::assign`] does.
    pub fn spawn(&mut self, job: &JobObject) -> Result<Child> {
        job.spawn_builder(self)
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            program: &self.program,
            args: &self.args,
            env: &self.env,
            current_dir: self.current_dir.as_deref(),
            stdio: [
                self.stdin.as_ref(),
                self.stdout.as_ref(),
                self.stderr.as_ref(),
            ],
        }
    }
}

/// What a backend reads of a [`Command`].
pub(crate) struct Parts<'a> {
    pub(crate) program: &'a OsStr,
    pub(crate) args: &'a [OsString],
    pub(crate) env: &'a EnvChanges,
    pub(crate) current_dir: Option<&'a Path>,
    /// stdin, stdout, stderr; `None` inherits.
    pub(crate) stdio: [Option<&'a Stdio>; 3],
}
