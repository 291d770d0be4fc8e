//! What the caller prepares before the clone: C strings for the program, its arguments and
//! environment, the paths to try, and the standard streams' descriptors.

use std::ffi::{CString, OsStr, OsString, c_char};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::ptr;

use rustix::fs::{Mode, OFlags};

use super::exec::{Exec, Report};
use crate::Error;
use crate::os::linux::CommandOptions;
use crate::process::{EnvChanges, Parts, StdioKind};

/// The strings and descriptors an [`Exec`] points into, kept alive until the child is gone.
#[derive(Debug, Default)]
pub(super) struct Storage {
    strings: Vec<CString>,
    /// Child ends of pipes, `/dev/null`, copies of descriptors that were at 0-2: closed in
    /// the caller once the child has them.
    child_ends: Vec<OwnedFd>,
    /// The caller's ends of piped streams: stdin, stdout, stderr.
    pub(super) parent_ends: [Option<OwnedFd>; 3],
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

/// Used where the child's `PATH` is unset, as glibc's `execvp` does.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Prepares everything but the cgroup files to join.
pub(super) fn prepare(
    job: &str,
    parts: &Parts<'_>,
    options: &CommandOptions,
    storage: &mut Storage,
) -> Result<Exec, Error> {
    let program = c_string(parts.program.as_bytes(), "the program")?;
    let mut candidates = Vec::new();
    for candidate in candidates_for(parts) {
        candidates.push(keep(
            &mut storage.strings,
            c_string(&candidate, "the program")?,
        ));
    }
    storage.argv.push(keep(&mut storage.strings, program));
    for arg in parts.args {
        let arg = c_string(arg.as_bytes(), "an argument")?;
        storage.argv.push(keep(&mut storage.strings, arg));
    }
    storage.argv.push(ptr::null());
    for (key, value) in resolve(parts.env) {
        let mut pair = key.into_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        let pair = c_string(&pair, "an environment variable")?;
        storage.envp.push(keep(&mut storage.strings, pair));
    }
    storage.envp.push(ptr::null());
    let cwd = match parts.current_dir {
        Some(dir) => Some(keep(
            &mut storage.strings,
            c_string(dir.as_os_str().as_bytes(), "the working directory")?,
        )),
        None => None,
    };
    let stdio = stdio(parts, storage).map_err(|source| Error::Os {
        job: format!("{job:?}"),
        op: "set up the child's standard streams".into(),
        path: None,
        source,
    })?;
    // Asked only when it matters.
    let drop_groups = options.uid.is_some() && rustix::process::getuid().is_root();
    Ok(Exec {
        candidates,
        argv: storage.argv.as_ptr(),
        envp: storage.envp.as_ptr(),
        cwd,
        stdio,
        join: Vec::new(),
        process_group: options.process_group,
        drop_groups,
        gid: options.gid,
        uid: options.uid,
        report: Report::default(),
    })
}

/// The child's value of `key` as far as `env` decides it: `Some(Some(v))` set, `Some(None)`
/// removed (or cleared), `None` inherited.
fn decides<'a>(env: &'a EnvChanges, key: &OsStr) -> Option<Option<&'a OsStr>> {
    match env.vars.get(key) {
        Some(value) => Some(value.as_deref()),
        None if env.clear => Some(None),
        None => None,
    }
}

/// The child's whole environment, in the order the caller's has it, changes applied.
fn resolve(env: &EnvChanges) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = if env.clear {
        Vec::new()
    } else {
        std::env::vars_os()
            .filter(|(key, _)| !env.vars.contains_key(key))
            .collect()
    };
    for (key, value) in &env.vars {
        if let Some(value) = value {
            vars.push((key.clone(), value.clone()));
        }
    }
    vars
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::invalid(format!("{what} contains a NUL byte")))
}

/// Stores `string` and returns a pointer to it, valid while `strings` keeps it (a
/// `CString`'s bytes do not move with it).
fn keep(strings: &mut Vec<CString>, string: CString) -> *const c_char {
    let pointer = string.as_ptr();
    strings.push(string);
    pointer
}

/// The paths to try: the program itself if it names a path, else one per entry of the
/// child's `PATH` (an empty entry is the working directory).
fn candidates_for(parts: &Parts<'_>) -> Vec<Vec<u8>> {
    let program = parts.program.as_bytes();
    if program.contains(&b'/') || program.is_empty() {
        return vec![program.to_vec()];
    }
    let inherited;
    let path = match decides(parts.env, OsStr::new("PATH")) {
        Some(Some(path)) => path.as_bytes(),
        Some(None) => DEFAULT_PATH,
        None => {
            inherited = std::env::var_os("PATH");
            inherited
                .as_deref()
                .map_or(DEFAULT_PATH, OsStrExt::as_bytes)
        }
    };
    path.split(|&b| b == b':')
        .map(|dir| {
            if dir.is_empty() {
                return program.to_vec();
            }
            let mut candidate = dir.to_vec();
            if !dir.ends_with(b"/") {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(program);
            candidate
        })
        .collect()
}

/// The descriptor each standard stream gets in the child (`None`: inherited).
fn stdio(parts: &Parts<'_>, storage: &mut Storage) -> std::io::Result<[Option<i32>; 3]> {
    let mut fds = [None; 3];
    let mut null: Option<i32> = None;
    for (target, stdio) in parts.stdio.iter().enumerate() {
        let source = match stdio.map(|s| &s.0) {
            None | Some(StdioKind::Inherit) => continue,
            Some(StdioKind::Null) => match null {
                Some(fd) => fd,
                None => {
                    let fd = open_null()?;
                    let raw = fd.as_raw_fd();
                    storage.child_ends.push(fd);
                    null = Some(raw);
                    raw
                }
            },
            Some(StdioKind::Piped) => {
                let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let (child, parent) = if target == 0 {
                    (read, write)
                } else {
                    (write, read)
                };
                storage.parent_ends[target] = Some(parent);
                let raw = child.as_raw_fd();
                storage.child_ends.push(child);
                raw
            }
            Some(StdioKind::Owned(fd)) => fd.as_raw_fd(),
        };
        fds[target] = Some(source);
    }
    // A descriptor at 0-2 that belongs elsewhere could be overwritten before it is copied to
    // its place: move it out of the way first.
    for (target, slot) in fds.iter_mut().enumerate() {
        if let Some(fd) = *slot {
            if (0..3).contains(&fd) && fd != target as i32 {
                // SAFETY: `fd` is open (the builder or `storage` holds it) for this call.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let copy = rustix::io::fcntl_dupfd_cloexec(borrowed, 3)?;
                *slot = Some(copy.as_raw_fd());
                storage.child_ends.push(copy);
            }
        }
    }
    Ok(fds)
}

fn open_null() -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    Ok(rustix::fs::open(
        Path::new("/dev/null"),
        flags,
        Mode::empty(),
    )?)
}
