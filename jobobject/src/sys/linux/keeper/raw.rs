//! What the keeper works with: system calls only, no allocator and no lock. The keeper is
//! cloned from a process that may have other threads, one of which may hold the allocator's
//! lock at that moment, and it lets go of its parent's memory (see `launch`): so it keeps its
//! tables in memory it maps itself, names files by `CStr`s it builds on its stack, and reads
//! files into stack buffers.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

use crate::sys::linux::cgroup::dir;

/// A growable array in memory mapped for it (not the allocator's). Its values are never
/// dropped: it is for plain values (numbers, descriptors it does not own).
pub(super) struct MapVec<T> {
    ptr: NonNull<T>,
    len: usize,
    capacity: usize,
}

impl<T> MapVec<T> {
    /// An empty array; maps nothing until the first push.
    pub(super) const fn new() -> Self {
        MapVec {
            ptr: NonNull::dangling(),
            len: 0,
            capacity: 0,
        }
    }

    /// Appends a value; fails (and keeps the array as it was) when no memory can be mapped.
    pub(super) fn push(&mut self, value: T) -> io::Result<()> {
        if self.len == self.capacity {
            self.grow()?;
        }
        // SAFETY: `len < capacity`, and the mapping holds `capacity` values of `T`.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    fn grow(&mut self) -> io::Result<()> {
        let size = size_of::<T>().max(1);
        let capacity = (self.capacity * 2).max(4096 / size);
        let bytes = capacity * size;
        let old_bytes = self.capacity * size;
        let ptr = if self.capacity == 0 {
            // SAFETY: a fresh private anonymous mapping aliases nothing.
            unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    bytes,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )?
            }
        } else {
            // SAFETY: `ptr` is this array's own mapping of `old_bytes`; it may move, and no
            // reference into it outlives this call (`&mut self`).
            unsafe {
                rustix::mm::mremap(
                    self.ptr.as_ptr().cast(),
                    old_bytes,
                    bytes,
                    MremapFlags::MAYMOVE,
                )?
            }
        };
        self.ptr = NonNull::new(ptr.cast()).ok_or(io::ErrorKind::OutOfMemory)?;
        self.capacity = capacity;
        Ok(())
    }

    pub(super) fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` values are initialized; `ptr` is dangling only when 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes the value at `index`, moving the last one into its place.
    pub(super) fn swap_remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let last = self.len - 1;
        // SAFETY: both indices are below `len`; the value at `last` is moved (not copied)
        // into `index`, as `len` then excludes it.
        unsafe {
            let base = self.ptr.as_ptr();
            let value = base.add(index).read();
            if index != last {
                base.add(index).write(base.add(last).read());
            }
            self.len = last;
            Some(value)
        }
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

/// A file name or relative path, NUL-terminated, built without allocating.
#[derive(Clone, Copy)]
pub(super) struct Name {
    bytes: [u8; 256],
    len: usize,
}

impl Name {
    /// `name` with a NUL added; `None` when it holds a NUL or is too long.
    pub(super) fn new(name: &[u8]) -> Option<Self> {
        let mut built = Name {
            bytes: [0; 256],
            len: 0,
        };
        built.push(name).then_some(built)
    }

    /// Appends `/` and `name` (a path one level deeper); false when it does not fit.
    pub(super) fn join(&mut self, name: &[u8]) -> bool {
        let before = *self;
        let joined = self.push(b"/") && self.push(name);
        if !joined {
            *self = before;
        }
        joined
    }

    fn push(&mut self, part: &[u8]) -> bool {
        let end = self.len + part.len();
        if part.contains(&0) || end >= self.bytes.len() {
            return false;
        }
        self.bytes[self.len..end].copy_from_slice(part);
        self.bytes[end] = 0;
        self.len = end;
        true
    }

    pub(super) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.bytes[..=self.len]).unwrap_or(c".")
    }
}

/// Reads the start of a small file of `dir` into `buf`; returns the bytes read.
pub(super) fn read(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    pread(fd.as_fd(), buf)
}

/// Reads an open file from its start into `buf`.
pub(super) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::pread(fd, &mut *buf, 0) {
            Err(rustix::io::Errno::INTR) => {}
            other => return Ok(other?),
        }
    }
}

/// Writes `data` to a file of `dir` in one `write`.
pub(super) fn write(dir: BorrowedFd<'_>, name: &CStr, data: &[u8]) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    rustix::io::write(fd, data)?;
    Ok(())
}

/// Whether `text` has a line `key value` (as `cgroup.events` shows its fields).
pub(super) fn has_line(text: &[u8], key: &[u8], value: &[u8]) -> bool {
    text.split(|&b| b == b'\n').any(|line| {
        let mut words = line.split(|&b| b == b' ');
        words.next() == Some(key) && words.next() == Some(value)
    })
}

/// Calls `each` with every subdirectory name of `dir` (a fresh read of it).
pub(super) fn for_each_subdir(dir: BorrowedFd<'_>, mut each: impl FnMut(&CStr)) -> io::Result<()> {
    let fd = dir::open_child(dir, c".")?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = RawDir::new(fd, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type() == FileType::Directory && name != c"." && name != c".." {
            each(name);
        }
    }
    Ok(())
}

/// Calls `each` with every pid in the `cgroup.procs` of `dir`, read in chunks.
pub(super) fn for_each_pid(dir: BorrowedFd<'_>, mut each: impl FnMut(i32)) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        c"cgroup.procs",
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 4096];
    let mut pid: Option<i32> = None;
    loop {
        let n = match rustix::io::read(&fd, &mut buf) {
            Err(rustix::io::Errno::INTR) => continue,
            other => other?,
        };
        for &b in buf.get(..n).unwrap_or_default() {
            match b {
                b'0'..=b'9' => {
                    let digit = i32::from(b - b'0');
                    pid = Some(pid.unwrap_or(0).saturating_mul(10).saturating_add(digit));
                }
                _ => {
                    if let Some(found) = pid.take() {
                        each(found);
                    }
                }
            }
        }
        if n == 0 {
            if let Some(found) = pid {
                each(found);
            }
            return Ok(());
        }
    }
}

/// Removes the empty directory `name` of `dir` if it is still the one with `identity`.
pub(super) fn remove_if_same(
    dir: BorrowedFd<'_>,
    name: &CStr,
    identity: (u64, u64),
) -> io::Result<()> {
    if dir::identity_at(dir, name)? != identity {
        return Ok(());
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Sleeps, resuming after a signal (the keeper ignores or dies of every signal, but a
/// stopped and continued keeper returns early).
pub(super) fn sleep(duration: Duration) {
    let request = rustix::thread::Timespec {
        tv_sec: duration.as_secs() as i64,
        tv_nsec: i64::from(duration.subsec_nanos()),
    };
    let _ = rustix::thread::nanosleep(&request);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_vec_grows_and_removes() {
        let mut values = MapVec::new();
        for i in 0..10_000u64 {
            values.push(i).unwrap();
        }
        assert_eq!(values.len(), 10_000);
        assert_eq!(values.swap_remove(0), Some(0));
        assert_eq!(values.as_slice()[0], 9_999);
        assert_eq!(values.swap_remove(20_000), None);
        values.clear();
        assert!(values.is_empty());
    }

    #[test]
    fn names_are_built_and_refused() {
        let mut name = Name::new(b"job").unwrap();
        assert!(name.join(b"nested"));
        assert_eq!(name.as_cstr(), c"job/nested");
        assert!(Name::new(b"a\0b").is_none());
        assert!(Name::new(&[b'x'; 256]).is_none());
        assert!(!name.join(&[b'x'; 250]));
        assert_eq!(name.as_cstr(), c"job/nested");
    }

    #[test]
    fn event_lines_are_found() {
        assert!(has_line(b"populated 0\nfrozen 0\n", b"populated", b"0"));
        assert!(!has_line(b"populated 1\nfrozen 0\n", b"populated", b"0"));
    }
}
