use super::*;
use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, CreateJobObjectW};

/// An anonymous job that held one process, gone now, and a queue for its notifications.
fn job_with_an_exited_process() -> (OwnedHandle, Arc<Queue>) {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    const CREATE_SUSPENDED: u32 = 0x4;
    // SAFETY: an anonymous job with default security.
    let job = owned(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) }).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .creation_flags(CREATE_SUSPENDED)
        .spawn()
        .unwrap();
    // SAFETY: both handles are open for the call.
    let assigned = unsafe { AssignProcessToJobObject(raw(&job), child.as_raw_handle()) };
    assert_ne!(assigned, 0, "{}", io::Error::last_os_error());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        counts(&job).unwrap(),
        Counts {
            total: 1,
            active: 0
        }
    );
    (job, Arc::new(Queue::new()))
}

/// The state of a job that held one process, gone now, as if watched when its counts were
/// `total` and `active`; and the queue of its listener.
fn watched_from(total: u32, active: u32) -> (State, Arc<Queue>) {
    let (job, queue) = job_with_an_exited_process();
    let state = State::new(job, (1, Arc::clone(&queue)), Counts { total, active });
    (state, queue)
}

/// The messages queued so far (a marker ends them: `pop` blocks on an empty queue).
fn drain(queue: &Queue) -> Vec<Notification> {
    queue.push(Notification::Unimplemented);
    let mut seen = Vec::new();
    loop {
        match queue.pop().unwrap() {
            Notification::Unimplemented => return seen,
            other => seen.push(other),
        }
    }
}

#[test]
fn a_lost_zero_is_reported_once_from_the_jobs_counts() {
    let (mut state, queue) = watched_from(0, 0);
    let start = Instant::now();
    state.check(start, true);
    assert_eq!(drain(&queue), [], "reported before the grace period");
    assert_eq!(state.next_check, Some(start + GRACE));
    // The port is still busy: a pending message could be the ZERO.
    state.check(start + GRACE, false);
    assert_eq!(drain(&queue), []);
    state.check(start + GRACE, true);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
    // The late ZERO of that emptying is not reported again, nor is the next check.
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, start + GRACE * 2);
    state.check(start + GRACE * 3, true);
    assert_eq!(drain(&queue), []);
}

#[test]
fn a_zero_that_comes_is_reported_at_once_and_once() {
    let (mut state, queue) = watched_from(1, 1);
    let now = Instant::now();
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, now);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
    state.check(now + GRACE * 2, true);
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, now);
    assert_eq!(drain(&queue), [], "a second report of one emptying");
}

#[test]
fn every_message_has_a_notification() {
    let (mut state, queue) = watched_from(1, 0);
    let now = Instant::now();
    let pid = 4;
    for (message, expected) in [
        (JOB_OBJECT_MSG_END_OF_JOB_TIME, Notification::EndOfJobTime),
        (
            JOB_OBJECT_MSG_END_OF_PROCESS_TIME,
            Notification::EndOfProcessTime { pid },
        ),
        (
            JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT,
            Notification::ActiveProcessLimit,
        ),
        (
            JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT,
            Notification::ProcessMemoryLimit { pid },
        ),
        (
            JOB_OBJECT_MSG_JOB_MEMORY_LIMIT,
            Notification::JobMemoryLimit,
        ),
        (
            JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT,
            Notification::EndOfJobTime,
        ),
        (JOB_OBJECT_MSG_NEW_PROCESS, Notification::NewProcess { pid }),
        (
            JOB_OBJECT_MSG_EXIT_PROCESS,
            Notification::ProcessExited {
                pid,
                exit_code: None,
            },
        ),
    ] {
        state.on_message(message, pid, now);
        assert_eq!(drain(&queue), [expected], "message {message}");
    }
    state.on_message(99, pid, now);
    state.push(Notification::JobMemoryLimit);
    // An unknown message is Unimplemented (which `drain` uses as its marker).
    assert_eq!(drain(&queue), []);
}

/// Windows 8 and later let a job go of its port, so that another can watch it; Wine 8 keeps it
/// on the first port, which is why a retired key must be known to be the same job.
#[test]
fn a_job_let_go_of_its_port_can_report_to_another() {
    let (job, _) = job_with_an_exited_process();
    let port = || {
        // SAFETY: a new port, not tied to a file.
        owned(unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) })
            .unwrap()
    };
    let (first, second) = (port(), port());
    associate(&job, 1, &first).unwrap();
    assert!(associate(&job, 2, &second).is_err(), "two ports at once");
    if dissociate(&job) {
        associate(&job, 2, &second).unwrap();
        eprintln!("the job was let go of its port");
    } else {
        assert!(
            wine_version().is_some(),
            "Windows refused to let a job go of its port"
        );
        assert!(associate(&job, 2, &second).is_err());
        eprintln!("Wine keeps a job on its first port");
    }
}

#[test]
fn names_are_keyed_as_windows_compares_them() {
    assert_eq!(name_key("build"), "build");
    assert_eq!(name_key("Local\\build"), "build");
    // Names, and the namespace prefix, are case-sensitive; another namespace is another job.
    assert_ne!(name_key("BUILD"), name_key("build"));
    assert_ne!(name_key("LOCAL\\build"), name_key("build"));
    assert_ne!(name_key("Global\\build"), name_key("build"));
    assert_eq!(name_key("Local"), "Local");
}
