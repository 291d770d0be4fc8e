//! Creating, opening, closing and dropping jobs; terminate-on-last-handle-close; the pid
//! count. The first tests port the Go package's tests (hcsshim `internal/jobobject`).
#![cfg(target_os = "linux")]

mod common;
mod workload;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use jobobject::os::linux::{CgroupParent, OptionsExt};
use jobobject::{Error, JobObject, Options};

/// Go `TestJobNilOptions`: the default options make an anonymous job without notifications.
#[test]
fn job_nil_options() {
    if !require_cgroups("job_nil_options") {
        return;
    }
    let options = anonymous_options();
    assert_eq!(options, Options::default().cgroup_parent(CgroupParent::Own));
    assert_eq!(options.name, None);
    assert!(!options.notifications);

    let job = create(&options);
    let other = create(&options);
    let name = job.name().unwrap();
    assert!(
        name.starts_with(&format!("anon-{}-", std::process::id())),
        "anonymous name {name:?}"
    );
    assert_ne!(
        name,
        other.name().unwrap(),
        "two anonymous jobs share a name"
    );
    assert_job_exists(&name);
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert!(matches!(job.poll_notification(), Err(Error::NotRegistered)));

    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
    let other_name = other.name().unwrap();
    drop(other);
    wait_job_removed(&other_name, TIMEOUT);
}

/// Dropping (without `close`) the handle of a job this process created, with no process in
/// it, removes the job. Terminate-on-close stays off here: the default path is under test.
#[test]
fn drop_without_close_removes_an_empty_job() {
    if !require_cgroups("drop_without_close_removes_an_empty_job") {
        return;
    }
    let options = options("drop-empty");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    assert_job_exists(&name);
    // A process came and went: the job is empty again.
    run_true(&job);
    drop(job);
    wait_job_removed(&name, TIMEOUT);
}

/// A job closed while a process remains (terminate-on-close off) keeps running, and the
/// creating process removes it once the process has exited.
#[test]
fn closed_job_is_removed_when_its_last_process_exits() {
    if !require_cgroups("closed_job_is_removed_when_its_last_process_exits") {
        return;
    }
    let options = options("close-busy");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    // `cat` runs until its stdin is closed.
    let mut command = Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = Reap::new(job.spawn(&mut command).unwrap());
    let stdin = child.child().stdin.take().unwrap();

    job.close().unwrap();
    assert!(matches!(job.pids(), Err(Error::AlreadyClosed)));
    assert!(child.running(), "closing the job killed its process");
    assert_job_exists(&name);
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid)).unwrap();
    assert!(cgroup.contains(&name), "the process left the job: {cgroup}");

    drop(stdin);
    assert!(child.wait().success());
    wait_job_removed(&name, TIMEOUT);
}

/// The variable that turns this test binary into a holder of a job (see [`Holder`]): it
/// holds the job's name.
const HOLDER_JOB_ENV: &str = "JOBOBJECT_TEST_HOLD_JOB";

/// Not a test of its own: opens the job named in the environment, says so, and holds the
/// handle until its stdin closes.
#[test]
#[ignore = "child program of the tests that hold a job from another process"]
fn child_holds_job_until_stdin_closes() {
    let Ok(name) = std::env::var(HOLDER_JOB_ENV) else {
        return;
    };
    let options = Options::new().name(name).cgroup_parent(CgroupParent::Own);
    let job = JobObject::open(&options).expect("child: open");
    println!("HOLDER opened");
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).ok();
    job.close().expect("child: close");
    println!("HOLDER closed");
}

/// Another process that holds a job until told to close it.
struct Holder {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Holder {
    /// Starts the holder of job `name` and waits until it has opened it.
    fn start(name: &str) -> Holder {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "child_holds_job_until_stdin_closes",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads=1", "--quiet"])
            .env(HOLDER_JOB_ENV, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let opened = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l == "HOLDER opened");
        assert!(opened, "the holder never opened the job");
        Holder { child, lines }
    }

    /// Tells the holder to close its handle and waits until it has.
    fn close(mut self) {
        drop(self.child.stdin.take());
        let rest: Vec<String> = self.lines.map_while(Result::ok).collect();
        assert!(
            rest.iter().any(|l| l == "HOLDER closed"),
            "the holder never closed the job"
        );
        assert!(self.child.wait().unwrap().success());
    }
}

/// A job closed by its creator while another process holds it stays; the other process's
/// close, the last one anywhere, removes it (as a Windows job object goes with its last
/// handle).
#[test]
fn the_last_handle_in_any_process_removes_the_job() {
    if !require_cgroups("the_last_handle_in_any_process_removes_the_job") {
        return;
    }
    let options = options("last-handle-anywhere");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    let holder = Holder::start(&name);
    job.close().unwrap();
    assert_job_exists(&name);
    holder.close();
    wait_job_removed(&name, TIMEOUT);
}

/// A persistent job outlives its handles, in every process, until it is deleted; delete
/// refuses a job that holds processes.
#[test]
fn a_persistent_job_stays_until_deleted() {
    use jobobject::os::linux::JobObjectExt;
    if !require_cgroups("a_persistent_job_stays_until_deleted") {
        return;
    }
    let options = options("persistent");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    job.set_persistent().unwrap();
    let mut paths = job.cgroup_paths().unwrap();
    let mut expected = job_dirs(&name);
    paths.sort();
    expected.sort();
    assert_eq!(paths, expected);
    job.close().unwrap();
    assert_job_exists(&name);

    // Another handle, not the creator's, closes it: it stays.
    JobObject::open(&options).unwrap().close().unwrap();
    assert_job_exists(&name);
    let listed = jobobject::os::linux::list_jobs(&CgroupParent::Own).unwrap();
    assert!(listed.contains(&name), "{listed:?}");

    let job = JobObject::open(&options).unwrap();
    let mut child = Reap::new(job.spawn(Command::new("sleep").arg("600")).unwrap());
    assert!(matches!(job.delete(), Err(Error::Busy { .. })));
    job.terminate(1).unwrap();
    assert_eq!(child.wait().signal(), Some(9));
    wait_empty(&job, TIMEOUT);
    job.delete().unwrap();
    assert_job_removed(&name);
    assert!(matches!(job.pids(), Err(Error::AlreadyClosed)));
}

/// Not a test: the workload program (see `workload`).
#[test]
#[ignore = "workload program of the lifecycle tests"]
fn workload() {
    workload::run_from_env();
}

/// An observer handle reads a job without holding it: its close removes nothing (not even an
/// empty job that nobody holds), and it keeps nobody else's close from removing the job.
#[test]
fn observers_neither_hold_nor_remove_a_job() {
    use jobobject::os::linux::{JobObjectExt, OptionsExt};
    if !require_cgroups("observers_neither_hold_nor_remove_a_job") {
        return;
    }
    // A job whose creator exited without closing it goes with it: its keeper removes it.
    let orphaned = options("orphaned");
    let name = orphaned.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let output = workload::command(&format!("orphan {name}"))
        .output()
        .unwrap();
    assert!(workload::ready(&String::from_utf8_lossy(&output.stdout)));
    wait_job_removed(&name, TIMEOUT);

    // A persistent job outlives its creator, held by no one. An observer neither holds nor
    // removes it, and cannot ask for kill-on-close.
    let kept = options("kept");
    let name = kept.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let creator = JobObject::create(&kept).unwrap();
    creator.set_persistent().unwrap();
    creator.close().unwrap();
    let observer = JobObject::open(&kept.clone().observer(true)).unwrap();
    assert_eq!(observer.pids().unwrap(), Vec::<u32>::new());
    let err = observer.set_terminate_on_last_handle_close().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    observer.close().unwrap();
    assert_job_exists(&name);
    JobObject::open(&kept).unwrap().delete().unwrap();
    assert_job_removed(&name);

    // An observer does not keep the creator's close from removing the job.
    let options = options("observed");
    let name = options.name.clone().unwrap();
    let job = JobObject::create(&options).unwrap();
    let observer = JobObject::open(&options.clone().observer(true)).unwrap();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
    let err = observer.pids().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    observer.close().unwrap();

    let err = JobObject::create(&options.observer(true)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}

/// Waits until `job` holds `count` processes.
fn wait_for_processes(job: &JobObject, count: usize) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while job.pids().unwrap().len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "never {count} processes"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `signal` reaches every process of the job: a shell and the two sleeps it started die of
/// SIGUSR1 (its default action), and the shell's status says so. 0 and numbers beyond the
/// real-time signals are not signals.
#[test]
fn a_signal_reaches_every_process() {
    use jobobject::os::linux::JobObjectExt;
    if !require_cgroups("a_signal_reaches_every_process") {
        return;
    }
    let job = create(&anonymous_options());
    let mut shell = Reap::new(
        job.spawn(Command::new("sh").args(["-c", "sleep 100000 & sleep 100000 & wait"]))
            .unwrap(),
    );
    wait_for_processes(&job, 3);
    job.signal(libc::SIGUSR1).unwrap();
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap(), "a process survived");
    assert_eq!(shell.wait().signal(), Some(libc::SIGUSR1));
    for bad in [0, -1, 1000] {
        let err = job.signal(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{bad}: {err}");
    }
    job.signal(libc::SIGRTMIN()).unwrap(); // a real-time signal, to an empty job
}

/// `stop`: processes that ignore SIGTERM are killed when the grace period ends, and counted;
/// a stopped process gets the SIGTERM (the SIGCONT after it wakes it); `stop_with_signal`
/// sends another request, which a shell's trap answers.
#[test]
fn stop_waits_the_grace_period_then_kills() {
    use jobobject::os::linux::JobObjectExt;
    if !require_cgroups("stop_waits_the_grace_period_then_kills") {
        return;
    }
    let job = create(&anonymous_options());
    // The sleep inherits the ignored SIGTERM.
    let mut deaf = Reap::new(
        job.spawn(Command::new("sh").args(["-c", "trap '' TERM; sleep 100000 & wait"]))
            .unwrap(),
    );
    wait_for_processes(&job, 2);
    let grace = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let stopped = job.stop(grace).unwrap();
    assert!(
        started.elapsed() >= grace,
        "killed before the grace period ended"
    );
    assert!(!stopped.in_time && stopped.killed == 2, "{stopped:?}");
    assert_eq!(deaf.wait().signal(), Some(libc::SIGKILL));

    let mut sleeper = Reap::new(job.spawn(Command::new("sleep").arg("100000")).unwrap());
    wait_for_processes(&job, 1);
    sigstop(sleeper.child().id());
    let stopped = job.stop(TIMEOUT).unwrap();
    assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");
    assert_eq!(sleeper.wait().signal(), Some(libc::SIGTERM));

    let mut polite = Reap::new(
        job.spawn(Command::new("sh").args([
            "-c",
            "trap 'exit 7' INT; trap '' TERM; while :; do sleep 0.05; done",
        ]))
        .unwrap(),
    );
    wait_for_processes(&job, 2);
    let stopped = job.stop_with_signal(libc::SIGINT, TIMEOUT).unwrap();
    assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");
    assert_eq!(polite.wait().code(), Some(7));
}

/// An anonymous job is not opened by the name it was given for its directory (it has none on
/// Windows); an observer may read and control it.
#[test]
fn an_anonymous_job_is_not_opened_by_name() {
    if !require_cgroups("an_anonymous_job_is_not_opened_by_name") {
        return;
    }
    let job = create(&anonymous_options());
    let name = job.name().unwrap();
    let by_name = named_options(&name);
    let err = JobObject::open(&by_name).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("anonymous"), "{err}");
    let observer = JobObject::open(&by_name.observer(true)).unwrap();
    assert_eq!(observer.pids().unwrap(), job.pids().unwrap());
    observer.close().unwrap();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}
