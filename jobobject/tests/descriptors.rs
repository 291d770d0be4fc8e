//! What jobs cost in open files, a budget the caller shares: a job holds one descriptor (two
//! with v1 OOM notifications), its notification files while watched and pidfds for a few
//! processes per job (each within a sixteenth of the open-file limit, and 256), and a process
//! short of descriptors still spawns into its jobs and hears of every emptying. A single test, as
//! it counts the process's open files and lowers its limit.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use jobobject::{JobObject, Notification};

fn nofile_limit() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX))
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Spawns `count` sleepers into the job; all must start.
fn spawn_sleepers(job: &JobObject, count: usize) -> Vec<Reap> {
    (0..count)
        .map(|i| {
            let child = job.spawn(Command::new("sleep").arg("60"));
            Reap::new(child.unwrap_or_else(|e| panic!("spawn {i}: {e}")))
        })
        .collect()
}

/// Kills the job's processes and waits for `AllProcessesExited`.
fn kill_and_hear_it(job: &Arc<JobObject>, mut sleepers: Vec<Reap>) {
    job.terminate(1).unwrap();
    for sleeper in &mut sleepers {
        sleeper.wait();
    }
    assert_eq!(
        poll_within(job, TIMEOUT).unwrap(),
        Notification::AllProcessesExited
    );
}

#[test]
fn jobs_hold_few_descriptors_and_never_fail_a_spawn_for_them() {
    if !require_cgroups("jobs_hold_few_descriptors_and_never_fail_a_spawn_for_them") {
        return;
    }
    // The event thread's own descriptors come once.
    drop(create(&options("warm-up").notifications(true)));

    let before = open_files();
    let plain: Vec<JobObject> = (0..100)
        .map(|i| create(&options(&format!("plain-{i}"))))
        .collect();
    // A few more may be open for a moment: the event thread reads files as it goes.
    const TRANSIENT: usize = 5;
    let grown = open_files() - before;
    eprintln!("100 jobs hold {grown} descriptors");
    assert!(
        grown <= 100 + TRANSIENT,
        "100 jobs hold {grown} descriptors"
    );
    drop(plain);

    let before = open_files();
    let watched: Vec<Arc<JobObject>> = (0..50)
        .map(|i| create_arc(&options(&format!("watched-{i}")).notifications(true)))
        .collect();
    let grown = open_files() - before;
    eprintln!("50 jobs with notifications hold {grown} descriptors");
    // Their notification files, open for fast reads, come out of a budget of their own.
    let held = (nofile_limit() / 16).min(256);
    assert!(
        grown <= 100 + held + TRANSIENT,
        "50 watched jobs hold {grown}"
    );
    drop(watched);

    // pidfds: a few per job, however many processes it starts.
    let job = create_arc(&options("many").notifications(true));
    let before = open_files();
    let sleepers = spawn_sleepers(&job, 100);
    let grown = open_files() - before;
    eprintln!("100 processes spawned into a watched job: {grown} more descriptors");
    assert!(
        grown <= 4 + TRANSIENT,
        "100 processes cost {grown} descriptors"
    );
    kill_and_hear_it(&job, sleepers);

    // Short of descriptors: spawns still succeed and the emptying is still reported.
    let limit = open_files() as u64 + 24;
    let nofile = rustix::process::Resource::Nofile;
    let mut rlimit = rustix::process::getrlimit(nofile);
    rlimit.current = Some(limit);
    rustix::process::setrlimit(nofile, rlimit).unwrap();
    let sleepers = spawn_sleepers(&job, 100);
    kill_and_hear_it(&job, sleepers);
    eprintln!("with an open-file limit of {limit}: 100 spawns, the emptying reported");
}
