//! Creating, opening, closing and dropping jobs, by name and anonymously; terminate on the
//! last handle's close; a job outliving its handles while it holds processes. The first tests
//! port the Go package's tests (hcsshim `internal/jobobject`).

use std::time::Duration;

use jobobject::{Error, JobObject, Options};

use crate::common::*;

/// Go `TestJobNilOptions`: the default options make an anonymous job without notifications,
/// each with a name of its own.
#[test]
fn default_options_make_an_anonymous_job() {
    if !require_jobs("default_options_make_an_anonymous_job") {
        return;
    }
    let defaults = Options::default();
    assert_eq!(defaults.name, None);
    assert!(!defaults.notifications);

    let job = create(&anonymous_options());
    let other = create(&anonymous_options());
    let name = job.name().unwrap();
    assert!(!name.is_empty());
    assert_ne!(
        name,
        other.name().unwrap(),
        "two anonymous jobs share a name"
    );
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert!(matches!(job.poll_notification(), Err(Error::NotRegistered)));
    job.close().unwrap();
    drop(other);
    // An anonymous job cannot be opened by name on Windows; Linux's removal of one is checked
    // in tests/lifecycle.rs.
}

/// Go `TestJobCreateAndOpen`, plus: a second create of the name is `AlreadyExists`; both
/// handles see the same processes; closing the opened one leaves the job alone; the job goes
/// with its last handle.
#[test]
fn create_open_and_already_exists() {
    if !require_jobs("create_open_and_already_exists") {
        return;
    }
    let options = options("create-open");
    let name = options.name.clone().unwrap();
    let created = create(&options);
    match JobObject::create(&options) {
        Err(Error::AlreadyExists { job }) => assert_eq!(job, name),
        other => panic!("second create: {other:?}"),
    }
    let opened = JobObject::open(&options).expect("open");
    assert_eq!(opened.name().unwrap(), name);
    assert_eq!(created.name().unwrap(), name);

    let mut first = Reap::new(created.spawn(&mut child("sleep:100000")).unwrap());
    let mut second = Reap::new(opened.spawn(&mut child("sleep:100000")).unwrap());
    let mut expected = vec![first.pid, second.pid];
    expected.sort_unstable();
    assert_eq!(created.pids().unwrap(), expected);
    assert_eq!(opened.pids().unwrap(), expected);

    opened.close().unwrap();
    assert_exists(&name);
    assert!(first.running() && second.running());
    assert_eq!(created.pids().unwrap(), expected);

    created.terminate(3).unwrap();
    assert_terminated(first.wait(), 3);
    assert_terminated(second.wait(), 3);
    created.close().unwrap();
    wait_removed(&name);
    assert!(matches!(
        JobObject::open(&options),
        Err(Error::NotFound { .. })
    ));
}

/// `open` needs a name and finds only existing jobs; malformed names are refused by both
/// `create` and `open`.
#[test]
fn open_and_create_check_the_name() {
    if !require_jobs("open_and_create_check_the_name") {
        return;
    }
    assert!(matches!(
        JobObject::open(&anonymous_options()),
        Err(Error::InvalidArgument { .. })
    ));
    let absent = options("absent");
    match JobObject::open(&absent) {
        Err(Error::NotFound { what }) => assert!(what.contains("absent"), "{what}"),
        other => panic!("open of an absent job: {other:?}"),
    }
    let long = "n".repeat(256);
    for bad in ["", "a/b", ".hidden", "..", "nul\0byte", "new\nline", &long] {
        let named = anonymous_options().name(bad);
        for (what, result) in [
            ("create", JobObject::create(&named)),
            ("open", JobObject::open(&named)),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidArgument { .. })),
                "{what} {bad:?}: {result:?}"
            );
        }
    }
}

/// Go `TestSetTerminateOnLastHandleClose`, and more: closing one of two handles kills
/// nothing; dropping the last one (without `close`) kills the process within 10 s, and the job
/// goes.
#[test]
fn terminate_on_close_acts_at_the_last_handle() {
    if !require_jobs("terminate_on_close_acts_at_the_last_handle") {
        return;
    }
    let options = options("terminate-last");
    let name = options.name.clone().unwrap();
    let job = create(&options);
    let second = JobObject::open(&options).expect("open");
    let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    // Changing a limit afterwards keeps the flag (on Windows both live in one structure).
    let _ = job.set_memory_limit(Some(512 << 20));

    job.close().unwrap();
    assert!(child.running(), "closing one of two handles killed the job");
    assert_eq!(second.pids().unwrap(), vec![child.pid]);

    drop(second);
    assert!(
        child.wait_timeout(Duration::from_secs(10)).is_some(),
        "dropping the last handle did not kill the job within 10 s"
    );
    wait_removed(&name);
}

/// Kill-on-close is the job's, as a Windows job object's `KILL_ON_JOB_CLOSE` is: with
/// another process holding the job, the first close kills nothing and the last close
/// anywhere kills, whichever process asked for it and whichever closes first.
#[test]
fn kill_on_close_is_the_jobs_across_processes() {
    if !require_jobs("kill_on_close_is_the_jobs_across_processes") {
        return;
    }
    for (creator_asks, holder_closes_first) in [(true, false), (false, true), (false, false)] {
        let case = format!(
            "asked by the {}, the {} closing first",
            if creator_asks { "creator" } else { "holder" },
            if holder_closes_first {
                "holder"
            } else {
                "creator"
            }
        );
        let options = options("kill-on-close-processes");
        let name = options.name.clone().unwrap();
        let _cleanup = Cleanup::new(&name);
        let job = JobObject::create(&options).unwrap();
        if creator_asks {
            job.set_terminate_on_last_handle_close().unwrap();
        }
        let mut sleeper = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
        let mode = if creator_asks { "hold" } else { "hold-kill" };
        let mut holder = Holder::start(&format!("{mode}:{name}"));
        if holder_closes_first {
            holder.release();
            std::thread::sleep(QUIET);
            assert!(sleeper.running(), "{case}: the first close killed");
            job.close().unwrap();
        } else {
            job.close().unwrap();
            std::thread::sleep(QUIET);
            assert!(sleeper.running(), "{case}: the first close killed");
            holder.release();
        }
        assert!(
            sleeper.wait_timeout(Duration::from_secs(10)).is_some(),
            "{case}: the last close did not kill within 10 s"
        );
        eprintln!("{case}: waiting for the job to go");
        wait_removed(&name);
    }
}

/// A job outlives no owner: when the only process that holds a job with kill-on-close ends
/// without closing it (killed, `process::exit`, `abort`), the job's processes are killed and
/// the job goes. On Windows the kernel closes the dead process's handles; on Linux its
/// keeper acts for it (`tests/owner_end.rs` times it, 100 trials a case).
#[test]
fn a_dead_owner_s_job_dies_with_it() {
    if !require_jobs("a_dead_owner_s_job_dies_with_it") {
        return;
    }
    for how in ["kill", "exit", "abort"] {
        let name = test_name(&format!("dead-owner-{how}"));
        let _cleanup = Cleanup::new(&name);
        let (owner, mut owned) = start_owner(&format!("owner:{how}:{name}"));
        let mut owner = Reap::new(owner);
        let watched: Vec<Watched> = owned.pids.iter().map(|&pid| Watched::new(pid)).collect();
        owned.end();
        if how == "kill" {
            owner.child().kill().unwrap();
        }
        owner.wait();
        for (pid, process) in owned.pids.iter().zip(&watched) {
            assert!(
                process.exited_within(TIMEOUT),
                "{how}: process {pid} outlived the owner of job {name}"
            );
        }
        // On Windows a handle to an exited process keeps its job object alive.
        drop(watched);
        wait_removed(&name);
    }
}

/// A child process that holds a job (child mode `hold:` or `hold-kill:`).
struct Holder(std::process::Child);

impl Holder {
    /// Starts the child in `mode` and waits until it holds the job.
    fn start(mode: &str) -> Holder {
        Holder(start_holder(mode))
    }

    /// Makes the child close its handle, and waits until it has exited.
    fn release(&mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().unwrap();
        assert!(status.success(), "the holder failed: {status:?}");
    }
}

/// Without terminate-on-close, a job closed while it holds a process keeps it running, can
/// be opened again by name, and goes once it is empty and unheld.
#[test]
fn a_closed_job_lives_while_it_holds_processes() {
    if !require_jobs("a_closed_job_lives_while_it_holds_processes") {
        return;
    }
    let options = options("close-busy");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    job.close().unwrap();
    assert!(matches!(job.pids(), Err(Error::AlreadyClosed)));
    std::thread::sleep(QUIET);
    assert!(child.running(), "closing the job killed its process");

    let again = JobObject::open(&options).expect("open a closed job that still runs");
    assert_eq!(again.pids().unwrap(), vec![child.pid]);
    again.terminate(5).unwrap();
    assert_terminated(child.wait(), 5);
    assert!(again.wait_empty(Some(TIMEOUT)).unwrap());
    again.close().unwrap();
    wait_removed(&name);
}

/// Go `TestVerifyPidCount`, both ways: processes spawned in the job and processes started
/// outside and assigned are counted, and `terminate` ends them all.
#[test]
fn pids_count_spawned_and_assigned_processes() {
    if !require_jobs("pids_count_spawned_and_assigned_processes") {
        return;
    }
    let job = create(&options("pid-count"));
    let mut spawned = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    let mut started = Reap::new(child("sleep:100000").spawn().unwrap());
    assert_eq!(job.pids().unwrap(), vec![spawned.pid]);
    job.assign(started.pid).unwrap();
    // Assigning a member again changes nothing.
    job.assign(started.pid).unwrap();
    let mut expected = vec![spawned.pid, started.pid];
    expected.sort_unstable();
    assert_eq!(job.pids().unwrap(), expected);

    job.terminate(9).unwrap();
    assert_terminated(spawned.wait(), 9);
    assert_terminated(started.wait(), 9);
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
}

/// `stop`: an empty job is stopped at once, in time; a busy one ends. On Linux the SIGTERM
/// ends the child (its default action) within the grace period and nothing is killed; on
/// Windows, which has no request for a whole job, what is there is terminated at once.
#[test]
fn stop_ends_the_job() {
    if !require_jobs("stop_ends_the_job") {
        return;
    }
    let job = create(&anonymous_options());
    let stopped = job.stop(Duration::from_secs(5)).unwrap();
    assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");

    let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    while job.pids().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopped = job.stop(TIMEOUT).unwrap();
    if cfg!(windows) {
        assert!(!stopped.in_time && stopped.killed == 1, "{stopped:?}");
    } else {
        assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");
    }
    child.wait();
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    job.close().unwrap();
    assert!(matches!(
        job.stop(Duration::ZERO),
        Err(Error::AlreadyClosed)
    ));
}
