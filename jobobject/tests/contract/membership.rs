//! Who is in a job: spawned children and their descendants, assigned processes; `assign`
//! checking its pid; `terminate` ending them all, also on an empty job.

use std::process::Stdio;

use jobobject::Error;

use crate::common::*;

/// A grandchild is in the job with its parent, and `terminate` ends both.
#[test]
fn grandchildren_are_in_the_job_and_die_on_terminate() {
    if !require_jobs("grandchildren_are_in_the_job_and_die_on_terminate") {
        return;
    }
    let job = create(&options("grandchild"));
    let mut parent = Reap::new(
        job.spawn(child("grandchild:100000").stdout(Stdio::piped()))
            .unwrap(),
    );
    let grandchild = grandchild_of(parent.child());
    let mut expected = vec![parent.pid, grandchild];
    expected.sort_unstable();
    assert_eq!(job.pids().unwrap(), expected);

    job.terminate(1).unwrap();
    assert_terminated(parent.wait(), 1);
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
}

/// A process that outlives its parent (an orphan) stays in the job.
#[test]
fn an_orphaned_grandchild_stays_in_the_job() {
    if !require_jobs("an_orphaned_grandchild_stays_in_the_job") {
        return;
    }
    let job = create(&options("orphan-member"));
    let mut parent = Reap::new(
        job.spawn(child("orphan:100000").stdout(Stdio::piped()))
            .unwrap(),
    );
    let grandchild = grandchild_of(parent.child());
    assert!(parent.wait().success());
    assert_eq!(job.pids().unwrap(), vec![grandchild]);
    job.terminate(1).unwrap();
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
}

/// `assign(0)` is `InvalidArgument`; a pid with no process, or whose process has exited, is
/// `ProcessNotFound`, and nothing joins the job.
#[test]
fn assign_checks_its_pid() {
    if !require_jobs("assign_checks_its_pid") {
        return;
    }
    let job = create(&options("assign"));
    let result = job.assign(0);
    assert!(
        matches!(result, Err(Error::InvalidArgument { .. })),
        "{result:?}"
    );
    // Above Linux's largest pid_max and any Windows process id in use.
    let result = job.assign(0x3FFF_FFF0);
    assert!(
        matches!(result, Err(Error::ProcessNotFound { .. })),
        "{result:?}"
    );

    let mut gone = child("exit:0").spawn().unwrap();
    let gone_pid = gone.id();
    assert!(gone.wait().unwrap().success());
    match job.assign(gone_pid) {
        Err(Error::ProcessNotFound { pid, .. }) => assert_eq!(pid, gone_pid),
        other => panic!("assign of the exited process {gone_pid}: {other:?}"),
    }
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
}

/// `terminate` of an empty job succeeds, and the job still works afterwards.
#[test]
fn terminate_an_empty_job_then_reuse_it() {
    if !require_jobs("terminate_an_empty_job_then_reuse_it") {
        return;
    }
    let job = create(&options("terminate-empty"));
    job.terminate(1).unwrap();
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    assert_eq!(job.pids().unwrap(), vec![child.pid]);
    job.terminate(2).unwrap();
    assert_terminated(child.wait(), 2);
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
}

/// A program that cannot be started is an error, and leaves no process in the job.
#[test]
fn a_spawn_that_fails_starts_nothing() {
    if !require_jobs("a_spawn_that_fails_starts_nothing") {
        return;
    }
    let job = create(&options("spawn-fails"));
    let mut missing =
        std::process::Command::new(std::env::temp_dir().join("jobobject-test-no-such-program"));
    let result = job.spawn(&mut missing);
    assert!(result.is_err(), "{result:?}");
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    // The job works on.
    let mut child = Reap::new(job.spawn(&mut child("exit:0")).unwrap());
    assert!(child.wait().success());
}
