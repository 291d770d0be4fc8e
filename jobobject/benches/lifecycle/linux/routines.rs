//! The routines: one timed operation each, of the library or of its baseline.

use super::*;

pub(super) fn plain_spawn() {
    let status = Command::new(TRUE).spawn().unwrap().wait().unwrap();
    assert!(status.success());
}

pub(super) fn hooked_spawn() {
    let mut command = Command::new(TRUE);
    // SAFETY: the hook does nothing.
    unsafe { command.pre_exec(|| Ok(())) };
    let status = command.spawn().unwrap().wait().unwrap();
    assert!(status.success());
}

pub(super) fn raw_join_spawn(raw: &RawJoin) {
    let status = raw.command(TRUE).spawn().unwrap().wait().unwrap();
    assert!(status.success());
}

/// The compatibility path: `job.spawn` of a std `Command`.
pub(super) fn job_spawn(job: &JobObject) {
    let status = job.spawn(&mut Command::new(TRUE)).unwrap().wait().unwrap();
    assert!(status.success());
}

/// The library's own builder.
pub(super) fn builder_spawn(job: &JobObject) {
    let mut child = jobobject::process::Command::new(TRUE).spawn(job).unwrap();
    assert!(child.wait().unwrap().success());
}

pub(super) fn create_close(options: &Options) {
    let job = JobObject::create(options).unwrap();
    job.close().unwrap();
}

/// SIGKILL to the job's only process `settle` after its spawn, until `AllProcessesExited`.
pub(super) fn exit_to_notification(
    job: &JobObject,
    settle: Duration,
    key: &'static str,
) -> Duration {
    let mut child = job.spawn(Command::new(SLEEP).arg("60")).unwrap();
    thread::sleep(settle);
    let t0 = Instant::now();
    child.kill().unwrap();
    let notification = job.poll_notification().unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(notification, Notification::AllProcessesExited);
    child.wait().unwrap();
    record(key, elapsed);
    elapsed
}

/// The same by hand: SIGKILL, then inotify wakeups until `cgroup.events` says empty.
pub(super) fn exit_to_inotify(raw: &RawWatch, settle: Duration) -> Duration {
    let mut command = raw.join.command(SLEEP);
    let mut child = command.arg("60").spawn().unwrap();
    thread::sleep(settle);
    raw.drain();
    let t0 = Instant::now();
    child.kill().unwrap();
    loop {
        let mut fds = [PollFd::new(&raw.inotify, PollFlags::IN)];
        poll(&mut fds, None).ok();
        raw.drain();
        if !raw.populated() {
            break;
        }
    }
    let elapsed = t0.elapsed();
    child.wait().unwrap();
    record("latency/inotify_floor", elapsed);
    elapsed
}

/// SIGKILL to a plain child `settle` after its spawn, until `wait` returns.
pub(super) fn exit_to_wait(settle: Duration) -> Duration {
    let mut child = Command::new(SLEEP).arg("60").spawn().unwrap();
    thread::sleep(settle);
    let t0 = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let elapsed = t0.elapsed();
    record("latency/wait", elapsed);
    elapsed
}

/// Waits until `job` holds `count` processes.
pub(super) fn wait_for_pids(job: &JobObject, count: usize) {
    let started = Instant::now();
    while job.pids().unwrap().len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job never held {count} processes"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// `terminate` of a job of `PROCESSES` sleeps until `AllProcessesExited`; only that is timed.
pub(super) fn terminate_job() -> Duration {
    let job = guarded_job(&options().notifications(true));
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| job.spawn(Command::new(SLEEP).arg("60")).unwrap())
        .collect();
    wait_for_pids(&job, PROCESSES);

    let t0 = Instant::now();
    job.terminate(1).unwrap();
    let returned = t0.elapsed();
    let notification = job.poll_notification().unwrap();
    let elapsed = t0.elapsed();

    assert_eq!(notification, Notification::AllProcessesExited);
    for child in &mut children {
        child.wait().unwrap();
    }
    assert!(job.pids().unwrap().is_empty());
    job.close().unwrap();
    record("terminate/returned", returned);
    record("terminate/job", elapsed);
    elapsed
}

/// SIGKILL to each of `PROCESSES` plain sleeps, and `wait` for each; only that is timed.
pub(super) fn kill_each_and_reap() -> Duration {
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| Command::new(SLEEP).arg("60").spawn().unwrap())
        .collect();

    let t0 = Instant::now();
    for child in &mut children {
        child.kill().unwrap();
    }
    for child in &mut children {
        child.wait().unwrap();
    }
    let elapsed = t0.elapsed();
    record("terminate/kill_each", elapsed);
    elapsed
}
