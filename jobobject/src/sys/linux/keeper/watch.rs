//! The keeper's loop: it learns its owner's job parents, waits for its owner's end, then finds
//! the jobs its owner held (by the owner's mark) and does for each what the owner's last close
//! would have done (see `duty`). Nothing here allocates (see `raw`).

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use super::duty::{self, Outcome};
use super::raw::{self, MapVec, Name};
use super::{FREEZER, MAX_PARENTS, V2};
use crate::sys::linux::cgroup::dir;

/// How many times a job still locked by another holder is tried again (with a growing delay,
/// about a second in all) before the keeper leaves it to that holder: the owner's own lock
/// goes a moment after its end is seen (an `exec` closes its descriptors as it goes, and a
/// child forked by the owner keeps them until its own `exec`).
const LOCK_TRIES: u32 = 16;
/// How often jobs without a `cgroup.events` to watch (v1 only) are looked at while they wait
/// to empty.
const POLL_EMPTY: Duration = Duration::from_millis(100);

/// A job's parent in one hierarchy, as the owner sent it.
#[derive(Clone, Copy)]
pub(super) struct Parent {
    pub(super) fd: RawFd,
    identity: (u64, u64),
    /// The index (in `parents`) of its group's primary parent: the hierarchies of one
    /// cgroup parent go together.
    pub(super) group: usize,
    pub(super) tags: u8,
}

impl Parent {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the keeper keeps every parent's descriptor open until it exits.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

/// A job the owner held, found in a group's primary parent.
#[derive(Clone, Copy)]
pub(super) struct Job {
    pub(super) group: usize,
    /// The job's primary directory, opened by the keeper (its own open file, which holds no
    /// lock until the keeper takes one).
    pub(super) fd: RawFd,
    /// Its `cgroup.events` while the keeper waits for it to empty (v2), else -1.
    pub(super) events: RawFd,
    pub(super) name: Name,
    tries: u32,
}

impl Job {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: a job's descriptor stays open while it is in one of the keeper's tables.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Closes the job's descriptors (dropping the keeper's lock with them).
    pub(super) fn close(self) {
        for fd in [self.fd, self.events] {
            if fd >= 0 {
                // SAFETY: the job owned these descriptors, and is gone from every table.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
}

pub(super) struct Keeper {
    socket: Option<OwnedFd>,
    /// The owner's pidfd, while it lives (readable once it has exited).
    pidfd: Option<OwnedFd>,
    /// The extended attribute by which the owner marked the jobs it held.
    mark: Name,
    pub(super) parents: MapVec<Parent>,
    /// Jobs found after the owner's end that the keeper has not locked yet.
    pending: MapVec<Job>,
    /// Jobs the keeper removes once they are empty.
    reaping: MapVec<Job>,
    owner_gone: bool,
}

impl Keeper {
    pub(super) fn new(socket: OwnedFd, pidfd: Option<OwnedFd>, mark: Name) -> Self {
        Keeper {
            socket: Some(socket),
            pidfd,
            mark,
            parents: MapVec::new(),
            pending: MapVec::new(),
            reaping: MapVec::new(),
            owner_gone: false,
        }
    }

    /// Runs until the owner is gone and every job it held is dealt with.
    pub(super) fn run(mut self) {
        let mut polled: MapVec<PollFd<'static>> = MapVec::new();
        while !(self.owner_gone && self.pending.is_empty() && self.reaping.is_empty()) {
            self.wait(&mut polled);
            self.settle_pending();
            self.settle_reaping();
        }
    }

    /// Waits for a message, the owner's end, a job's emptying, or the next retry.
    fn wait(&mut self, polled: &mut MapVec<PollFd<'static>>) {
        polled.clear();
        let borrow = |fd: &OwnedFd| {
            // SAFETY: the descriptors outlive `polled`, which is cleared before any closes.
            unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) }
        };
        if let Some(socket) = &self.socket {
            let _ = polled.push(PollFd::from_borrowed_fd(borrow(socket), PollFlags::IN));
        }
        if let Some(pidfd) = &self.pidfd {
            let _ = polled.push(PollFd::from_borrowed_fd(borrow(pidfd), PollFlags::IN));
        }
        let mut unwatched = false;
        for job in self.reaping.as_slice() {
            if job.events < 0 {
                unwatched = true;
                continue;
            }
            // SAFETY: as above: the job's descriptor stays open while it is reaped.
            let fd = unsafe { BorrowedFd::borrow_raw(job.events) };
            let _ = polled.push(PollFd::from_borrowed_fd(fd, PollFlags::PRI));
        }
        let timeout = if !self.pending.is_empty() {
            let tries = self.pending.as_slice().iter().map(|j| j.tries).min();
            Some(retry_delay(tries.unwrap_or(0)))
        } else if unwatched {
            Some(POLL_EMPTY)
        } else {
            None
        };
        let timeout = timeout.map(|t| rustix::time::Timespec {
            tv_sec: t.as_secs() as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        if rustix::event::poll(polled.as_mut_slice(), timeout.as_ref()).is_err() {
            return;
        }
        let fired: [bool; 2] = {
            let slice = polled.as_slice();
            let ready = |i: usize| slice.get(i).is_some_and(|p| !p.revents().is_empty());
            [ready(0), ready(1)]
        };
        let mut index = 0;
        if self.socket.is_some() {
            if fired[index] {
                self.receive();
            }
            index += 1;
        }
        if self.pidfd.is_some() && fired[index] {
            // The owner has exited: its descriptors, and the locks they held, are gone.
            self.pidfd = None;
            self.socket = None;
        }
        if self.socket.is_none() && !self.owner_gone {
            self.owner_gone = true;
            self.collect();
        }
    }

    /// Reads the owner's messages: groups of job parents. End of file (the owner exited or
    /// exec'd, closing its end) means the owner is gone.
    fn receive(&mut self) {
        loop {
            let mut body = [0u8; MAX_PARENTS];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PARENTS))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let Some(socket) = &self.socket else { return };
            let received = rustix::net::recvmsg(
                socket,
                &mut [IoSliceMut::new(&mut body)],
                &mut control,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
            );
            match received {
                Ok(msg) if msg.bytes > 0 => {
                    let tags = body.get(..msg.bytes).unwrap_or_default();
                    for message in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(fds) = message {
                            self.add_group(tags, fds);
                        }
                    }
                }
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => {}
                // End of file, or a broken connection: the owner's end is closed.
                _ => {
                    self.socket = None;
                    return;
                }
            }
        }
    }

    /// Adds a group of parents: the first one primary, each with its tags. Parents the keeper
    /// has already are closed.
    fn add_group(&mut self, tags: &[u8], fds: impl Iterator<Item = OwnedFd>) {
        let mut group = None;
        for (fd, &tags) in fds.zip(tags) {
            let Ok(identity) = dir::identity(fd.as_fd()) else {
                continue;
            };
            // The first is a group's primary parent (its own group); the others join it.
            let index = self
                .parents
                .as_slice()
                .iter()
                .enumerate()
                .position(|(i, p)| p.identity == identity && p.group == group.unwrap_or(i));
            if let Some(found) = index {
                group.get_or_insert(found);
                continue;
            }
            let g = group.unwrap_or(self.parents.len());
            let parent = Parent {
                fd: fd.as_raw_fd(),
                identity,
                group: g,
                tags,
            };
            if self.parents.push(parent).is_ok() {
                let _ = fd.into_raw_fd();
                group = Some(g);
            }
        }
    }

    /// After the owner's end: every job in a primary parent that carries the owner's mark.
    fn collect(&mut self) {
        for index in 0..self.parents.len() {
            let Some(&parent) = self.parents.as_slice().get(index) else {
                break;
            };
            if parent.group != index {
                continue;
            }
            let mark = self.mark;
            let pending = &mut self.pending;
            let _ = raw::for_each_subdir(parent.fd(), |name| {
                let Ok(fd) = dir::open_child(parent.fd(), name) else {
                    return;
                };
                let (Some(name), true) = (
                    Name::new(name.to_bytes()),
                    dir::has_mark(fd.as_fd(), mark.as_cstr()),
                ) else {
                    return;
                };
                let job = Job {
                    group: index,
                    fd: fd.as_raw_fd(),
                    events: -1,
                    name,
                    tries: 0,
                };
                if pending.push(job).is_ok() {
                    let _ = fd.into_raw_fd();
                }
            });
        }
    }

    /// Locks each job found: the keeper acts for the last holder; a job that another
    /// process still holds is that process's, once its lock has been seen long enough.
    fn settle_pending(&mut self) {
        let mut index = self.pending.len();
        while index > 0 {
            index -= 1;
            let Some(job) = self.pending.as_mut_slice().get_mut(index) else {
                continue;
            };
            let locked = dir::try_lock(job.fd(), true);
            if locked.as_ref().is_ok_and(|l| !l) && job.tries < LOCK_TRIES {
                job.tries += 1;
                continue;
            }
            let Some(job) = self.pending.swap_remove(index) else {
                continue;
            };
            let _ = dir::remove_mark(job.fd(), self.mark.as_cstr());
            match locked {
                Ok(true) => self.act(job),
                _ => job.close(),
            }
        }
    }

    /// Does for a locked job what its last holder's close does.
    fn act(&mut self, job: Job) {
        match duty::last_close(self, &job) {
            Outcome::Done => job.close(),
            Outcome::WhenEmpty => self.reap(job),
        }
    }

    /// Keeps a job to remove once empty; the lock is dropped meanwhile, so others may open it.
    fn reap(&mut self, mut job: Job) {
        let _ = dir::unlock(job.fd());
        if self.group_tags(job.group) & V2 != 0 {
            if let Ok(events) = dir::open_read(job.fd(), "cgroup.events") {
                job.events = events.into_raw_fd();
            }
        }
        if let Err(_full) = self.reaping.push(job) {
            job.close();
        }
    }

    /// Looks at the jobs waiting to empty: removes those that have; drops those that another
    /// process holds now (it removes them when it closes them).
    fn settle_reaping(&mut self) {
        let mut index = self.reaping.len();
        while index > 0 {
            index -= 1;
            let Some(&job) = self.reaping.as_slice().get(index) else {
                continue;
            };
            let held_by_other = !dir::try_lock(job.fd(), true).unwrap_or(false);
            let outcome = match held_by_other {
                true => Outcome::Done,
                false => duty::remove(self, &job),
            };
            if let Outcome::Done = outcome {
                if let Some(job) = self.reaping.swap_remove(index) {
                    job.close();
                }
            } else {
                let _ = dir::unlock(job.fd());
            }
        }
    }

    /// The tags of every parent in a group, together.
    pub(super) fn group_tags(&self, group: usize) -> u8 {
        self.group(group).fold(0, |tags, p| tags | p.tags)
    }

    /// The parents of a group, its primary one first.
    pub(super) fn group(&self, group: usize) -> impl Iterator<Item = &Parent> {
        self.parents
            .as_slice()
            .iter()
            .filter(move |p| p.group == group)
    }

    /// The group's parent in the v1 freezer hierarchy.
    pub(super) fn freezer(&self, group: usize) -> Option<&Parent> {
        self.group(group).find(|p| p.tags & FREEZER != 0)
    }
}

/// How long to wait before trying a locked job again.
fn retry_delay(tries: u32) -> Duration {
    Duration::from_millis((1u64 << tries.min(7)).min(100))
}
