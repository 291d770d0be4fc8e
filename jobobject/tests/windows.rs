//! The Windows backend on real Job Objects: run on Windows, or under Wine by
//! `scripts/windows-test`.
//!
//! Lifecycle, names, membership, notifications, terminate and kill-on-close are checked for
//! real everywhere. Wine 8 does not implement limits and most statistics: there, each test
//! checks that the library says so (`Error::Unsupported`, or a limit that reads back unset),
//! and on Windows that the limit is applied. Which of the two a test checked is printed; none
//! is skipped.
//!
//! Children are this test binary run again in a child mode (`JOBOBJECT_TEST_CHILD`), so that
//! no other program is needed.
#![cfg(windows)]

use std::ffi::CStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use jobobject::{CpuLimit, Error, JobLimits, JobObject, Notification, Options};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

const CHILD_ENV: &str = "JOBOBJECT_TEST_CHILD";
const WAIT: Duration = Duration::from_secs(30);

/// The Wine version, from ntdll's `wine_get_version` export; `None` on Windows.
fn wine() -> Option<String> {
    let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
    // SAFETY: a NUL-terminated module name; ntdll is always loaded.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    assert!(!module.is_null(), "ntdll is not loaded");
    // SAFETY: `module` is loaded and the symbol name NUL-terminated.
    let address = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine declares `const char *wine_get_version(void)`.
    let get = unsafe {
        std::mem::transmute::<
            unsafe extern "system" fn() -> isize,
            unsafe extern "C" fn() -> *const i8,
        >(address)
    };
    // SAFETY: it returns a static NUL-terminated string.
    Some(
        unsafe { CStr::from_ptr(get()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Says which behaviour a test checks.
fn platform(test: &str) -> Option<String> {
    let wine = wine();
    match &wine {
        Some(version) => {
            eprintln!(
                "{test}: under Wine {version}: checking what Wine implements, and that it reports the rest as unsupported"
            )
        }
        None => eprintln!("{test}: on Windows: checking the real behaviour"),
    }
    wine
}

/// The child modes, run when this binary is started with `JOBOBJECT_TEST_CHILD` set.
#[test]
fn child_mode() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, arg) = mode.split_once(':').unwrap_or((mode.as_str(), "0"));
    let arg: u64 = arg.parse().unwrap_or(0);
    match what {
        "sleep" => std::thread::sleep(Duration::from_millis(arg)),
        "exit" => std::process::exit(arg as i32),
        "spin" => {
            let end = Instant::now() + Duration::from_millis(arg);
            let mut x = 0u64;
            while Instant::now() < end {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
            std::hint::black_box(x);
        }
        "grandchild" => {
            let mut grandchild = child(&format!("sleep:{arg}")).spawn().unwrap();
            println!("GRANDCHILD {}", grandchild.id());
            grandchild.wait().unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
    std::process::exit(0);
}

/// This binary in child mode `mode`.
fn child(mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_mode",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "jobobject-test-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for `child` to exit, at most `WAIT`.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < end,
            "child {} still runs after {WAIT:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Forwards the job's notifications to a channel, until the handle is closed.
fn listen(job: &Arc<JobObject>) -> Receiver<Notification> {
    let (tx, rx) = mpsc::channel();
    let job = Arc::clone(job);
    std::thread::spawn(move || {
        while let Ok(notification) = job.poll_notification() {
            if tx.send(notification).is_err() {
                break;
            }
        }
    });
    rx
}

/// Notifications until `AllProcessesExited` (included).
fn until_all_exited(rx: &Receiver<Notification>) -> Vec<Notification> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(notification) => {
                seen.push(notification);
                if notification == Notification::AllProcessesExited {
                    return seen;
                }
            }
            Err(err) => panic!("no AllProcessesExited within {WAIT:?} ({err}); got {seen:?}"),
        }
    }
}

fn notifying() -> Arc<JobObject> {
    Arc::new(JobObject::create(&Options::new().notifications(true)).unwrap())
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

#[test]
fn lifecycle_and_already_closed() {
    let job = JobObject::create(&Options::default()).unwrap();
    assert!(job.name().unwrap().starts_with("anonymous-"));
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert!(matches!(job.poll_notification(), Err(Error::NotRegistered)));
    job.close().unwrap();
    assert!(matches!(job.close(), Err(Error::AlreadyClosed)));
    assert!(matches!(job.pids(), Err(Error::AlreadyClosed)));
    assert!(matches!(job.name(), Err(Error::AlreadyClosed)));
    assert!(matches!(
        job.assign(std::process::id()),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(
        job.spawn(&mut child("exit:0")),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(job.terminate(1), Err(Error::AlreadyClosed)));
    assert!(matches!(job.poll_notification(), Err(Error::AlreadyClosed)));
    assert!(matches!(
        job.set_memory_limit(Some(1 << 20)),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(job.processor_stats(), Err(Error::AlreadyClosed)));
    assert!(matches!(
        job.set_terminate_on_last_handle_close(),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn close_wakes_a_blocked_poll() {
    let job = notifying();
    let waiter = {
        let job = Arc::clone(&job);
        std::thread::spawn(move || job.poll_notification())
    };
    std::thread::sleep(Duration::from_millis(100));
    job.close().unwrap();
    assert!(matches!(waiter.join().unwrap(), Err(Error::AlreadyClosed)));
}

#[test]
fn named_create_open_and_already_exists() {
    let name = unique("named");
    let options = Options::new().name(&name);
    let job = JobObject::create(&options).unwrap();
    assert_eq!(job.name().unwrap(), name);
    match JobObject::create(&options) {
        Err(Error::AlreadyExists { job }) => assert_eq!(job, name),
        other => panic!("second create: {other:?}"),
    }
    let same = JobObject::open(&options).unwrap();
    let mut child = job.spawn(&mut child("sleep:20000")).unwrap();
    assert_eq!(same.pids().unwrap(), vec![child.id()]);
    same.terminate(3).unwrap();
    assert_eq!(wait(&mut child).code(), Some(3));
    // The first handle still works after the second is closed.
    same.close().unwrap();
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    job.close().unwrap();
    // The last handles to the job and to its process are gone, and so is the job, once the
    // system has let go of the dead process (asynchronously).
    drop(child);
    let end = Instant::now() + WAIT;
    loop {
        match JobObject::open(&options) {
            Err(Error::NotFound { .. }) => break,
            Ok(_) => assert!(Instant::now() < end, "the job outlives its handles"),
            Err(err) => panic!("{err}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn open_errors() {
    assert!(matches!(
        JobObject::open(&Options::default()),
        Err(Error::InvalidArgument { .. })
    ));
    match JobObject::open(&Options::new().name(unique("absent"))) {
        Err(Error::NotFound { what }) => assert!(what.contains("absent")),
        other => panic!("open of an absent job: {other:?}"),
    }
    for bad in ["", "a/b", ".hidden", "nul\0byte"] {
        assert!(
            matches!(
                JobObject::create(&Options::new().name(bad)),
                Err(Error::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
    let long = "x".repeat(256);
    assert!(matches!(
        JobObject::create(&Options::new().name(long)),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn nt_variant_names_the_same_jobs() {
    let name = unique("nt");
    let nt = Options::new().name(&name).use_nt_variant(true);
    let win32 = Options::new().name(&name);
    let job = JobObject::create(&nt).unwrap();
    assert!(matches!(
        JobObject::create(&nt),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        JobObject::create(&win32),
        Err(Error::AlreadyExists { .. })
    ));
    let by_win32 = JobObject::open(&win32).unwrap();
    let by_nt = JobObject::open(&nt).unwrap();
    let mut child = job.spawn(&mut child("sleep:20000")).unwrap();
    assert_eq!(by_win32.pids().unwrap(), vec![child.id()]);
    assert_eq!(by_nt.pids().unwrap(), vec![child.id()]);
    by_nt.terminate(1).unwrap();
    wait(&mut child);
    let anonymous = JobObject::create(&Options::new().use_nt_variant(true)).unwrap();
    assert_eq!(anonymous.pids().unwrap(), Vec::<u32>::new());
    assert!(matches!(
        JobObject::open(
            &Options::new()
                .name(unique("nt-absent"))
                .use_nt_variant(true)
        ),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn assign_a_running_process() {
    let job = JobObject::create(&Options::default()).unwrap();
    let mut running = child("sleep:20000").spawn().unwrap();
    job.assign(running.id()).unwrap();
    assert_eq!(job.pids().unwrap(), vec![running.id()]);
    assert!(matches!(job.assign(0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        job.assign(0x7FFF_FFF0),
        Err(Error::ProcessNotFound { .. })
    ));
    job.terminate(9).unwrap();
    assert_eq!(wait(&mut running).code(), Some(9));

    let mut exited = child("exit:0").spawn().unwrap();
    let pid = exited.id();
    wait(&mut exited);
    // The process is gone (our handle keeps its id from being reused).
    assert!(
        matches!(job.assign(pid), Err(Error::ProcessNotFound { .. })),
        "{:?}",
        job.assign(pid)
    );
}

#[test]
fn spawn_puts_the_child_in_the_job_and_leaves_the_command_reusable() {
    let job = JobObject::create(&Options::default()).unwrap();
    let mut command = child("sleep:20000");
    let mut inside = job.spawn(&mut command).unwrap();
    assert_eq!(job.pids().unwrap(), vec![inside.id()]);
    job.terminate(5).unwrap();
    assert_eq!(wait(&mut inside).code(), Some(5));

    // The command is no longer suspended: spawned again outside the job, it runs and exits.
    let mut again = child("exit:4");
    let mut outside = again.spawn().unwrap();
    assert_eq!(wait(&mut outside).code(), Some(4));
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());

    let missing = job.spawn(&mut Command::new("C:\\no\\such\\program.exe"));
    assert!(matches!(missing, Err(Error::Os { .. })), "{missing:?}");
}

#[test]
fn pids_include_grandchildren() {
    let job = JobObject::create(&Options::default()).unwrap();
    let mut parent = job
        .spawn(child("grandchild:20000").stdout(Stdio::piped()))
        .unwrap();
    let stdout = parent.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .find(|line| line.starts_with("GRANDCHILD "))
        .expect("the child reports its grandchild");
    let grandchild: u32 = line["GRANDCHILD ".len()..].trim().parse().unwrap();
    let mut expected = vec![parent.id(), grandchild];
    expected.sort_unstable();
    assert_eq!(job.pids().unwrap(), expected);
    job.terminate(1).unwrap();
    wait(&mut parent);
    let end = Instant::now() + WAIT;
    while !job.pids().unwrap().is_empty() {
        assert!(Instant::now() < end, "processes left: {:?}", job.pids());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn notifications_new_exit_and_all_exited() {
    let job = notifying();
    let rx = listen(&job);
    let mut first = job.spawn(&mut child("exit:7")).unwrap();
    let pid = first.id();
    wait(&mut first);
    let seen = until_all_exited(&rx);
    assert_eq!(
        seen,
        vec![
            Notification::NewProcess { pid },
            Notification::ProcessExited {
                pid,
                exit_code: Some(7)
            },
            Notification::AllProcessesExited,
        ]
    );
    // Once per emptying: again for the next process.
    let mut second = job.spawn(&mut child("exit:0")).unwrap();
    wait(&mut second);
    let seen = until_all_exited(&rx);
    assert_eq!(seen.last(), Some(&Notification::AllProcessesExited));
    assert!(
        seen.contains(&Notification::NewProcess { pid: second.id() }),
        "{seen:?}"
    );
    // And never twice for one emptying.
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    job.close().unwrap();
}

#[test]
fn notifications_for_a_grandchild() {
    let job = notifying();
    let rx = listen(&job);
    let mut parent = job.spawn(&mut child("grandchild:300")).unwrap();
    wait(&mut parent);
    let seen = until_all_exited(&rx);
    let new: Vec<_> = seen
        .iter()
        .filter(|n| matches!(n, Notification::NewProcess { .. }))
        .collect();
    assert_eq!(new.len(), 2, "{seen:?}");
    let exits = seen
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
    assert_eq!(exits, 2, "{seen:?}");
}

#[test]
fn every_notified_handle_hears_it() {
    let name = unique("two-handles");
    let first =
        Arc::new(JobObject::create(&Options::new().name(&name).notifications(true)).unwrap());
    let second =
        Arc::new(JobObject::open(&Options::new().name(&name).notifications(true)).unwrap());
    let (rx1, rx2) = (listen(&first), listen(&second));
    let mut child = first.spawn(&mut child("exit:0")).unwrap();
    wait(&mut child);
    assert_eq!(
        until_all_exited(&rx1).last(),
        Some(&Notification::AllProcessesExited)
    );
    assert_eq!(
        until_all_exited(&rx2).last(),
        Some(&Notification::AllProcessesExited)
    );
    // The second handle goes; the first still hears, and a third handle can join again.
    second.close().unwrap();
    let third = Arc::new(JobObject::open(&Options::new().name(&name).notifications(true)).unwrap());
    let rx3 = listen(&third);
    let mut again = first.spawn(&mut self::child("exit:0")).unwrap();
    wait(&mut again);
    assert_eq!(
        until_all_exited(&rx1).last(),
        Some(&Notification::AllProcessesExited)
    );
    assert_eq!(
        until_all_exited(&rx3).last(),
        Some(&Notification::AllProcessesExited)
    );
}

#[test]
fn terminate_reports_the_exit_code_and_all_exited() {
    let job = notifying();
    let rx = listen(&job);
    let mut a = job.spawn(&mut child("sleep:20000")).unwrap();
    let mut b = job.spawn(&mut child("grandchild:20000")).unwrap();
    // Both children (and the grandchild) are running.
    let end = Instant::now() + WAIT;
    while job.pids().unwrap().len() < 3 {
        assert!(Instant::now() < end, "pids: {:?}", job.pids());
        std::thread::sleep(Duration::from_millis(10));
    }
    job.terminate(42).unwrap();
    assert_eq!(wait(&mut a).code(), Some(42));
    assert_eq!(wait(&mut b).code(), Some(42));
    let seen = until_all_exited(&rx);
    for notification in &seen {
        if let Notification::ProcessExited { exit_code, .. } = notification {
            assert_eq!(*exit_code, Some(42), "{seen:?}");
        }
    }
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "a second AllProcessesExited"
    );
    let stats = job.processor_stats().unwrap();
    assert_eq!(stats.active_processes, 0);
    assert_eq!(stats.total_processes, 3);
}

#[test]
fn kill_on_last_handle_close() {
    let job = JobObject::create(&Options::default()).unwrap();
    let mut doomed = job.spawn(&mut child("sleep:60000")).unwrap();
    job.set_terminate_on_last_handle_close().unwrap();
    // Setting a limit afterwards keeps the flag (Wine reads no flags back).
    let _ = job.set_memory_limit(Some(512 << 20));
    assert!(doomed.try_wait().unwrap().is_none());
    let closed = Instant::now();
    job.close().unwrap();
    // It would sleep for a minute: it was killed (Wine kills with exit code 0).
    let status = wait(&mut doomed);
    eprintln!("killed on close after {:?}: {status:?}", closed.elapsed());
    assert!(closed.elapsed() < Duration::from_secs(10));
}

#[test]
fn without_kill_on_close_processes_outlive_the_handle() {
    let job = JobObject::create(&Options::default()).unwrap();
    let mut survivor = job.spawn(&mut child("sleep:60000")).unwrap();
    job.close().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(survivor.try_wait().unwrap().is_none());
    survivor.kill().unwrap();
    wait(&mut survivor);
}

#[test]
fn cpu_limits() {
    let wine = platform("cpu_limits");
    let job = JobObject::create(&Options::default()).unwrap();
    for bad in [
        CpuLimit::Weight(0),
        CpuLimit::Weight(10),
        CpuLimit::Rate(0),
        CpuLimit::Rate(10_001),
    ] {
        assert!(
            matches!(
                job.set_cpu_limit(Some(bad)),
                Err(Error::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
    if wine.is_some() {
        for limit in [CpuLimit::Weight(5), CpuLimit::Rate(2500)] {
            assert!(matches!(
                job.set_cpu_limit(Some(limit)),
                Err(Error::Unsupported { .. })
            ));
        }
        assert!(matches!(job.cpu_limit(), Err(Error::Unsupported { .. })));
        return;
    }
    assert_eq!(job.cpu_limit().unwrap(), None);
    job.set_cpu_limit(Some(CpuLimit::Weight(7))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(7)));
    // Rate replaces weight: not both set.
    job.set_cpu_limit(Some(CpuLimit::Rate(2500))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(2500)));
    job.set_cpu_limit(Some(CpuLimit::Weight(1))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(1)));
    job.set_cpu_limit(None).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), None);
}

#[test]
fn memory_and_process_limits() {
    let wine = platform("memory_and_process_limits");
    let job = JobObject::create(&Options::default()).unwrap();
    assert!(matches!(
        job.set_memory_limit(Some(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        job.set_max_processes(Some(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(job.memory_limit().unwrap(), None);
    assert_eq!(job.max_processes().unwrap(), None);
    if wine.is_some() {
        // Wine accepts the extended limits but stores none: the library must not claim them.
        let memory = job.set_memory_limit(Some(64 << 20));
        assert!(
            matches!(memory, Err(Error::Unsupported { .. })),
            "{memory:?}"
        );
        assert_eq!(job.memory_limit().unwrap(), None);
        let processes = job.set_max_processes(Some(2));
        assert!(
            matches!(processes, Err(Error::Unsupported { .. })),
            "{processes:?}"
        );
        assert_eq!(job.max_processes().unwrap(), None);
        return;
    }
    job.set_memory_limit(Some(64 << 20)).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(64 << 20));
    job.set_max_processes(Some(1)).unwrap();
    assert_eq!(job.max_processes().unwrap(), Some(1));
    job.set_memory_limit(None).unwrap();
    assert_eq!(job.memory_limit().unwrap(), None);
    assert_eq!(
        job.max_processes().unwrap(),
        Some(1),
        "clearing one kept the other"
    );
    // The limit is enforced: the one process allowed cannot start a second.
    let rx_job = Arc::new(JobObject::create(&Options::new().notifications(true)).unwrap());
    rx_job.set_max_processes(Some(1)).unwrap();
    let rx = listen(&rx_job);
    let mut parent = rx_job
        .spawn(child("grandchild:1000").stderr(Stdio::null()))
        .unwrap();
    let status = wait(&mut parent);
    assert!(
        !status.success(),
        "the grandchild was started beyond the limit"
    );
    let seen = until_all_exited(&rx);
    assert!(seen.contains(&Notification::ActiveProcessLimit), "{seen:?}");
}

#[test]
fn cpu_affinity() {
    let wine = platform("cpu_affinity");
    let job = JobObject::create(&Options::default()).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), None);
    assert!(matches!(
        job.set_cpu_affinity(Some(0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        job.set_cpu_affinity(Some(1 << 63)),
        Err(Error::InvalidArgument { .. }) | Ok(())
    ));
    let result = job.set_cpu_affinity(Some(1));
    if wine.is_some() {
        assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "{result:?}"
        );
        assert_eq!(
            job.cpu_affinity().unwrap(),
            None,
            "an affinity claimed but not applied"
        );
        return;
    }
    result.unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), Some(1));
    job.set_cpu_affinity(None).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), None);
}

#[test]
fn io_limits() {
    let wine = platform("io_limits");
    let job = JobObject::create(&Options::default()).unwrap();
    assert!(matches!(
        job.set_io_limit(Some(0), None),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        job.set_io_limit(None, Some(0)),
        Err(Error::InvalidArgument { .. })
    ));
    let result = job.set_io_limit(Some(10 << 20), Some(500));
    if wine.is_some() {
        assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "{result:?}"
        );
        assert!(matches!(
            job.io_max_bandwidth_limit(),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            job.io_max_iops_limit(),
            Err(Error::Unsupported { .. })
        ));
        return;
    }
    result.unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(10 << 20));
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(500));
    job.set_io_limit(None, None).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
}

#[test]
fn resource_limits_are_checked_before_anything_is_applied() {
    let wine = platform("resource_limits");
    let job = JobObject::create(&Options::default()).unwrap();
    for bad in [
        JobLimits::new().cpu(CpuLimit::Rate(0)).memory(1 << 30),
        JobLimits::new().memory(1 << 30).io_iops(0),
    ] {
        assert!(matches!(
            job.set_resource_limits(&bad),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert_eq!(job.memory_limit().unwrap(), None);
    let limits = JobLimits::new().memory(256 << 20).max_processes(8);
    let result = job.set_resource_limits(&limits);
    if wine.is_some() {
        assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "{result:?}"
        );
        assert_eq!(job.memory_limit().unwrap(), None);
        let io = JobLimits::new().memory(256 << 20).io_bandwidth(1 << 20);
        assert!(matches!(
            job.set_resource_limits(&io),
            Err(Error::Unsupported { .. })
        ));
        return;
    }
    result.unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(256 << 20));
    assert_eq!(job.max_processes().unwrap(), Some(8));
    job.set_resource_limits(&JobLimits::new().cpu(CpuLimit::Rate(5000)))
        .unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(5000)));
    assert_eq!(
        job.memory_limit().unwrap(),
        Some(256 << 20),
        "a kept field changed a limit"
    );
}

#[test]
fn processor_stats() {
    let wine = platform("processor_stats");
    let job = JobObject::create(&Options::default()).unwrap();
    let mut spinner = job.spawn(&mut child("spin:300")).unwrap();
    wait(&mut spinner);
    let stats = job.processor_stats().unwrap();
    assert_eq!(stats.total_processes, 1);
    assert_eq!(stats.active_processes, 0);
    if wine.is_none() {
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
    let wine = platform("memory_stats");
    let job = JobObject::create(&Options::default()).unwrap();
    assert_eq!(job.private_working_set().unwrap(), 0, "an empty job");
    let mut running = job.spawn(&mut child("sleep:20000")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let memory = job.memory_stats();
    let private = job.private_working_set();
    job.terminate(1).unwrap();
    wait(&mut running);
    if wine.is_some() {
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
    let wine = platform("storage_stats");
    let job = JobObject::create(&Options::default()).unwrap();
    assert!(matches!(
        job.storage_stats(),
        Err(Error::IoTrackingDisabled)
    ));
    let tracking = job.set_io_tracking();
    if wine.is_some() {
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
    let mut writer = job.spawn(&mut child("exit:0")).unwrap();
    wait(&mut writer);
    job.storage_stats().unwrap();
    let tracked = JobObject::create(&Options::new().enable_io_tracking(true)).unwrap();
    tracked.storage_stats().unwrap();
}

#[test]
fn a_job_watched_again_after_its_last_listener_left() {
    // A job can be associated with one completion port only, once: a handle that opens it
    // with notifications after the last listener of this process left reuses that association.
    let name = unique("rewatched");
    let keeper = JobObject::create(&Options::new().name(&name)).unwrap();
    let first = JobObject::open(&Options::new().name(&name).notifications(true)).unwrap();
    first.close().unwrap();
    let second =
        Arc::new(JobObject::open(&Options::new().name(&name).notifications(true)).unwrap());
    let rx = listen(&second);
    let mut child = keeper.spawn(&mut child("exit:3")).unwrap();
    let pid = child.id();
    wait(&mut child);
    let seen = until_all_exited(&rx);
    assert!(seen.contains(&Notification::NewProcess { pid }), "{seen:?}");
    assert!(
        seen.contains(&Notification::ProcessExited {
            pid,
            exit_code: Some(3)
        }),
        "{seen:?}"
    );
}

#[test]
fn wait_empty_and_poll_with_a_timeout() {
    let job = JobObject::create(&Options::new().notifications(true)).unwrap();
    assert!(job.wait_empty(Some(Duration::ZERO)).unwrap());
    assert_eq!(
        job.poll_notification_timeout(Duration::from_millis(50))
            .unwrap(),
        None
    );
    let mut sleeper = job.spawn(&mut child("sleep:300")).unwrap();
    assert!(!job.wait_empty(Some(Duration::from_millis(20))).unwrap());
    assert!(job.wait_empty(Some(WAIT)).unwrap());
    wait(&mut sleeper);
}
