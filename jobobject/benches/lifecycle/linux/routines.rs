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

/// The same for a tokio task that already awaits `next_notification` (feature `tokio`): from
/// the SIGKILL until the task runs again, on a runtime of one worker thread.
#[cfg(feature = "tokio")]
pub(super) fn exit_to_async_notification(
    job: &JobObject,
    runtime: &tokio::runtime::Runtime,
    settle: Duration,
) -> Duration {
    let mut child = job.spawn(Command::new(SLEEP).arg("60")).unwrap();
    let next = job.next_notification();
    let waiting = runtime.spawn(async move { (next.await, Instant::now()) });
    // Long enough for the task to be polled once, and so listening, before the kill.
    thread::sleep(settle);
    let t0 = Instant::now();
    child.kill().unwrap();
    let (notification, woken) = runtime.block_on(waiting).unwrap();
    let elapsed = woken - t0;
    assert_eq!(notification.unwrap(), Notification::AllProcessesExited);
    child.wait().unwrap();
    record("latency/async", elapsed);
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

/// The limits of the lifecycle benchmark: 256 MiB, half of the host's CPUs, 64 processes.
pub(super) fn lifecycle_limits() -> jobobject::JobLimits {
    jobobject::JobLimits::new()
        .memory(256 << 20)
        .cpu(jobobject::CpuLimit::Rate(5_000))
        .max_processes(64)
}

/// A whole job: create, memory/CPU/process limits, spawn `/bin/true` with the builder, wait,
/// close.
pub(super) fn job_lifecycle(options: &Options) {
    let job = JobObject::create(options).unwrap();
    job.set_resource_limits(&lifecycle_limits()).unwrap();
    let mut child = jobobject::process::Command::new(TRUE).spawn(&job).unwrap();
    assert!(child.wait().unwrap().success());
    job.close().unwrap();
}

/// The same by hand: the same directories, the same limit files written, a `pre_exec` hook
/// joining them, wait, rmdir (`limits` says which file of which directory gets what).
pub(super) fn floor_lifecycle(parents: &[PathBuf], limits: &[Vec<(&'static str, String)>]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let what = format!("lifecycle-floor-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let raw = RawJoin::new(parents, &what).expect("make the floor cgroups");
    for (dir, files) in raw.cgroups.dirs.iter().zip(limits) {
        for (file, value) in files {
            fs::write(dir.join(file), value).expect("write a floor limit");
        }
    }
    let status = raw.command(TRUE).spawn().unwrap().wait().unwrap();
    assert!(status.success());
}

/// Which limit files of each floor directory (in `parents` order) get the lifecycle limits,
/// found once: the same files the library writes.
pub(super) fn floor_limit_files(parents: &[PathBuf]) -> Vec<Vec<(&'static str, String)>> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let quota = 100_000 * cpus / 2;
    let candidates = [
        ("memory.max", (256u64 << 20).to_string()),
        ("memory.limit_in_bytes", (256u64 << 20).to_string()),
        ("cpu.max", format!("{quota} 100000")),
        ("cpu.cfs_quota_us", quota.to_string()),
        ("pids.max", "64".to_owned()),
    ];
    let probe = RawCgroups::make(parents, &bench_name("limit-probe")).expect("probe cgroups");
    probe
        .dirs
        .iter()
        .map(|dir| {
            candidates
                .iter()
                .filter(|(file, _)| dir.join(file).exists())
                .cloned()
                .collect()
        })
        .collect()
}

/// Parks `count` idle threads until the returned guard is dropped.
pub(super) fn idle_threads(count: usize) -> IdleThreads {
    let stop = Arc::new(std::sync::Barrier::new(count + 1));
    let handles = (0..count)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    stop.wait();
                })
                .expect("start an idle thread")
        })
        .collect();
    IdleThreads { stop, handles }
}

pub(super) struct IdleThreads {
    stop: Arc<std::sync::Barrier>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Drop for IdleThreads {
    fn drop(&mut self) {
        self.stop.wait();
        for handle in self.handles.drain(..) {
            handle.join().ok();
        }
    }
}

/// `threads` threads each running `spawn` `n` times, timing each, while a shell forks
/// `/bin/true` in a loop; records every sample under `key`.
pub(super) fn spawns_under_load(
    threads: usize,
    n: usize,
    key: &'static str,
    spawn: fn(&JobObject),
    job: &JobObject,
) {
    let mut load = Command::new("sh")
        .args(["-c", "while :; do /bin/true; done"])
        .spawn()
        .expect("start the fork loop");
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..n {
                    let t0 = Instant::now();
                    spawn(job);
                    record(key, t0.elapsed());
                }
            });
        }
    });
    load.kill().ok();
    load.wait().ok();
}

/// A plain spawn, in the shape `spawns_under_load` takes.
pub(super) fn plain_spawn_for(_: &JobObject) {
    plain_spawn();
}
