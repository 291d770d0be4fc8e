use super::*;
use windows_sys::Win32::System::JobObjects::CreateJobObjectW;

/// An empty anonymous job, and a state that believes it holds processes: as if every
/// process exited and the ACTIVE_PROCESS_ZERO was lost.
fn lost_zero() -> (State, Arc<Queue>) {
    // SAFETY: an anonymous job with default security.
    let job = owned(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) }).unwrap();
    let queue = Arc::new(Queue::new());
    (State::new(job, (1, Arc::clone(&queue)), true), queue)
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
fn a_lost_zero_is_reported_once_after_the_grace_period() {
    let (mut state, queue) = lost_zero();
    let start = Instant::now();
    state.check(start, true);
    assert_eq!(drain(&queue), [], "reported before the grace period");
    // The port is still busy: a pending message could be the ZERO.
    state.check(start + ZERO_GRACE, false);
    assert_eq!(drain(&queue), []);
    state.check(start + ZERO_GRACE, true);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
    assert_eq!(state.next_check, None);
    // The late ZERO of that emptying is swallowed, not reported again.
    state.on_message(
        JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO,
        0,
        start + ZERO_GRACE * 2,
    );
    assert_eq!(drain(&queue), []);
    assert_eq!(state.expect_zero, 0);
}

#[test]
fn a_zero_that_comes_is_reported_at_once_and_once() {
    let (mut state, queue) = lost_zero();
    let now = Instant::now();
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, now);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
    state.check(now + ZERO_GRACE * 2, true);
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, now);
    assert_eq!(drain(&queue), [], "a second report of one emptying");
}

#[test]
fn a_stale_expected_zero_does_not_hide_the_next_emptying() {
    let (mut state, queue) = lost_zero();
    let start = Instant::now();
    state.check(start, true);
    state.check(start + ZERO_GRACE, true);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
    // The ZERO of the first emptying never comes; a new process joins and exits, and its
    // ZERO is taken for the expected one: the count still reports the emptying.
    state.on_message(JOB_OBJECT_MSG_NEW_PROCESS, 0, start);
    state.on_message(JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, start);
    assert_eq!(drain(&queue), [Notification::NewProcess { pid: 0 }]);
    let at = state.next_check.unwrap();
    state.check(at, true);
    state.check(at + ZERO_GRACE, true);
    assert_eq!(drain(&queue), [Notification::AllProcessesExited]);
}

#[test]
fn every_message_has_a_notification() {
    let (mut state, queue) = lost_zero();
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
