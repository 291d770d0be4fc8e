//! Freeze and thaw, proven by what the processes do: a frozen job's busy process gets no CPU
//! time and resumes at the thaw; a frozen job can be terminated and stopped; no process can
//! be started in it.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use jobobject::{Error, JobObject};

#[test]
fn child_mode() {
    run_child_mode();
}

/// The job's CPU time so far.
fn cpu(job: &JobObject) -> Duration {
    let stats = job.processor_stats().expect("processor_stats");
    stats.user_time + stats.kernel_time
}

#[test]
fn a_frozen_job_makes_no_progress_and_resumes_at_the_thaw() {
    if !require_cgroups("a_frozen_job_makes_no_progress_and_resumes_at_the_thaw") {
        return;
    }
    let job = create(&options("freeze-progress"));
    let _spinner = Reap::new(job.spawn(&mut child("spin:600000")).unwrap());
    // Running: it gets CPU time.
    let before = cpu(&job);
    wait_for("the spinner to run", TIMEOUT, || {
        cpu(&job) > before + Duration::from_millis(50)
    });
    assert!(!job.is_frozen().unwrap());

    job.freeze().unwrap();
    assert!(job.is_frozen().unwrap());
    let frozen_at = cpu(&job);
    std::thread::sleep(QUIET);
    let gained = cpu(&job) - frozen_at;
    assert!(
        gained < Duration::from_millis(5),
        "a frozen job's busy process ran {gained:?} in {QUIET:?}"
    );

    job.thaw().unwrap();
    assert!(!job.is_frozen().unwrap());
    let thawed_at = cpu(&job);
    wait_for("the spinner to run again", TIMEOUT, || {
        cpu(&job) > thawed_at + Duration::from_millis(50)
    });
    // Thawing a thawed job does nothing; so does freezing a frozen one.
    job.thaw().unwrap();
    job.freeze().unwrap();
    job.freeze().unwrap();
    assert!(job.is_frozen().unwrap());
    job.terminate(1).unwrap();
}

#[test]
fn a_frozen_job_can_be_terminated_and_is_left_thawed() {
    if !require_cgroups("a_frozen_job_can_be_terminated_and_is_left_thawed") {
        return;
    }
    let job = create(&options("freeze-terminate"));
    let mut sleeper = Reap::new(job.spawn(&mut child("sleep:600000")).unwrap());
    let mut shell = Command::new("sh");
    shell.args(["-c", "sleep 600 & exec sleep 600"]);
    let mut shell = Reap::new(job.spawn(&mut shell).unwrap());
    let pids = wait_pid_count(&job, 3, TIMEOUT);
    wait_asleep(&pids);
    job.freeze().unwrap();
    let start = Instant::now();
    job.terminate(1).unwrap();
    assert_eq!(sleeper.wait().signal(), Some(libc::SIGKILL));
    assert_eq!(shell.wait().signal(), Some(libc::SIGKILL));
    wait_empty(&job, TIMEOUT);
    println!(
        "frozen job of 3 processes emptied {:?} after terminate",
        start.elapsed()
    );
    assert!(!job.is_frozen().unwrap(), "terminate left the job frozen");
    run_true(&job);
}

#[test]
fn nothing_can_be_started_in_a_frozen_job() {
    if !require_cgroups("nothing_can_be_started_in_a_frozen_job") {
        return;
    }
    let job = create(&options("freeze-spawn"));
    job.freeze().unwrap();
    assert!(job.is_frozen().unwrap(), "an empty job freezes too");
    let start = Instant::now();
    let err = job.spawn(&mut Command::new("true")).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("frozen"), "{err}");
    let err = builder_child("exit:0").spawn(&job).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "a refusal waited");
    assert!(job.pids().unwrap().is_empty());
    job.thaw().unwrap();
    run_true(&job);
}

/// A frozen process would see a stop's SIGTERM only at the thaw: `stop` thaws the job, and
/// the command's own handler runs.
#[test]
fn stop_thaws_a_frozen_job_so_that_its_processes_hear_the_signal() {
    if !require_cgroups("stop_thaws_a_frozen_job_so_that_its_processes_hear_the_signal") {
        return;
    }
    let job = create(&options("freeze-stop"));
    let mut shell = Command::new("sh");
    shell.args(["-c", "trap 'exit 7' TERM; sleep 600 & wait"]);
    let mut shell = Reap::new(job.spawn(&mut shell).unwrap());
    // The trap is set once the shell has started its sleep.
    let pids = wait_pid_count(&job, 2, TIMEOUT);
    wait_asleep(&pids);
    job.freeze().unwrap();
    let stopped = job.stop(TIMEOUT).unwrap();
    assert!(stopped.in_time, "{stopped:?}");
    assert_eq!(shell.wait().code(), Some(7), "the TERM trap did not run");
}

/// What needs the processes held still for a moment (a directory made on demand, here the
/// I/O controller's on a hybrid host, and the move of every process into it) leaves a frozen
/// job frozen.
#[test]
fn a_frozen_job_stays_frozen_when_its_processes_are_moved() {
    if !require_cgroups("a_frozen_job_stays_frozen_when_its_processes_are_moved") {
        return;
    }
    let job = create(&options("freeze-on-demand"));
    let _sleeper = Reap::new(job.spawn(&mut child("sleep:600000")).unwrap());
    wait_asleep(&job.pids().unwrap());
    job.freeze().unwrap();
    job.set_io_tracking().unwrap();
    assert!(
        job.is_frozen().unwrap(),
        "turning on I/O tracking thawed the job"
    );
    job.terminate(1).unwrap();
}
