//! Notifications: one I/O completion port for the whole process, and one thread that reads it
//! for every job (not a thread per job).
//!
//! A job created or opened with [`Options::notifications`](crate::Options::notifications) is
//! associated with the port under a completion key of its own; each such handle adds a
//! listener, an unbounded [`Queue`], to the job's entry, and the thread turns every
//! `JOB_OBJECT_MSG_*` packet into a [`Notification`] for each listener. A job can be
//! associated with one port at a time, so two handles of this process on the same named job
//! share one entry. When its last listener leaves, the job is let go of the port (Windows 8
//! and later); where the system refuses that (Wine), see [`register`].
//!
//! # Never losing `AllProcessesExited`
//! Windows documents that delivery to the port is not guaranteed, and `TerminateJobObject`
//! returns before the processes are gone. So the thread does not rely on
//! `JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO` alone: every emptying it reports is decided from the
//! job's accounting ([`emptying`]), read on each ZERO and on checks of its own: soon after an
//! exit, quickly after `terminate`, every 2 s while the job holds processes and every 10 s
//! while it does not. Each emptying is reported once.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::io;
use std::os::windows::io::OwnedHandle;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{ERROR_INVALID_PARAMETER, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED, PostQueuedCompletionStatus,
};
use windows_sys::Win32::System::JobObjects::{
    JOB_OBJECT_LIMIT_JOB_MEMORY, JOB_OBJECT_LIMIT_JOB_TIME, JOBOBJECT_ASSOCIATE_COMPLETION_PORT,
    JOBOBJECT_LIMIT_VIOLATION_INFORMATION, JobObjectAssociateCompletionPortInformation,
    JobObjectLimitViolationInformation,
};
use windows_sys::Win32::System::SystemServices::{
    JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT,
    JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, JOB_OBJECT_MSG_END_OF_JOB_TIME,
    JOB_OBJECT_MSG_END_OF_PROCESS_TIME, JOB_OBJECT_MSG_EXIT_PROCESS,
    JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT, JOB_OBJECT_MSG_JOB_MEMORY_LIMIT,
    JOB_OBJECT_MSG_NEW_PROCESS, JOB_OBJECT_MSG_NOTIFICATION_LIMIT,
    JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT, JOB_OBJECT_MSG_SILO_TERMINATED,
};
use windows_sys::Win32::System::Threading::{INFINITE, PROCESS_QUERY_LIMITED_INFORMATION};

use super::errors;
use super::handle::{owned, raw, wine_version};
use super::info;
use super::process;
use crate::events::Queue;
use crate::{Error, Notification};

pub(super) use empty::{EmptyWatch, watch as watch_empty};
use emptying::{Counts, Emptying, GRACE};

/// The completion key of the packets that only wake the thread.
const WAKE_KEY: usize = 0;
/// The slowest check while a job holds processes.
const SLOW_CHECK: Duration = Duration::from_secs(2);
/// The check of a job that holds no process: processes may come and go with every message
/// lost.
const IDLE_CHECK: Duration = Duration::from_secs(10);
/// The first reconciliation after `terminate`; the interval then doubles up to `SLOW_CHECK`.
const FAST_CHECK: Duration = Duration::from_millis(5);

/// This handle's place among the listeners of a job; dropping it leaves.
#[derive(Debug)]
pub(super) struct Registration {
    key: usize,
    listener: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(port) = PORT.get() {
            port.unregister(self);
        }
    }
}

/// The process-wide port, and the jobs associated with it.
struct Port {
    handle: OwnedHandle,
    jobs: Mutex<Jobs>,
    /// Calls waiting for a job to be empty.
    empties: Mutex<empty::Watches>,
}

/// Every job that has listeners, by completion key and by name.
#[derive(Default)]
struct Jobs {
    next_key: usize,
    next_listener: u64,
    by_key: HashMap<usize, Arc<Entry>>,
    by_name: HashMap<String, usize>,
    /// Named jobs whose last listener left where the system could not let them go of the
    /// port: the kernel object (if it still exists) stays associated with it.
    retired: HashMap<String, Retired>,
}

/// A named job still associated with the port, without listeners.
#[derive(Debug, Clone, Copy)]
struct Retired {
    key: usize,
    /// This process has held a handle on the job ever since: it is the same job.
    held: bool,
}

/// One job with listeners in this process.
struct Entry {
    name: Option<String>,
    state: Mutex<State>,
}

/// What the thread knows of a job.
struct State {
    /// A handle of its own for the counts (so that it outlives any one listener's); dropped
    /// with the last listener, so that it never keeps a kill-on-close job alive.
    job: Option<OwnedHandle>,
    listeners: Vec<(u64, Arc<Queue>)>,
    /// When the job emptied, from its counts.
    emptying: Emptying,
    /// The job held processes when its counts were last read.
    busy: bool,
    next_check: Option<Instant>,
    /// The next check's distance while busy: short after `terminate`, doubling to `SLOW_CHECK`.
    interval: Duration,
    /// Handles of the job's processes, opened when they joined, for their exit codes.
    processes: HashMap<u32, OwnedHandle>,
}

/// This process's hold on a named job while one of its handles is open: while any is, the job
/// cannot have been destroyed, and its name taken by another.
#[derive(Debug)]
pub(super) struct Hold {
    name: String,
}

/// How many handles this process holds on each named job, by [`name_key`].
static HELD: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// Counts a handle on the job named `name`, until the hold is dropped (before the handle
/// closes).
pub(super) fn hold(name: &str) -> Hold {
    let name = name_key(name);
    *lock(&HELD).entry(name.clone()).or_default() += 1;
    Hold { name }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = lock(&HELD);
        let Some(count) = held.get_mut(&self.name) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        held.remove(&self.name);
        drop(held);
        // Once this handle closes, the job may go and its name be taken.
        if let Some(port) = PORT.get() {
            if let Some(retired) = lock(&port.jobs).retired.get_mut(&self.name) {
                retired.held = false;
            }
        }
    }
}

static PORT: OnceLock<&'static Port> = OnceLock::new();
static START: Mutex<()> = Mutex::new(());

/// The job's process counts, read together.
fn counts(job: &OwnedHandle) -> io::Result<Counts> {
    let accounting = info::accounting(raw(job))?;
    Ok(Counts {
        total: accounting.TotalProcesses,
        active: accounting.ActiveProcesses,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update of the guarded state is complete before anything can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The port, created with its thread on first use.
fn port(label: &str) -> Result<&'static Port, Error> {
    if let Some(port) = PORT.get() {
        return Ok(port);
    }
    let _start = lock(&START);
    if let Some(port) = PORT.get() {
        return Ok(port);
    }
    // SAFETY: INVALID_HANDLE_VALUE with no existing port creates a new port not tied to a file.
    let raw_port =
        unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) };
    let handle = owned(raw_port).map_err(|err| errors::os(label, "CreateIoCompletionPort", err))?;
    let port: &'static Port = Box::leak(Box::new(Port {
        handle,
        jobs: Mutex::new(Jobs {
            next_key: WAKE_KEY + 1,
            ..Jobs::default()
        }),
        empties: Mutex::default(),
    }));
    std::thread::Builder::new()
        .name("jobobject-events".to_owned())
        .spawn(move || port.run())
        .map_err(|err| errors::os(label, "start the notification thread", err))?;
    Ok(PORT.get_or_init(|| port))
}

/// Adds a listener for `job` (named `name`): its queue, and the registration that removes it.
pub(super) fn register(
    job: &OwnedHandle,
    name: Option<&str>,
    label: &str,
) -> Result<(Registration, Arc<Queue>), Error> {
    let port = port(label)?;
    let queue = Arc::new(Queue::new());
    // The same job under another spelling (`Local\NAME`) is the same entry: `Local\` is the
    // default namespace.
    let name = name.map(name_key);
    let name = name.as_deref();
    let mut jobs = lock(&port.jobs);
    let listener = jobs.next_listener;
    jobs.next_listener += 1;

    let existing = name
        .and_then(|name| jobs.by_name.get(name).copied())
        .and_then(|key| jobs.by_key.get(&key).map(|entry| (key, Arc::clone(entry))));
    if let Some((key, entry)) = existing {
        lock(&entry.state)
            .listeners
            .push((listener, Arc::clone(&queue)));
        return Ok((Registration { key, listener }, queue));
    }

    let retired = name.and_then(|name| jobs.retired.get(name).copied());
    // A retired key is ours if this process held the job all along: it is the same job.
    let ours = retired
        .filter(|retired| retired.held)
        .map(|retired| retired.key);
    let key = ours.unwrap_or_else(|| {
        let key = jobs.next_key;
        jobs.next_key += 1;
        key
    });
    if let Err(err) = associate(job, key, &port.handle) {
        let taken = err.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32);
        match (taken, ours, retired) {
            // Still associated with our port under its old key: nothing to do.
            (true, Some(_), _) => {}
            (true, None, Some(_)) => return Err(unsure_whose(label)),
            (true, None, None) => return Err(watched_elsewhere(label)),
            (false, ..) => {
                return Err(errors::os(
                    label,
                    "associate the job with this process's completion port",
                    err,
                ));
            }
        }
    }
    let own = job
        .try_clone()
        .map_err(|err| errors::os(label, "DuplicateHandle", err))?;
    let counts = counts(&own).map_err(|err| errors::os(label, "read the job's accounting", err))?;
    let entry = Arc::new(Entry {
        name: name.map(str::to_owned),
        state: Mutex::new(State::new(own, (listener, Arc::clone(&queue)), counts)),
    });
    jobs.by_key.insert(key, entry);
    if let Some(name) = name {
        jobs.by_name.insert(name.to_owned(), key);
        jobs.retired.remove(name);
    }
    drop(jobs);
    port.wake();
    Ok((Registration { key, listener }, queue))
}

/// Associates `job` with `port` under `key`.
fn associate(job: &OwnedHandle, key: usize, port: &OwnedHandle) -> io::Result<()> {
    let association = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
        CompletionKey: key as *mut c_void,
        CompletionPort: raw(port),
    };
    info::set(
        raw(job),
        JobObjectAssociateCompletionPortInformation,
        &association,
    )
}

/// Lets `job` go of the port, so that a handle opened later (here or in another process) can
/// watch it. Windows 8 and later allow it; Wine 8 does not.
fn dissociate(job: &OwnedHandle) -> bool {
    let none = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
        CompletionKey: std::ptr::null_mut(),
        CompletionPort: std::ptr::null_mut(),
    };
    info::set(raw(job), JobObjectAssociateCompletionPortInformation, &none).is_ok()
}

/// The job reports to another port: a job has one at a time.
fn watched_elsewhere(label: &str) -> Error {
    Error::Busy {
        what: format!(
            "job {label} reports to another process's completion port (a job reports to one \
             at a time): another process watches it, so this one cannot get its notifications"
        ),
    }
}

/// A job of a name this process watched before, let go of by every handle here since, and
/// that the system could not let go of the port: it may be that job, still reporting here, or
/// another of the same name that reports to another process.
fn unsure_whose(label: &str) -> Error {
    Error::Busy {
        what: format!(
            "job {label} reports to a completion port, and this process cannot tell whose: it \
             watched a job of that name before and has closed every handle on it since, and {}, \
             so this may be that job or one made since and watched by another process (keep a \
             handle on the job between watches to watch it again)",
            errors::lacks("let a job go of its port")
        ),
    }
}

/// The key a job's name is known by: without a leading `Local\` (the namespace a plain name
/// is in). Names are compared as they are, as Windows compares them: `LOCAL\NAME` and `name`
/// are other jobs.
fn name_key(name: &str) -> String {
    name.strip_prefix("Local\\").unwrap_or(name).to_owned()
}

/// A process was put in the job by this process (`assign` or `spawn`): its counts are read
/// now, so that the job is checked while busy even should its NEW_PROCESS message be lost.
pub(super) fn started(registration: Option<&Registration>, name: Option<&str>) {
    with_entry(registration, name, |state| state.schedule(Instant::now()));
}

/// The job was terminated: its processes are going, so the count is checked soon and often
/// until they are gone.
pub(super) fn terminated(registration: Option<&Registration>, name: Option<&str>) {
    with_entry(registration, name, |state| {
        state.interval = FAST_CHECK;
        state.next_check = Some(Instant::now());
    });
}

/// Runs `update` on the job's entry (by this handle's registration, else by name) and wakes
/// the thread for the new deadline.
fn with_entry(
    registration: Option<&Registration>,
    name: Option<&str>,
    update: impl FnOnce(&mut State),
) {
    let Some(port) = PORT.get() else {
        return;
    };
    let entry = {
        let jobs = lock(&port.jobs);
        let key = registration
            .map(|registration| registration.key)
            .or_else(|| name.and_then(|name| jobs.by_name.get(&name_key(name)).copied()));
        key.and_then(|key| jobs.by_key.get(&key).cloned())
    };
    if let Some(entry) = entry {
        let mut state = lock(&entry.state);
        if state.job.is_some() {
            update(&mut state);
        }
        drop(state);
        port.wake();
    }
}

impl Port {
    fn unregister(&self, registration: &Registration) {
        let mut jobs = lock(&self.jobs);
        let Some(entry) = jobs.by_key.get(&registration.key).cloned() else {
            return;
        };
        let mut state = lock(&entry.state);
        state
            .listeners
            .retain(|(listener, _)| *listener != registration.listener);
        if !state.listeners.is_empty() {
            return;
        }
        // Close our own handle now, whatever the thread holds: a kill-on-close job dies with
        // the caller's last handle.
        let let_go = state.job.take().is_some_and(|job| dissociate(&job));
        state.processes.clear();
        state.next_check = None;
        drop(state);
        jobs.by_key.remove(&registration.key);
        if let Some(name) = &entry.name {
            jobs.by_name.remove(name);
            if !let_go {
                // The unregistering handle still holds the job (see `Hold`).
                let retired = Retired {
                    key: registration.key,
                    held: true,
                };
                jobs.retired.insert(name.clone(), retired);
            }
        }
    }

    /// Makes the thread look at its deadlines again.
    fn wake(&self) {
        // SAFETY: posting a packet to our own port; a null OVERLAPPED is allowed.
        // A failure (out of memory) only delays the next check until the next packet.
        unsafe {
            PostQueuedCompletionStatus(raw(&self.handle), 0, WAKE_KEY, std::ptr::null());
        }
    }

    /// The thread: reads the port forever.
    fn run(&self) {
        loop {
            let timeout = self.timeout();
            let mut message = 0u32;
            let mut key = 0usize;
            let mut overlapped: *mut OVERLAPPED = std::ptr::null_mut();
            // SAFETY: the out-pointers are writable locals; the port lives for the process.
            let ok = unsafe {
                GetQueuedCompletionStatus(
                    raw(&self.handle),
                    &mut message,
                    &mut key,
                    &mut overlapped,
                    timeout,
                )
            };
            let mut idle = false;
            if ok != 0 {
                if key != WAKE_KEY {
                    // For job packets the "overlapped" pointer carries a process id.
                    self.deliver(key, message, overlapped as usize as u32);
                }
            } else if overlapped.is_null() {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(WAIT_TIMEOUT as i32) {
                    idle = true;
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            self.run_checks(idle);
        }
    }

    /// Milliseconds until the nearest check, for GetQueuedCompletionStatus.
    fn timeout(&self) -> u32 {
        let jobs = lock(&self.jobs);
        let next = jobs
            .by_key
            .values()
            .filter_map(|entry| lock(&entry.state).next_check)
            .chain(lock(&self.empties).next_due())
            .min();
        match next {
            None => INFINITE,
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                // Round up, so that the check is due when the wait ends.
                u32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(INFINITE - 1)
            }
        }
    }

    fn run_checks(&self, idle: bool) {
        let now = Instant::now();
        let due: Vec<Arc<Entry>> = lock(&self.jobs)
            .by_key
            .values()
            .filter(|entry| lock(&entry.state).next_check.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        for entry in due {
            lock(&entry.state).check(now, idle);
        }
        lock(&self.empties).run(now);
    }

    /// One packet of the job with completion key `key`.
    fn deliver(&self, key: usize, message: u32, pid: u32) {
        let Some(entry) = lock(&self.jobs).by_key.get(&key).cloned() else {
            return;
        };
        let mut state = lock(&entry.state);
        if state.job.is_none() {
            return;
        }
        state.on_message(message, pid, Instant::now());
    }
}

impl State {
    fn new(job: OwnedHandle, listener: (u64, Arc<Queue>), counts: Counts) -> Self {
        let mut state = State {
            job: Some(job),
            listeners: vec![listener],
            emptying: Emptying::new(counts),
            busy: counts.active > 0,
            next_check: None,
            interval: SLOW_CHECK,
            processes: HashMap::new(),
        };
        state.schedule_next(Instant::now());
        state
    }

    /// One packet of the job: its notification for every listener, and what it tells of the
    /// job's processes.
    fn on_message(&mut self, message: u32, pid: u32, now: Instant) {
        let notification = match message {
            JOB_OBJECT_MSG_NEW_PROCESS => {
                self.busy = true;
                self.track(pid);
                self.schedule(now + self.interval);
                Some(Notification::NewProcess { pid })
            }
            JOB_OBJECT_MSG_EXIT_PROCESS | JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS => {
                let exit_code = self.exit_code(pid);
                // Should this exit have emptied the job and its ZERO be lost, a check
                // reports it.
                self.schedule(now + GRACE);
                Some(if message == JOB_OBJECT_MSG_EXIT_PROCESS {
                    Notification::ProcessExited { pid, exit_code }
                } else {
                    Notification::AbnormalProcessExit { pid, exit_code }
                })
            }
            JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO => {
                self.on_zero(now);
                None
            }
            // A silo's end: its processes are gone; the counts confirm it.
            JOB_OBJECT_MSG_SILO_TERMINATED => {
                self.schedule(now);
                None
            }
            JOB_OBJECT_MSG_END_OF_JOB_TIME | JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT => {
                Some(Notification::EndOfJobTime)
            }
            JOB_OBJECT_MSG_END_OF_PROCESS_TIME => Some(Notification::EndOfProcessTime { pid }),
            JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT => Some(Notification::ActiveProcessLimit),
            JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT => Some(Notification::ProcessMemoryLimit { pid }),
            JOB_OBJECT_MSG_JOB_MEMORY_LIMIT => Some(Notification::JobMemoryLimit),
            JOB_OBJECT_MSG_NOTIFICATION_LIMIT => Some(self.violated_limit()),
            _ => Some(Notification::Unimplemented),
        };
        if let Some(notification) = notification {
            self.push(notification);
        }
    }

    /// An ACTIVE_PROCESS_ZERO: reported if the counts read now say it is news.
    fn on_zero(&mut self, now: Instant) {
        let Some(counts) = self.read_counts(now) else {
            return;
        };
        if self.emptying.on_zero(counts) {
            self.report_empty();
        }
        self.schedule_next(now);
    }

    fn push(&self, notification: Notification) {
        for (_, queue) in &self.listeners {
            queue.push(notification);
        }
    }

    /// Checks no later than `at`.
    fn schedule(&mut self, at: Instant) {
        self.next_check = Some(self.next_check.map_or(at, |next| next.min(at)));
    }

    /// Schedules the next check after one at `now`: by how busy the job is, and sooner should
    /// an emptying or an expected ZERO be due.
    fn schedule_next(&mut self, now: Instant) {
        let regular = if self.busy { self.interval } else { IDLE_CHECK };
        self.schedule(now + regular);
        if let Some(due) = self.emptying.due() {
            self.schedule(due.max(now));
        }
    }

    fn report_empty(&mut self) {
        self.push(Notification::AllProcessesExited);
        self.interval = SLOW_CHECK;
        // Every process known so far has exited.
        self.processes.clear();
    }

    /// The job's counts now, and whether it is busy; `None` (and a later check) if they
    /// cannot be read.
    fn read_counts(&mut self, now: Instant) -> Option<Counts> {
        let counts = counts(self.job.as_ref()?);
        match counts {
            Ok(counts) => {
                self.busy = counts.active > 0;
                Some(counts)
            }
            Err(_) => {
                self.schedule(now + SLOW_CHECK);
                None
            }
        }
    }

    /// A check of the job's counts, with the port drained (`idle`) or not.
    fn check(&mut self, now: Instant, idle: bool) {
        self.next_check = None;
        let Some(counts) = self.read_counts(now) else {
            return;
        };
        if self.emptying.on_check(counts, now, idle) {
            self.report_empty();
        }
        self.schedule_next(now);
        if self.busy {
            self.interval = (self.interval * 2).min(SLOW_CHECK);
        }
    }

    /// Keeps a handle on a new process, for its exit code (read when it exits, even if no
    /// other handle on it is left by then).
    ///
    /// Not under Wine: Wine 8's server crashed (a segfault, in about one run in five) when a
    /// job holding a child and a grandchild was terminated while this thread held handles on
    /// them, and never without those handles. Under Wine the exit code is read from a handle
    /// opened when the exit is reported.
    fn track(&mut self, pid: u32) {
        if wine_version().is_some() {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.processes.entry(pid) {
            if let Ok(process) = process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION) {
                slot.insert(process);
            }
        }
    }

    /// The exit code of a process that has just exited; `None` when it was gone, without a
    /// handle of ours left on it, before the code could be read.
    fn exit_code(&mut self, pid: u32) -> Option<u32> {
        let process = self
            .processes
            .remove(&pid)
            .or_else(|| process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok())?;
        process::exit_code(&process, Duration::from_millis(100)).ok()
    }

    /// Which limit a JOB_OBJECT_MSG_NOTIFICATION_LIMIT is about.
    fn violated_limit(&self) -> Notification {
        let Some(job) = &self.job else {
            return Notification::Unimplemented;
        };
        match info::query::<JOBOBJECT_LIMIT_VIOLATION_INFORMATION>(
            raw(job),
            JobObjectLimitViolationInformation,
        ) {
            Ok(violation) if violation.ViolationLimitFlags & JOB_OBJECT_LIMIT_JOB_MEMORY != 0 => {
                Notification::JobMemoryLimit
            }
            Ok(violation) if violation.ViolationLimitFlags & JOB_OBJECT_LIMIT_JOB_TIME != 0 => {
                Notification::EndOfJobTime
            }
            _ => Notification::Unimplemented,
        }
    }
}

mod empty;
mod emptying;
#[cfg(test)]
mod tests;
