//! Who is in a job: spawned children and their descendants (also ones that leave their
//! session), assigned processes, every hierarchy the job uses; and `terminate` killing all of
//! them, also while they fork.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use jobobject::Error;
use jobobject::os::linux::OptionsExt;

/// A double-forked daemon that left its session and ignores SIGTERM is still in the job,
/// and `terminate` kills it.
#[test]
fn daemon_is_in_the_job_and_dies_on_terminate() {
    if !require_cgroups("daemon_is_in_the_job_and_dies_on_terminate") {
        return;
    }
    let job = create(&options("daemon"));
    // The shell starts `setsid sh` in the background and exits at once; the daemon shell,
    // in a new session, runs `sleep` (and `wait`s for it, so it stays a separate process).
    let script = r#"trap '' TERM; setsid sh -c 'trap "" TERM; sleep 100 & wait' & exit 0"#;
    let mut launcher = Reap::new(job.spawn(Command::new("sh").args(["-c", script])).unwrap());
    assert!(launcher.wait().success());
    let daemon = wait_pid_count(&job, 2, TIMEOUT);
    assert!(!daemon.contains(&launcher.pid));
    let test_session = session_of(std::process::id());
    let mut fds = Vec::new();
    for &pid in &daemon {
        fds.push(pidfd(pid));
        assert_ne!(
            session_of(pid),
            test_session,
            "process {pid} is not a daemon"
        );
        let sigterm = 1u64 << (libc::SIGTERM - 1);
        assert_ne!(
            ignored_signals(pid) & sigterm,
            0,
            "{pid} does not ignore SIGTERM"
        );
    }

    job.terminate(1).unwrap();
    for (fd, pid) in fds.iter().zip(&daemon) {
        assert!(
            exited_within(fd, TIMEOUT),
            "daemon process {pid} survived terminate"
        );
    }
    wait_empty(&job, TIMEOUT);
}

/// A spawned child is in the job in every hierarchy the job uses (on hybrid: the unified one
/// and the v1 cpu, cpuacct, cpuset, memory, blkio, freezer and pids ones), right below this
/// process's own cgroup there, and nowhere else (not in devices, not in name=systemd).
#[test]
fn spawned_child_sees_the_job_in_every_hierarchy() {
    if !require_cgroups("spawned_child_sees_the_job_in_every_hierarchy") {
        return;
    }
    let job = create(&options("proc-cgroup"));
    let name = job.name().unwrap();
    let output = job
        .spawn(
            Command::new("cat")
                .arg("/proc/self/cgroup")
                .stdout(Stdio::piped()),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(output.status.success());
    assert_in_job(&String::from_utf8(output.stdout).unwrap(), &name);
}

/// `assign(0)` is `InvalidArgument`; a pid that no longer exists, or whose process has
/// exited but is not reaped yet, is `ProcessNotFound`; a live process started outside the job
/// moves in.
#[test]
fn assign_checks_its_pid() {
    if !require_cgroups("assign_checks_its_pid") {
        return;
    }
    let job = create(&options("assign"));
    assert!(
        matches!(job.assign(0), Err(Error::InvalidArgument { .. })),
        "{:?}",
        job.assign(0)
    );

    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    assert!(gone.wait().unwrap().success());
    match job.assign(gone_pid) {
        Err(Error::ProcessNotFound { pid, .. }) => assert_eq!(pid, gone_pid),
        other => panic!("assign of the exited process {gone_pid}: {other:?}"),
    }
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());

    // A process that has exited but is not yet reaped (a zombie) is dead too: the kernel
    // would skip it without an error, and it must not be reported as assigned.
    let mut zombie = Command::new("true").spawn().unwrap();
    let zombie_pid = zombie.id();
    wait_for("the process to exit (unreaped)", TIMEOUT, || {
        std::fs::read(format!("/proc/{zombie_pid}/stat"))
            .is_ok_and(|stat| stat.windows(3).any(|w| w == b") Z"))
    });
    match job.assign(zombie_pid) {
        Err(Error::ProcessNotFound { exited: true, .. }) => {}
        other => panic!("assign of the zombie {zombie_pid}: {other:?}"),
    }
    assert!(zombie.wait().unwrap().success());
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());

    let mut live = Reap::new(Command::new("sleep").arg("100").spawn().unwrap());
    job.assign(live.pid).unwrap();
    assert_eq!(job.pids().unwrap(), vec![live.pid]);
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", live.pid)).unwrap();
    let name = job.name().unwrap();
    let lines = parse_proc_cgroup(&cgroup);
    let in_job = lines
        .iter()
        .filter(|l| l.path.rsplit('/').next() == Some(name.as_str()))
        .count();
    assert_eq!(in_job, used_cgroups().len(), "{cgroup}");

    // Assigning a member again changes nothing.
    job.assign(live.pid).unwrap();
    assert_eq!(job.pids().unwrap(), vec![live.pid]);

    job.terminate(1).unwrap();
    assert_eq!(live.wait().signal(), Some(libc::SIGKILL));
    wait_empty(&job, TIMEOUT);
}

/// An assigned process's later children are born in the job.
#[test]
fn children_of_an_assigned_process_are_in_the_job() {
    if !require_cgroups("children_of_an_assigned_process_are_in_the_job") {
        return;
    }
    let job = create(&options("assign-children"));
    // `read` blocks until stdin has a line; then the shell starts a sleep and waits for it.
    let mut command = Command::new("sh");
    command
        .args(["-c", "read line; sleep 100 & wait"])
        .stdin(Stdio::piped());
    let mut shell = Reap::new(command.spawn().unwrap());
    job.assign(shell.pid).unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.child().stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let pids = wait_pid_count(&job, 2, TIMEOUT);
    assert!(pids.contains(&shell.pid));
    job.terminate(1).unwrap();
    assert_eq!(shell.wait().signal(), Some(libc::SIGKILL));
    wait_empty(&job, TIMEOUT);
}

/// `terminate` kills 100 processes forked by a shell, and the shell.
#[test]
fn terminate_kills_a_hundred_forked_processes() {
    if !require_cgroups("terminate_kills_a_hundred_forked_processes") {
        return;
    }
    let job = create(&options("hundred"));
    let script = "i=0; while [ $i -lt 100 ]; do sleep 100 & i=$((i+1)); done; wait";
    let mut shell = Reap::new(job.spawn(Command::new("sh").args(["-c", script])).unwrap());
    let pids = wait_pid_count(&job, 101, TIMEOUT);
    let fds: Vec<_> = pids.iter().map(|&pid| (pid, pidfd(pid))).collect();

    job.terminate(1).unwrap();
    assert_eq!(shell.wait().signal(), Some(libc::SIGKILL));
    for (pid, fd) in &fds {
        assert!(
            exited_within(fd, TIMEOUT),
            "process {pid} survived terminate"
        );
    }
    wait_empty(&job, TIMEOUT);
}

/// `terminate` while a process forks continuously leaves the job empty shortly after.
#[test]
fn terminate_wins_against_a_fork_loop() {
    if !require_cgroups("terminate_wins_against_a_fork_loop") {
        return;
    }
    let job = create(&options("fork-loop"));
    let mut shell = Reap::new(
        job.spawn(Command::new("sh").args(["-c", "while :; do sleep 10 & done"]))
            .unwrap(),
    );
    wait_for("the fork loop to get going", TIMEOUT, || {
        job.pids().unwrap().len() >= 20
    });

    job.terminate(1).unwrap();
    assert_eq!(shell.wait().signal(), Some(libc::SIGKILL));
    wait_empty(&job, Duration::from_secs(30));
    // Nothing comes back: the job stays empty.
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
}

/// The environment variable that turns this test binary into the nested-job child of
/// `nested_jobs_are_part_of_the_job`: it holds the nested job's name.
const NESTED_CHILD_ENV: &str = "JOBOBJECT_TEST_NESTED_JOB";

/// Not a test of its own: the child of `nested_jobs_are_part_of_the_job`, started inside the
/// outer job. It creates a job below its own cgroups (so nested in the outer job), starts a
/// `sleep` in it, prints the sleep's pid, and closes the nested job when stdin closes.
#[test]
#[ignore = "child program of nested_jobs_are_part_of_the_job"]
fn child_creates_a_nested_job() {
    let Some(name) = std::env::var_os(NESTED_CHILD_ENV) else {
        return;
    };
    let options = jobobject::Options::new()
        .name(name.into_string().unwrap())
        .cgroup_parent(jobobject::os::linux::CgroupParent::Own);
    let job = create(&options);
    let mut sleep = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());
    println!("\nNESTED-PID: {}", sleep.pid);
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).unwrap();
    job.close().unwrap();
    assert_eq!(sleep.wait().signal(), Some(libc::SIGKILL));
}

/// Removes, when dropped, a nested job's directories and then the outer job's, wherever they
/// are left (a nested job whose creator was killed is removed by nobody).
struct NestedCleanup {
    outer: String,
    inner: String,
}

impl Drop for NestedCleanup {
    fn drop(&mut self) {
        for dir in job_dirs(&self.outer).iter().rev() {
            std::fs::remove_dir(dir.join(&self.inner)).ok();
        }
        for dir in job_dirs(&self.outer).iter().rev() {
            std::fs::remove_dir(dir).ok();
        }
    }
}

/// The nested-job child, started in `outer`, the nested sleep's pid, and the rest of the
/// child's output (to be drained: the child fails if its stdout closes early).
fn start_nested_child(
    outer: &jobobject::JobObject,
    inner: &str,
) -> (Reap, u32, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_creates_a_nested_job",
            "--ignored",
            "--nocapture",
        ])
        .env(NESTED_CHILD_ENV, inner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = Reap::new(outer.spawn(&mut command).unwrap());
    let mut stdout = std::io::BufReader::new(child.child().stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the child printed no pid"
        );
        if let Some(rest) = line.strip_prefix("NESTED-PID: ") {
            return (child, rest.trim().parse().unwrap(), stdout);
        }
    }
}

/// A job created by a process inside another job is nested in it: its processes are among the
/// outer job's `pids()`, and the outer `terminate` kills them too.
#[test]
fn nested_jobs_are_part_of_the_job() {
    if !require_cgroups("nested_jobs_are_part_of_the_job") {
        return;
    }
    let outer_options = options("nested-outer");
    let outer_name = outer_options.name.clone().unwrap();
    let inner = test_name("nested-inner");
    let _cleanup = NestedCleanup {
        outer: outer_name.clone(),
        inner: inner.clone(),
    };
    let outer = create(&outer_options);

    // The child closes its nested job itself: it goes away.
    let (mut child, nested, mut output) = start_nested_child(&outer, &inner);
    for dir in job_dirs(&outer_name) {
        assert!(
            dir.join(&inner).is_dir(),
            "no nested job in {}",
            dir.display()
        );
    }
    let mut expected = vec![child.pid, nested];
    expected.sort_unstable();
    // The child holds a job, so its keeper runs, born in the child's cgroups: the outer job.
    let (keepers, others): (Vec<u32>, Vec<u32>) = outer
        .pids()
        .unwrap()
        .into_iter()
        .partition(|&p| is_keeper(p));
    assert_eq!(others, expected);
    assert_eq!(keepers.len(), 1, "the nested job's creator has one keeper");
    drop(child.child().stdin.take());
    std::io::Read::read_to_end(&mut output, &mut Vec::new()).unwrap();
    assert!(child.wait().success());
    wait_empty(&outer, TIMEOUT);
    for dir in job_dirs(&outer_name) {
        assert!(
            !dir.join(&inner).exists(),
            "nested job left in {}",
            dir.display()
        );
    }

    // The outer job's terminate kills the nested job's processes too.
    let (mut child, nested, _output) = start_nested_child(&outer, &inner);
    let nested_fd = pidfd(nested);
    assert_eq!(
        outer.pids().unwrap().len(),
        3,
        "the child, its nested process, its keeper"
    );
    // Freezing the outer job freezes the nested one, as the kernel reports it; the
    // terminate below kills them frozen.
    wait_asleep(&outer.pids().unwrap());
    outer.freeze().unwrap();
    let mut checked = 0;
    for dir in job_dirs(&outer_name) {
        let nested_dir = dir.join(&inner);
        let state = std::fs::read_to_string(nested_dir.join("cgroup.events"))
            .or_else(|_| std::fs::read_to_string(nested_dir.join("freezer.state")));
        if let Ok(state) = state {
            assert!(
                state.contains("frozen 1") || state.trim() == "FROZEN",
                "the nested job in {} is not frozen: {state:?}",
                nested_dir.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no freezer state in the nested job");
    outer.terminate(1).unwrap();
    assert_eq!(child.wait().signal(), Some(libc::SIGKILL));
    assert!(
        exited_within(&nested_fd, TIMEOUT),
        "the nested job's process survived"
    );
    wait_empty(&outer, TIMEOUT);
    // The outer job's terminate-on-close removes the nested job its killed creator left,
    // then the outer job.
    drop(outer);
    wait_job_removed(&outer_name, TIMEOUT);
}

/// The environment variable that turns this test binary into the multi-threaded child of
/// `assign_moves_every_thread`.
const THREADS_CHILD_ENV: &str = "JOBOBJECT_TEST_THREADS_CHILD";

/// Not a test of its own: the child of `assign_moves_every_thread`. It starts three threads
/// that block, then waits for its stdin to close.
#[test]
#[ignore = "child program of assign_moves_every_thread"]
fn child_with_threads_waits_for_stdin() {
    if std::env::var_os(THREADS_CHILD_ENV).is_none() {
        return;
    }
    let (_keep, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = std::sync::Arc::new(std::sync::Mutex::new(blocked));
    for _ in 0..3 {
        let blocked = std::sync::Arc::clone(&blocked);
        std::thread::spawn(move || {
            let _ = blocked.lock().map(|r| r.recv());
        });
    }
    println!("\nTHREADS-READY");
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).unwrap();
}

/// `assign` moves every thread of a process, not just its main one.
#[test]
fn assign_moves_every_thread() {
    if !require_cgroups("assign_moves_every_thread") {
        return;
    }
    let job = create(&options("threads"));
    let name = job.name().unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_with_threads_waits_for_stdin", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(THREADS_CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    // Started outside the job, then moved in.
    let mut child = Reap::new(command.spawn().unwrap());
    let tasks = format!("/proc/{}/task", child.pid);
    // The main thread and the three blocked ones (and the harness's test thread, if any).
    wait_for("the child's threads", TIMEOUT, || {
        std::fs::read_dir(&tasks).unwrap().count() >= 4
    });
    job.assign(child.pid).unwrap();
    assert_eq!(job.pids().unwrap(), vec![child.pid]);
    let used = used_cgroups().len();
    for thread in std::fs::read_dir(&tasks).unwrap() {
        let path = thread.unwrap().path().join("cgroup");
        let text = std::fs::read_to_string(&path).unwrap();
        let in_job = parse_proc_cgroup(&text)
            .iter()
            .filter(|l| l.path.rsplit('/').next() == Some(name.as_str()))
            .count();
        assert_eq!(
            in_job,
            used,
            "{} is not in the job:\n{text}",
            path.display()
        );
    }
    drop(child.child().stdin.take());
    assert!(child.wait().success());
    wait_empty(&job, TIMEOUT);
}
