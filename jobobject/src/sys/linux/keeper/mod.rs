//! The keeper: what acts for a process's jobs when that process ends without closing them.
//!
//! A process that ends (killed, `process::exit`, `abort`, a panic with `panic = "abort"`) or
//! `exec`s loses its handles without running their close. The kernel releases their locks,
//! but nothing would kill a kill-on-close job or remove an empty one. So the first handle that
//! holds a job in a process starts that process's keeper: one small process per owner
//! process (not per job, and not a thread, which would die with its owner), cloned without
//! `exec` (see `launch`), that waits for its owner's end and then does, for each job its owner
//! still held, what the owner's last close would have done (see `duty`).
//!
//! - **Which jobs:** every job this process holds carries an extended attribute named after a
//!   random token of this process (`user.jobobject.holder.<token>`), set when it starts
//!   holding the job and removed when it stops (a removed job takes its attributes with it).
//!   The keeper knows the job parents this process uses (their descriptors are sent over the
//!   socket below, once per parent), and at the end looks in them for its owner's mark. The
//!   keeper holds no job open: a job costs it nothing until the owner's end.
//! - **The owner's end:** the keeper polls a pidfd of its owner (readable once the owner has
//!   exited, its descriptors and locks released), and its end of a socket pair whose other
//!   end only the owner holds, close-on-exec (end of file once the owner exits or `exec`s).
//! - **Its duty:** for each marked job, the keeper takes the job's lock exclusively, as the
//!   last close does. If another process still holds the job, it is that process's to close.
//!   Else the keeper kills it if it is marked kill-on-close, and removes it (now, or once
//!   empty) if this library made it and it is not persistent.
//! - **Its end:** it exits once its owner is gone and no job it acts for is left. A keeper
//!   whose owner is still running stays, idle, for the owner's next job.
//!
//! Linux 7.1's `CLONE_PIDFD_AUTOKILL` kills a child when the last pidfd to it closes: it ties
//! one process, not a tree, to its owner, and cannot remove a cgroup, so the keeper does not
//! use it (`cgroup.kill` is what kills the tree).

mod duty;
mod launch;
mod raw;
mod watch;

use std::fmt::Write;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::net::{AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::net::{SocketFlags, SocketType};

use super::cgroup::{JobCgroups, dir};
use raw::Name;

/// The most parents a message carries: one per hierarchy of the layout.
const MAX_PARENTS: usize = 32;
/// A parent's tags: the v2 hierarchy (`cgroup.kill`, `cgroup.events`), and the v1 freezer.
const V2: u8 = 1;
const FREEZER: u8 = 2;

/// This process's link to its keeper.
struct Link {
    /// The process this link is for: a child forked without `exec` needs its own.
    pid: u32,
    /// The attribute that marks the jobs this process holds.
    mark: Name,
    /// Our end of the socket pair, while a keeper runs.
    socket: Option<OwnedFd>,
    /// The keeper's pid, while it runs.
    keeper: Option<u32>,
    /// The parents sent to the keeper: each group's primary parent, with the hierarchies
    /// (as bits of their indices in the layout) sent for it.
    sent: Vec<(Arc<OwnedFd>, u64)>,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

impl Link {
    fn new(pid: u32) -> Option<Self> {
        let mut token = [0u8; 16];
        rustix::rand::getrandom(&mut token, rustix::rand::GetRandomFlags::empty()).ok()?;
        let mut text = String::from("user.jobobject.holder.");
        for byte in token {
            let _ = write!(text, "{byte:02x}");
        }
        Some(Link {
            pid,
            mark: Name::new(text.as_bytes())?,
            socket: None,
            keeper: None,
            sent: Vec::new(),
        })
    }

    /// A running keeper's socket, starting one if there is none (or it died).
    fn socket(&mut self) -> Option<BorrowedFd<'_>> {
        if self
            .socket
            .as_ref()
            .is_some_and(|s| launch::peer_gone(s.as_fd()))
        {
            self.socket = None;
        }
        if self.socket.is_none() {
            self.sent.clear();
            self.keeper = None;
            self.socket = self.start();
        }
        self.socket.as_ref().map(AsFd::as_fd)
    }

    fn start(&mut self) -> Option<OwnedFd> {
        let flags = SocketFlags::CLOEXEC;
        let (ours, theirs) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)
                .ok()?;
        let pidfd = launch::own_pidfd();
        self.keeper = Some(launch::launch(&theirs, pidfd.as_ref(), self.mark).ok()?);
        Some(ours)
    }

    /// Sends the keeper the parents of `cgroups` it does not have yet: the primary one first,
    /// which names the group.
    fn send_parents(&mut self, cgroups: &JobCgroups) -> rustix::io::Result<()> {
        let Some(primary) = cgroups.primary_parent() else {
            return Ok(());
        };
        let index = self.sent.iter().position(|(p, _)| Arc::ptr_eq(p, primary));
        let known = index.map_or(0, |i| self.sent[i].1);
        let others = cgroups.kept_parents(known);
        if index.is_some() && others.is_empty() {
            return Ok(());
        }
        let tag = |v2: bool, freezer: bool| (u8::from(v2) * V2) | (u8::from(freezer) * FREEZER);
        let mut fds = vec![primary.as_fd()];
        let (v2, freezer) = cgroups.primary_kind();
        let mut tags = vec![tag(v2, freezer)];
        for parent in others.iter().take(MAX_PARENTS - 1) {
            fds.push(parent.as_fd());
            tags.push(tag(parent.v2, parent.freezer));
        }
        let Some(socket) = self.socket() else {
            return Ok(());
        };
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PARENTS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            socket,
            &[IoSlice::new(&tags)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        let mask = others
            .iter()
            .filter(|p| p.hierarchy < 64)
            .fold(known, |m, p| m | 1 << p.hierarchy);
        match index {
            Some(i) => self.sent[i].1 = mask,
            None => self.sent.push((Arc::clone(primary), mask)),
        }
        Ok(())
    }
}

/// This process starts holding the job: makes sure a keeper runs and knows the job's parents,
/// and marks the job as held by this process. Best effort: a process that cannot start a
/// keeper (out of processes or memory) still holds its jobs, without the keeper's protection.
pub(crate) fn hold(cgroups: &JobCgroups) {
    let mut link = LINK.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if link.as_ref().is_none_or(|l| l.pid != pid) {
        *link = Link::new(pid);
    }
    let Some(link) = link.as_mut() else { return };
    if link.socket().is_none() {
        return;
    }
    if link.send_parents(cgroups).is_err() {
        // The keeper went meanwhile: one more, told everything again.
        link.socket = None;
        if link.socket().is_none() || link.send_parents(cgroups).is_err() {
            return;
        }
    }
    let _ = dir::set_mark(cgroups.primary_fd(), link.mark.as_cstr());
}

/// The pid of this process's keeper, while one runs.
pub(crate) fn keeper_pid() -> Option<u32> {
    let mut link = LINK.lock().unwrap_or_else(PoisonError::into_inner);
    let link = link.as_mut().filter(|l| l.pid == std::process::id())?;
    let socket = link.socket.as_ref()?;
    if launch::peer_gone(socket.as_fd()) {
        link.socket = None;
        link.keeper = None;
    }
    link.keeper
}

/// The job has a directory in one more hierarchy (made on demand): the keeper of this
/// process, if one runs, learns its parent.
pub(crate) fn parents_changed(cgroups: &JobCgroups) {
    let mut link = LINK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(link) = link
        .as_mut()
        .filter(|l| l.pid == std::process::id() && l.socket.is_some())
    {
        let _ = link.send_parents(cgroups);
    }
}

/// This process no longer holds the job (and did not remove it): the keeper must leave it be.
pub(crate) fn let_go(cgroups: &JobCgroups) {
    let link = LINK.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(link) = link.as_ref().filter(|l| l.pid == std::process::id()) {
        let _ = dir::remove_mark(cgroups.primary_fd(), link.mark.as_cstr());
    }
}
