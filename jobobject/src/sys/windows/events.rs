//! Notifications: one I/O completion port for the whole process, and one thread that reads it
//! for every job (not a thread per job).
//!
//! A job created or opened with [`Options::notifications`](crate::Options::notifications) is
//! associated with the port under a completion key of its own; each such handle adds a
//! listener, an unbounded [`Queue`], to the job's entry, and the thread turns every
//! `JOB_OBJECT_MSG_*` packet into a [`Notification`] for each listener. A job can be
//! associated with one port only, and only once, so two handles of this process on the same
//! named job share one entry; the key of a named job is remembered after its last listener
//! left, for a handle that opens it again.
//!
//! # Never losing `AllProcessesExited`
//! Windows documents that delivery to the port is not guaranteed, and `TerminateJobObject`
//! returns before the processes are gone. So the thread does not rely on
//! `JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO` alone. Each entry knows whether the job holds processes
//! (`populated`: set by a new process, a successful `assign`/`spawn`, or a count read back),
//! and reconciles that with the job's active process count: every 2 s while populated, soon
//! after a process exits, and quickly after `terminate`. When the count has stayed 0 for a
//! grace period, with the port drained (so a pending message would have been seen), and no
//! ACTIVE_PROCESS_ZERO came, the thread reports `AllProcessesExited` itself, and remembers to
//! swallow that ZERO should it still come. Each emptying is reported once.

use std::collections::HashMap;
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

/// The completion key of the packets that only wake the thread.
const WAKE_KEY: usize = 0;
/// How long the active count must stay 0, with the port drained, before the thread reports an
/// emptying whose ACTIVE_PROCESS_ZERO did not come.
const ZERO_GRACE: Duration = Duration::from_millis(100);
/// The slowest reconciliation, while a job holds processes.
const SLOW_CHECK: Duration = Duration::from_secs(2);
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
    /// Keys of named jobs whose last listener left: the kernel object (if it still exists)
    /// stays associated with the port under that key.
    retired: HashMap<String, usize>,
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
    /// The job holds processes, as far as the messages and the counts tell.
    populated: bool,
    /// Emptyings reported without their ACTIVE_PROCESS_ZERO, which may still come.
    expect_zero: u32,
    /// When the active count was first seen 0 while `populated`.
    zero_seen: Option<Instant>,
    next_check: Option<Instant>,
    interval: Duration,
    /// Handles of the job's processes, opened when they joined, for their exit codes.
    processes: HashMap<u32, OwnedHandle>,
}

static PORT: OnceLock<&'static Port> = OnceLock::new();
static START: Mutex<()> = Mutex::new(());

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
    let key = retired.unwrap_or_else(|| {
        let key = jobs.next_key;
        jobs.next_key += 1;
        key
    });
    let association = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
        CompletionKey: key as *mut c_void,
        CompletionPort: raw(&port.handle),
    };
    if let Err(err) = info::set(
        raw(job),
        JobObjectAssociateCompletionPortInformation,
        &association,
    ) {
        // A job that this process watched before is still associated with the port under
        // its old key: the association cannot be made twice, and need not be.
        let still_ours =
            retired.is_some() && err.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32);
        if !still_ours {
            return Err(errors::os(
                label,
                "associate the job with this process's completion port (a job reports to one \
                 port only, once: is another process watching it?)",
                err,
            ));
        }
    }
    let own = job
        .try_clone()
        .map_err(|err| errors::os(label, "DuplicateHandle", err))?;
    let populated = info::active_processes(raw(&own)).is_ok_and(|count| count > 0);
    let entry = Arc::new(Entry {
        name: name.map(str::to_owned),
        state: Mutex::new(State::new(own, (listener, Arc::clone(&queue)), populated)),
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

/// The key a job's name is known by: without a leading `Local\` (the namespace a plain name
/// is in). Names are compared as they are, as Windows compares them: `LOCAL\NAME` and `name`
/// are other jobs.
fn name_key(name: &str) -> String {
    name.strip_prefix("Local\\").unwrap_or(name).to_owned()
}

/// A process was put in the job by this process (`assign` or `spawn`): the job is populated
/// even should its NEW_PROCESS message be lost, if the count says so. (A process that has
/// already exited is left to its messages: its NEW_PROCESS and ZERO may have been handled
/// already, and marking the job populated now would report that emptying twice.)
pub(super) fn started(registration: Option<&Registration>, name: Option<&str>) {
    with_entry(registration, name, |state| {
        let active = state
            .job
            .as_ref()
            .and_then(|job| info::active_processes(raw(job)).ok());
        if active.is_some_and(|count| count > 0) {
            state.populated = true;
            state.zero_seen = None;
            state.interval = SLOW_CHECK;
            state.schedule(Instant::now() + SLOW_CHECK);
        }
    });
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
        state.job = None;
        state.processes.clear();
        state.next_check = None;
        drop(state);
        jobs.by_key.remove(&registration.key);
        if let Some(name) = &entry.name {
            jobs.by_name.remove(name);
            jobs.retired.insert(name.clone(), registration.key);
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
    fn new(job: OwnedHandle, listener: (u64, Arc<Queue>), populated: bool) -> Self {
        State {
            job: Some(job),
            listeners: vec![listener],
            populated,
            expect_zero: 0,
            zero_seen: None,
            next_check: populated.then(|| Instant::now() + SLOW_CHECK),
            interval: SLOW_CHECK,
            processes: HashMap::new(),
        }
    }

    /// One packet of the job: its notification for every listener, and what it tells of the
    /// job's processes.
    fn on_message(&mut self, message: u32, pid: u32, now: Instant) {
        let notification = match message {
            JOB_OBJECT_MSG_NEW_PROCESS => {
                self.populated = true;
                self.zero_seen = None;
                self.track(pid);
                self.schedule(now + self.interval);
                Some(Notification::NewProcess { pid })
            }
            JOB_OBJECT_MSG_EXIT_PROCESS | JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS => {
                let exit_code = self.exit_code(pid);
                // Should this exit have emptied the job and its ZERO be lost, the count
                // tells soon.
                self.schedule(now + ZERO_GRACE);
                Some(if message == JOB_OBJECT_MSG_EXIT_PROCESS {
                    Notification::ProcessExited { pid, exit_code }
                } else {
                    Notification::AbnormalProcessExit { pid, exit_code }
                })
            }
            JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO => {
                if self.expect_zero > 0 {
                    // The ZERO of an emptying already reported; should it be a later one
                    // (the earlier ZERO was lost), the count tells.
                    self.expect_zero -= 1;
                    if self.populated {
                        self.schedule(now);
                    }
                } else if self.populated {
                    self.report_empty();
                }
                None
            }
            // A silo's end: its processes are gone; the count confirms it.
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

    fn push(&self, notification: Notification) {
        for (_, queue) in &self.listeners {
            queue.push(notification);
        }
    }

    /// Checks no later than `at`.
    fn schedule(&mut self, at: Instant) {
        self.next_check = Some(self.next_check.map_or(at, |next| next.min(at)));
    }

    fn report_empty(&mut self) {
        self.push(Notification::AllProcessesExited);
        self.populated = false;
        self.zero_seen = None;
        self.next_check = None;
        self.interval = SLOW_CHECK;
        self.processes.clear();
    }

    /// Reconciles with the job's active process count.
    fn check(&mut self, now: Instant, idle: bool) {
        self.next_check = None;
        let Some(job) = &self.job else {
            return;
        };
        let active = match info::active_processes(raw(job)) {
            Ok(active) => active,
            Err(_) => {
                self.schedule(now + SLOW_CHECK);
                return;
            }
        };
        if active > 0 {
            self.populated = true;
            self.zero_seen = None;
            self.schedule(now + self.interval);
            self.interval = (self.interval * 2).min(SLOW_CHECK);
            return;
        }
        if !self.populated {
            self.zero_seen = None;
            return;
        }
        match self.zero_seen {
            None => {
                self.zero_seen = Some(now);
                self.schedule(now + ZERO_GRACE);
            }
            // Empty for the grace period, the port drained and no ZERO: it was lost.
            Some(seen) if idle && now.duration_since(seen) >= ZERO_GRACE => {
                self.report_empty();
                self.expect_zero += 1;
            }
            // Not idle yet: check again as soon as the port is drained.
            Some(seen) => self.schedule((seen + ZERO_GRACE).max(now)),
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
#[cfg(test)]
mod tests;
