//! What only the Windows backend does, on real Job Objects: run on Windows, or under Wine by
//! `scripts/windows-test`. The behaviour every platform shares is in `tests/contract/`.
//!
//! Here: the NT-namespace variant, the start and exit of each process as notifications, a
//! `Command` that stays reusable outside the job, the process limit enforced, and statistics.
//! Wine 8 implements no limits and most statistics: there, each test checks that the library
//! says so (`Error::Unsupported`, or a limit that reads back unset), and on Windows that the
//! limit is applied. Which of the two a test checked is printed; none is skipped.
#![cfg(windows)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use jobobject::{Error, ErrorKind, JobObject, Notification, Options};

/// Not a test: the child modes, run when this binary is started with `JOBOBJECT_TEST_CHILD`.
#[test]
fn child_mode() {
    run_child_mode();
}

#[test]
fn wine_detection_is_explicit() {
    match wine() {
        Some(version) => {
            assert!(!version.is_empty());
            eprintln!("running under Wine {version}");
        }
        None => eprintln!("running on Windows"),
    }
}

/// A job made through the NT API (`NtCreateJobObject`) is the same object the Win32 API
/// names: each finds, opens and refuses to create again what the other made.
#[test]
fn nt_variant_names_the_same_jobs() {
    let name = test_name("nt");
    let nt = Options::new().name(&name).use_nt_variant(true);
    let win32 = Options::new().name(&name);
    let job = create(&nt);
    for options in [&nt, &win32] {
        let result = JobObject::create(options);
        assert!(
            matches!(result, Err(Error::AlreadyExists { .. })),
            "{result:?}"
        );
    }
    let by_win32 = JobObject::open(&win32).unwrap();
    let by_nt = JobObject::open(&nt).unwrap();
    let mut child = Reap::new(job.spawn(&mut child("sleep:20000")).unwrap());
    assert_eq!(by_win32.pids().unwrap(), vec![child.pid]);
    assert_eq!(by_nt.pids().unwrap(), vec![child.pid]);
    by_nt.terminate(1).unwrap();
    assert_terminated(child.wait(), 1);

    let anonymous = create(&Options::new().use_nt_variant(true));
    assert_eq!(anonymous.pids().unwrap(), Vec::<u32>::new());
    let absent = Options::new()
        .name(test_name("nt-absent"))
        .use_nt_variant(true);
    assert!(matches!(
        JobObject::open(&absent),
        Err(Error::NotFound { .. })
    ));
}

/// The `Command` a job spawned is left as it was: spawned again with plain std, it starts
/// outside the job. (On Linux it stays bound to the job.) A program that does not exist is
/// the system's error.
#[test]
fn spawn_leaves_the_command_reusable() {
    let job = create(&options("reusable"));
    let mut command = child("sleep:20000");
    let mut inside = Reap::new(job.spawn(&mut command).unwrap());
    assert_eq!(job.pids().unwrap(), vec![inside.pid]);
    job.terminate(5).unwrap();
    assert_terminated(inside.wait(), 5);

    let mut outside = Reap::new(child("exit:4").spawn().unwrap());
    assert_eq!(outside.wait().code(), Some(4));
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());

    let missing = job.spawn(&mut Command::new("C:\\no\\such\\program.exe"));
    let missing = missing.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::ProgramNotFound, "{missing:?}");
}

/// Windows reports each process's start and exit (with its exit code) before the job's
/// emptying, in order.
#[test]
fn notifications_new_exit_and_all_exited() {
    let job = create_arc(&options("new-exit").notifications(true));
    let watcher = Watcher::start(&job);
    let mut first = Reap::new(job.spawn(&mut child("exit:7")).unwrap());
    let pid = first.pid;
    first.wait();
    assert_eq!(
        watcher.until_all_exited(TIMEOUT),
        vec![
            Notification::NewProcess { pid },
            Notification::ProcessExited {
                pid,
                exit_code: Some(7)
            },
            Notification::AllProcessesExited,
        ]
    );
}

/// A grandchild's start and exit are reported too.
#[test]
fn notifications_for_a_grandchild() {
    let job = create_arc(&options("grandchild-notified").notifications(true));
    let watcher = Watcher::start(&job);
    let mut parent = Reap::new(job.spawn(&mut child("grandchild:300")).unwrap());
    parent.wait();
    let seen = watcher.until_all_exited(TIMEOUT);
    let started = seen
        .iter()
        .filter(|n| matches!(n, Notification::NewProcess { .. }))
        .count();
    let exited = seen
        .iter()
        .filter(|n| {
            matches!(
                n,
                Notification::ProcessExited {
                    exit_code: Some(0),
                    ..
                }
            )
        })
        .count();
    assert_eq!((started, exited), (2, 2), "{seen:?}");
}

/// `terminate(code)` gives every process that exit code, in its notification too, and the
/// accounting counts every process the job held.
#[test]
fn terminate_reports_the_exit_code() {
    let job = create_arc(&options("terminate-code").notifications(true));
    let watcher = Watcher::start(&job);
    let mut a = Reap::new(job.spawn(&mut child("sleep:20000")).unwrap());
    let mut b = Reap::new(
        job.spawn(child("grandchild:20000").stdout(Stdio::piped()))
            .unwrap(),
    );
    grandchild_of(b.child());
    job.terminate(42).unwrap();
    assert_terminated(a.wait(), 42);
    assert_terminated(b.wait(), 42);
    let seen = watcher.until_all_exited(TIMEOUT);
    for notification in &seen {
        if let Notification::ProcessExited { exit_code, .. } = notification {
            assert_eq!(*exit_code, Some(42), "{seen:?}");
        }
    }
    let stats = job.processor_stats().unwrap();
    assert_eq!(stats.active_processes, 0);
    assert_eq!(stats.total_processes, 3);
}

/// The process limit is enforced: the one process allowed cannot start a second, and the
/// refusal is notified.
#[test]
fn process_limit_refuses_a_second_process() {
    let job = create_arc(&options("process-limit").notifications(true));
    let limited = job.set_max_processes(Some(1));
    if !limits_implemented("process_limit_refuses_a_second_process") {
        assert!(
            matches!(limited, Err(Error::Unsupported { .. })),
            "{limited:?}"
        );
        return;
    }
    limited.unwrap();
    let watcher = Watcher::start(&job);
    let mut parent = Reap::new(
        job.spawn(child("grandchild:1000").stderr(Stdio::null()))
            .unwrap(),
    );
    let status = parent.wait();
    assert!(
        !status.success(),
        "the grandchild was started beyond the limit"
    );
    let seen = watcher.until_all_exited(TIMEOUT);
    assert!(seen.contains(&Notification::ActiveProcessLimit), "{seen:?}");
}

#[test]
fn processor_stats() {
    let job = create(&options("processor-stats"));
    let mut spinner = Reap::new(job.spawn(&mut child("spin:300")).unwrap());
    spinner.wait();
    let stats = job.processor_stats().unwrap();
    assert_eq!(stats.total_processes, 1);
    assert_eq!(stats.active_processes, 0);
    if limits_implemented("processor_stats") {
        assert!(
            stats.user_time + stats.kernel_time >= Duration::from_millis(100),
            "{stats:?}"
        );
        assert!(stats.page_faults > 0, "{stats:?}");
    } else {
        eprintln!("Wine reports the counts only: {stats:?}");
    }
}

#[test]
fn memory_stats_and_private_working_set() {
    let job = create(&options("memory-stats"));
    assert_eq!(job.private_working_set().unwrap(), 0, "an empty job");
    let mut running = Reap::new(job.spawn(&mut child("sleep:20000")).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let memory = job.memory_stats();
    let private = job.private_working_set();
    job.terminate(1).unwrap();
    running.wait();
    if !limits_implemented("memory_stats_and_private_working_set") {
        assert!(
            matches!(memory, Err(Error::Unsupported { .. })),
            "{memory:?}"
        );
        match private {
            Ok(bytes) => assert!(bytes > 0),
            Err(Error::Unsupported { what }) => eprintln!("private working set: {what}"),
            other => panic!("private working set: {other:?}"),
        }
        return;
    }
    let memory = memory.unwrap();
    assert!(
        memory.current > 0 && memory.peak >= memory.current,
        "{memory:?}"
    );
    assert_eq!(memory.limit, None);
    assert!(private.unwrap() > 0);
}

#[test]
fn storage_stats_need_io_tracking() {
    let job = create(&options("storage-stats"));
    assert!(matches!(
        job.storage_stats(),
        Err(Error::IoTrackingDisabled)
    ));
    let tracking = job.set_io_tracking();
    if !limits_implemented("storage_stats_need_io_tracking") {
        assert!(
            matches!(tracking, Err(Error::Unsupported { .. })),
            "{tracking:?}"
        );
        assert!(matches!(
            job.storage_stats(),
            Err(Error::IoTrackingDisabled)
        ));
        let created = JobObject::create(&Options::new().enable_io_tracking(true));
        assert!(
            matches!(created, Err(Error::Unsupported { .. })),
            "{created:?}"
        );
        return;
    }
    tracking.unwrap();
    let mut writer = Reap::new(job.spawn(&mut child("exit:0")).unwrap());
    writer.wait();
    job.storage_stats().unwrap();
    let tracked = create(&Options::new().enable_io_tracking(true));
    tracked.storage_stats().unwrap();
}

/// A job can be associated with one completion port only, once: a handle that opens it with
/// notifications after the last listener of this process left reuses that association.
#[test]
fn a_job_watched_again_after_its_last_listener_left() {
    let options = options("rewatched");
    let keeper = create(&options);
    let first = JobObject::open(&options.clone().notifications(true)).unwrap();
    first.close().unwrap();
    let second = Arc::new(JobObject::open(&options.clone().notifications(true)).unwrap());
    let watcher = Watcher::start(&second);
    let mut child = Reap::new(keeper.spawn(&mut child("exit:3")).unwrap());
    let pid = child.pid;
    child.wait();
    let seen = watcher.until_all_exited(TIMEOUT);
    assert!(seen.contains(&Notification::NewProcess { pid }), "{seen:?}");
    assert!(
        seen.contains(&Notification::ProcessExited {
            pid,
            exit_code: Some(3)
        }),
        "{seen:?}"
    );
}

/// A job this process watched, then let go of, and that another process made again and
/// watches, is not taken for the one watched before: opening it with notifications is refused
/// as `Busy` (it reports to the other process), and the other process still hears it empty.
#[test]
fn a_job_made_again_and_watched_elsewhere_is_not_taken_for_ours() {
    let options = options("made-again");
    let name = options.name.clone().unwrap();
    create(&options.clone().notifications(true))
        .close()
        .unwrap();
    let mut other = start_holder(&format!("watch:{name}"));
    let opened = JobObject::open(&options.clone().notifications(true));
    assert!(
        matches!(&opened, Err(Error::Busy { what }) if what.contains("port")),
        "{opened:?}"
    );
    // Without notifications it opens, and it is the other process's job.
    let plain = JobObject::open(&options).unwrap();
    let mut child = Reap::new(plain.spawn(&mut child("exit:0")).unwrap());
    child.wait();
    drop(other.stdin.take());
    assert!(other.wait().unwrap().success());
}

/// The builder keeps the caller's creation flags: a child asked for suspended stays so (in the
/// job) until killed.
#[test]
fn builder_keeps_creation_flags() {
    use jobobject::os::windows::CommandExt;
    const CREATE_SUSPENDED: u32 = 0x4;
    let job = create(&options("builder-flags"));
    let mut child = builder_child("exit:0")
        .creation_flags(CREATE_SUSPENDED)
        .spawn(&job)
        .unwrap();
    std::thread::sleep(QUIET);
    assert_eq!(child.try_wait().unwrap(), None, "a suspended child exited");
    assert_eq!(job.pids().unwrap(), vec![child.id()]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A batch file runs (through std's spawn, which quotes for cmd.exe) in the job, with its
/// exit code back.
#[test]
fn builder_runs_a_batch_file_in_the_job() {
    let job = create(&options("builder-batch"));
    let dir = std::env::temp_dir().join(format!("jobobject-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("seven.bat");
    std::fs::write(&script, "@exit /b 7\r\n").unwrap();
    let mut child = jobobject::process::Command::new(&script)
        .spawn(&job)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    std::fs::remove_dir_all(&dir).ok();
}

/// Windows documents no call that freezes a job: freeze, thaw and is_frozen say so, and
/// the job's processes run on.
#[test]
fn freezing_is_unsupported() {
    let job = JobObject::create(&anonymous_options()).unwrap();
    let mut child = job.spawn(&mut child("sleep:60000")).unwrap();
    for result in [job.freeze(), job.thaw(), job.is_frozen().map(drop)] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert!(
            err.to_string().contains("Windows documents no call"),
            "{err}"
        );
    }
    assert_eq!(job.pids().unwrap(), vec![child.id()]);
    job.terminate(1).unwrap();
    child.wait().unwrap();
}

/// The same job under another spelling of its name (`Local\NAME`) opens with
/// notifications, and both handles hear its processes.
#[test]
fn another_spelling_of_the_name_is_the_same_job() {
    let name = test_name("spelling");
    let job = create_arc(&named_options(&name).notifications(true));
    let other = format!("Local\\{name}");
    let opened = Arc::new(
        JobObject::open(&named_options(&other).notifications(true))
            .unwrap_or_else(|e| panic!("open {other:?}: {e}")),
    );
    let watcher = Watcher::start(&opened);
    let mut child = Reap::new(job.spawn(&mut child("exit:0")).unwrap());
    let pid = child.pid;
    child.wait();
    let seen = watcher.until_all_exited(TIMEOUT);
    assert!(
        seen.contains(&Notification::NewProcess { pid }),
        "{other:?}: {seen:?}"
    );
    // Dropping the watcher closes its handle; the creator's stays.
    drop(watcher);
    assert!(job.pids().is_ok());
}

/// Whether the test runs on real Windows; under Wine, which implements none of these limits,
/// it says which enforcement it leaves to real Windows.
fn on_real_windows(test: &str) -> bool {
    match wine() {
        Some(version) => {
            eprintln!("{test}: under Wine {version}: enforcement is checked on real Windows only");
            false
        }
        None => true,
    }
}

/// Real Windows: an allocation that would take the job over its memory limit fails (Windows
/// limits committed memory), and one under it succeeds.
#[test]
fn memory_limit_refuses_an_allocation_over_it() {
    if !on_real_windows("memory_limit_refuses_an_allocation_over_it") {
        return;
    }
    let job = create(&options("memory-enforced"));
    job.set_memory_limit(Some(64 << 20)).unwrap();
    let over = job.spawn(&mut child("alloc:128")).unwrap().wait().unwrap();
    assert_eq!(
        over.code(),
        Some(3),
        "128 MiB under a 64 MiB limit: {over:?}"
    );
    let under = job.spawn(&mut child("alloc:16")).unwrap().wait().unwrap();
    assert!(under.success(), "16 MiB under a 64 MiB limit: {under:?}");
}

/// Real Windows: a CPU rate holds a busy process to its share of the machine.
#[test]
fn cpu_rate_holds_a_busy_process_to_its_share() {
    if !on_real_windows("cpu_rate_holds_a_busy_process_to_its_share") {
        return;
    }
    let job = create(&options("rate-enforced"));
    job.set_cpu_limit(Some(jobobject::CpuLimit::Rate(1_000)))
        .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let before = job.processor_stats().unwrap();
    let start = std::time::Instant::now();
    let status = job.spawn(&mut child("spin:3000")).unwrap().wait().unwrap();
    assert!(status.success());
    let after = job.processor_stats().unwrap();
    let used = (after.user_time + after.kernel_time) - (before.user_time + before.kernel_time);
    let share = used.as_secs_f64() / start.elapsed().as_secs_f64() / cpus;
    assert!(
        share < 0.2,
        "a 10% rate let it use {:.0}% of the machine",
        share * 100.0
    );
}

/// Real Windows: the job's affinity is every process's affinity.
#[test]
fn affinity_is_the_processes_affinity() {
    if !on_real_windows("affinity_is_the_processes_affinity") {
        return;
    }
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        GetProcessAffinityMask, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let job = create(&options("affinity-enforced"));
    job.set_cpu_affinity(Some(1)).unwrap();
    let mut child = Reap::new(job.spawn(&mut child("sleep:5000")).unwrap());
    let (mut process, mut system) = (0usize, 0usize);
    // SAFETY: a query right on a live child, whose handle is closed after the one query.
    let ok = unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, child.pid);
        assert!(!handle.is_null(), "OpenProcess");
        let ok = GetProcessAffinityMask(handle, &mut process, &mut system);
        CloseHandle(handle);
        ok
    };
    assert_ne!(ok, 0, "GetProcessAffinityMask");
    assert_eq!(process, 1, "the child may run on {process:#x}");
    child.wait();
}

/// Real Windows: the process limit refuses a process beyond it.
#[test]
fn process_limit_refuses_one_more() {
    if !on_real_windows("process_limit_refuses_one_more") {
        return;
    }
    let job = create(&options("processes-enforced"));
    job.set_max_processes(Some(1)).unwrap();
    let _first = Reap::new(job.spawn(&mut child("sleep:10000")).unwrap());
    let err = job.spawn(&mut child("sleep:10000")).unwrap_err();
    assert!(format!("{err:?}").contains("1816"), "{err:?}"); // ERROR_NOT_ENOUGH_QUOTA
}

/// Real Windows: an I/O bandwidth limit reads back per volume as set (Windows normalizes
/// operation counts to 8 KiB; bandwidth is bytes per second).
#[test]
fn io_limit_reads_back() {
    if !on_real_windows("io_limit_reads_back") {
        return;
    }
    let job = create(&options("io-enforced"));
    job.set_io_limit(Some(1 << 20), Some(100)).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(1 << 20));
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(100));
}

/// Real Windows: a process that ends abnormally (a fail-fast) is reported so.
#[test]
fn an_abnormal_exit_is_reported() {
    if !on_real_windows("an_abnormal_exit_is_reported") {
        return;
    }
    let job = create_arc(&options("abnormal").notifications(true));
    let watcher = Watcher::start(&job);
    let mut crashed = Reap::new(job.spawn(&mut child("abort")).unwrap());
    let pid = crashed.pid;
    crashed.wait();
    let seen = watcher.until_all_exited(TIMEOUT);
    assert!(
        seen.iter()
            .any(|n| matches!(n, Notification::AbnormalProcessExit { pid: p, .. } if *p == pid)),
        "{seen:?}"
    );
}
