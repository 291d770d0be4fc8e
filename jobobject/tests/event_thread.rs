//! One event thread serves every job of the process. This file holds a single test so that
//! no other test's threads come and go while it counts the process's threads.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;

use common::*;
use jobobject::{JobObject, Notification};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// 50 jobs with notifications add no thread to the one the first such job started, and each
/// of them reports `AllProcessesExited` after its process exits.
#[test]
fn fifty_jobs_share_one_event_thread() {
    if !require_cgroups("fifty_jobs_share_one_event_thread") {
        return;
    }
    let before_any = thread_count();
    let first = create_arc(&options("events-first").notifications(true));
    let with_event_thread = thread_count();
    assert_eq!(
        with_event_thread,
        before_any + 1,
        "the first job with notifications should start the one event thread"
    );

    let open_files = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let files_before = open_files();
    let jobs: Vec<Arc<JobObject>> = (0..50)
        .map(|i| create_arc(&options(&format!("events-{i}")).notifications(true)))
        .collect();
    // A job holds its primary directory, an OOM eventfd on v1, and while watched its
    // `cgroup.events` and up to 3 limit counter files (see tests/descriptors.rs).
    let per_job = (open_files() - files_before) / 50;
    assert!(per_job <= 6, "each job holds {per_job} open files");
    assert_eq!(
        thread_count(),
        with_event_thread,
        "50 more jobs with notifications changed the thread count"
    );

    for job in &jobs {
        run_true(job);
    }
    assert_eq!(thread_count(), with_event_thread);
    for (i, job) in jobs.iter().enumerate() {
        let message = poll_within(job, TIMEOUT).unwrap();
        assert_eq!(message, Notification::AllProcessesExited, "job {i}");
    }

    let names: Vec<String> = jobs.iter().map(|j| j.name().unwrap()).collect();
    drop(jobs);
    drop(first);
    for name in names {
        wait_job_removed(&name, TIMEOUT);
    }
}
