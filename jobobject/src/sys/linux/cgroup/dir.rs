//! Directory and file operations relative to an open directory.
//!
//! A job directory is made and first opened from its parent's descriptor with `O_NOFOLLOW`,
//! and every file of it is reached from the job directory's descriptor. The directories a job
//! does not hold open (all but the primary one) are opened again by path when needed, and
//! removal reopens the parent by path: each checks that the directory it reaches is still the
//! job's (its device and inode), so neither a name nor a symlink planted meanwhile can lead
//! outside the job.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::thread;
use std::time::Duration;

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

/// How long a removal keeps retrying while the kernel reports a just-emptied cgroup busy.
pub(crate) const REMOVE_RETRY: Duration = Duration::from_secs(2);

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

/// Opens an absolute directory path (a hierarchy's mount point or a job's parent).
pub(crate) fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

/// Opens an absolute directory path, refusing a symlink as its last component (a job's
/// directory, opened again when needed; the caller checks its identity).
pub(crate) fn open_path_nofollow(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory `name` of `parent`, refusing symlinks. A `&CStr` name (as the keeper
/// gives) is passed as it is, without allocating.
pub(crate) fn open_child(
    parent: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
}

/// Makes the directory `name` in `parent`; an existing entry of any kind is `EEXIST`.
///
/// Mode 0711: other users may reach the files inside (which keep their own modes) but cannot
/// open the directory itself, so they cannot take the `flock` that its handles use.
pub(crate) fn make_child(parent: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        parent,
        name,
        Mode::from_raw_mode(0o711),
    )?)
}

/// Removes the empty cgroup `name` of `parent`, once: `EBUSY` (the kernel still counts a
/// process that has just exited, or the cgroup has children) is the caller's to retry.
pub(crate) fn remove_child(parent: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}

/// [`remove_child`], retrying `EBUSY` for up to two seconds (on the caller's thread).
pub(crate) fn remove_child_retrying(parent: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut delay = Duration::from_micros(100);
    let mut waited = Duration::ZERO;
    loop {
        match remove_child(parent, name) {
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && waited < REMOVE_RETRY => {
                thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Whether `name` in `dir` is a regular file (a cgroup interface file), not following symlinks.
pub(crate) fn is_file(dir: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| rustix::fs::FileType::from_raw_mode(stat.st_mode).is_file())
}

/// Reads a whole (small) file of `dir`, with `pread`s into a stack buffer.
pub(crate) fn read(dir: BorrowedFd<'_>, file: &str) -> io::Result<String> {
    pread_all(open_read(dir, file)?.as_fd(), file, false)
}

/// Opens a file of `dir` for reading, to [`reread_record`] it.
pub(crate) fn open_read(dir: BorrowedFd<'_>, file: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        file,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Reads the whole of an open file the kernel shows as one record (`cgroup.events` and every
/// counter, unlike a list such as `cgroup.procs`) from its start: the kernel makes a cgroup
/// file's text anew at each read from offset 0, so an open file reads as the value now, as
/// often as needed. It hands out a record as far as the buffer takes it, so a read that does
/// not fill the buffer has reached the end, and no read of the end is needed. `file` names it
/// in errors.
pub(crate) fn reread_record(fd: BorrowedFd<'_>, file: &str) -> io::Result<String> {
    pread_all(fd, file, true)
}

fn pread_all(fd: BorrowedFd<'_>, file: &str, one_record: bool) -> io::Result<String> {
    let mut buffer = [0u8; 4096];
    let mut text = Vec::new();
    loop {
        match rustix::io::pread(fd, &mut buffer, text.len() as u64) {
            Ok(0) => break,
            Ok(n) => {
                text.extend_from_slice(&buffer[..n]);
                if one_record && n < buffer.len() {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    String::from_utf8(text)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{file} is not UTF-8")))
}

/// Opens a file of `dir` for writing.
pub(crate) fn open_write(dir: BorrowedFd<'_>, file: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        file,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Opens a file of `dir` for reading and writing (a file that keeps state per open file).
pub(crate) fn open_read_write(dir: BorrowedFd<'_>, file: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        file,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Writes `data` to a file of `dir` in one `write`, as cgroup files need.
pub(crate) fn write(dir: BorrowedFd<'_>, file: &str, data: &[u8]) -> io::Result<()> {
    let fd = open_write(dir, file)?;
    write_all_once(fd.as_fd(), data)
}

/// One `write` of the whole buffer: cgroup files take each write as one value.
pub(crate) fn write_all_once(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
    let written = rustix::io::write(fd, data)?;
    if written == data.len() {
        Ok(())
    } else {
        // Built without allocating: this also runs between fork and exec.
        Err(io::ErrorKind::WriteZero.into())
    }
}

/// Whether `dir` has a file or directory `name` (without following symlinks).
pub(crate) fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::accessat(
        dir,
        name,
        rustix::fs::Access::EXISTS,
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// The names of the subdirectories of `dir` (the nested cgroups).
pub(crate) fn subdirectories(dir: BorrowedFd<'_>) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut entries = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        if entry.file_type() != rustix::fs::FileType::Directory {
            continue;
        }
        if let Ok(name) = entry.file_name().to_str() {
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// The identity of an open directory: device and inode.
pub(crate) fn identity(dir: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let stat = rustix::fs::fstat(dir)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// The identity of the entry `name` of `dir` (not following symlinks).
pub(crate) fn identity_at(
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
) -> io::Result<(u64, u64)> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// The identity of the directory `name` of `dir` (not following symlinks); anything else
/// there is `ENOTDIR`.
pub(crate) fn dir_identity_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<(u64, u64)> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Directory {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok((stat.st_dev, stat.st_ino))
}

/// Marks a directory with the extended attribute `name` (cgroupfs keeps `user.*` ones).
pub(crate) fn set_mark(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(
        dir,
        name,
        b"1",
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// Whether a directory carries the extended attribute `name`.
pub(crate) fn has_mark(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    rustix::fs::fgetxattr_query(dir, name).is_ok()
}

/// Removes the extended attribute `name` of a directory; one it does not carry is no error.
pub(crate) fn remove_mark(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rustix::fs::fremovexattr(dir, name) {
        Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Tries to take an advisory lock on a directory without waiting; `Ok(false)` when another
/// open file holds a conflicting one. Every handle holds a shared lock on its job's directory,
/// so that the last handle in any process can tell it is the last (an exclusive lock then
/// succeeds).
pub(crate) fn try_lock(dir: BorrowedFd<'_>, exclusive: bool) -> io::Result<bool> {
    let operation = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match rustix::fs::flock(dir, operation) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Releases this open file's lock on a directory.
pub(crate) fn unlock(dir: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::flock(dir, FlockOperation::Unlock)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("jobobject-dir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("parent")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        dir
    }

    #[test]
    fn a_planted_symlink_leads_nowhere() {
        let root = scratch("symlink");
        symlink(root.join("outside"), root.join("parent/evil")).unwrap();
        let parent = open_path(&root.join("parent")).unwrap();

        let err = open_child(parent.as_fd(), "evil").unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)),
            "{err}"
        );
        let err = make_child(parent.as_fd(), "evil").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert!(read(parent.as_fd(), "evil").is_err());
        assert!(!exists(
            open_path(&root.join("outside")).unwrap().as_fd(),
            "evil"
        ));
        assert_eq!(std::fs::read_dir(root.join("outside")).unwrap().count(), 0);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn children_are_made_listed_and_removed() {
        let root = scratch("children");
        let parent = open_path(&root.join("parent")).unwrap();
        make_child(parent.as_fd(), "a").unwrap();
        std::fs::write(root.join("parent/file"), b"x").unwrap();
        assert_eq!(
            subdirectories(parent.as_fd()).unwrap(),
            vec!["a".to_owned()]
        );
        let child = open_child(parent.as_fd(), "a").unwrap();
        write(child.as_fd(), "value", b"42").unwrap_err(); // no such file: nothing is created
        assert!(!exists(child.as_fd(), "value"));
        drop(child);
        remove_child(parent.as_fd(), "a").unwrap();
        assert!(subdirectories(parent.as_fd()).unwrap().is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
