//! What a job costs over its lifecycle on Linux, each cost next to a baseline measured in the
//! same run (absolute times are noisy on a shared machine; the ratios are what to compare):
//!
//! 1. `spawn_true`: `job.spawn` of `/bin/true` + wait, into one long-lived job, against a
//!    plain `Command::spawn` (std's posix_spawn path), the same with an empty `pre_exec` hook
//!    (std's fork path, which the library's hook forces), and the floor of joining the same
//!    cgroups by hand: a hook writing `0` to pre-opened `cgroup.procs` files.
//! 2. `create_close`: create + close of an empty anonymous job, against the floor of
//!    `mkdir` + `rmdir` of one directory in each hierarchy the library uses.
//! 3. `exit_to_notification`: from the SIGKILL of a job's only process to `poll_notification`
//!    returning `AllProcessesExited`, against the floor of the same event read by hand (an
//!    inotify watch on the `cgroup.events` of cgroups joined by hand) and against SIGKILL to
//!    `wait` returning for a plain child. The process is killed `SETTLE` after its spawn, and
//!    once more right after it: the kernel sends at most one `cgroup.events` notification per
//!    file every `DIV_ROUND_UP(HZ, 100)` jiffies (12 ms at HZ=250) and defers the ones in
//!    between, so an exit soon after the job's previous change is reported late.
//! 4. `terminate_200`: `terminate` of a job of 200 processes until `AllProcessesExited`,
//!    against SIGKILL to each of 200 plain children and reaping them all.
//!
//! The benchmarks that time only part of an iteration (3 and 4) use `iter_custom` with flat
//! sampling and one iteration per sample; criterion warns that it cannot complete the samples
//! in the (deliberately short) target time, which only means that.
//!
//! After criterion's own report, a plain summary follows, from samples taken in this process:
//! the spawn ratios come from rounds of 300 spawns of each variant, interleaved one by one so
//! that load from elsewhere falls on every variant alike, one ratio of medians per round, and
//! the median of the rounds. The spawn rounds run once more with 256 MiB of extra memory
//! touched in this process, since the fork path copies the parent's page tables and
//! posix_spawn does not. Every other line is the median and spread of individually timed
//! operations.
//!
//! Every job lives below this process's own cgroups (`CgroupParent::Own`), and every cgroup
//! made here is removed, also on a panic (the guards kill what is left and remove it). Run
//! with `JOBOBJECT_CGROUP_PARENT=self cargo bench -p jobobject`. Under `cargo test` every
//! routine runs once and the summary loops shrink to a few iterations.
//!
//! The benchmarks are Linux-only for now; elsewhere the binary says so and exits.

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the lifecycle benchmarks run on Linux only, for now");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::fs::{self, File};
    use std::hint::black_box;
    use std::io::{self, Write};
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    use criterion::{Criterion, SamplingMode};
    use jobobject::os::linux::{CgroupParent, OptionsExt};
    use jobobject::{JobObject, Notification, Options};
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::fs::inotify;

    const TRUE: &str = "/bin/true";
    const SLEEP: &str = "/bin/sleep";
    /// How long a process runs before the latency benchmarks kill it: longer than two of the
    /// kernel's `cgroup.events` notification intervals (12 ms at HZ=250, rounded up to a jiffy),
    /// so that neither the spawn's notification nor the one before it defers the exit's.
    const SETTLE: Duration = Duration::from_millis(40);
    /// Memory the summary's second spawn loops keep touched in this process.
    const BALLAST_BYTES: usize = 256 << 20;
    /// Processes in the job that `terminate_200` kills.
    const PROCESSES: usize = 200;
    /// The v1 controllers the library makes a job directory for (its `USED_V1_CONTROLLERS`).
    const USED_V1_CONTROLLERS: &[&str] = &[
        "cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids",
    ];

    /// How the binary was started: `cargo bench`, `cargo test`, or `--list` and the like.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Bench,
        Test,
        Other,
    }

    fn mode() -> Mode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        if has("--list") || args.iter().any(|a| a.starts_with("--profile-time")) {
            Mode::Other
        } else if has("--bench") && !has("--test") {
            Mode::Bench
        } else {
            Mode::Test
        }
    }

    /// The sizes of the summary's own loops.
    struct Sizes {
        spawn_rounds: usize,
        spawn_n: usize,
        create_rounds: usize,
        create_n: usize,
        latency_n: usize,
        latency_immediate_n: usize,
        ballast_bytes: usize,
        big_spawn_rounds: usize,
        big_spawn_n: usize,
    }

    impl Sizes {
        fn for_mode(mode: Mode) -> Self {
            match mode {
                Mode::Bench => Sizes {
                    spawn_rounds: 9,
                    spawn_n: 300,
                    create_rounds: 5,
                    create_n: 200,
                    latency_n: 100,
                    latency_immediate_n: 100,
                    ballast_bytes: BALLAST_BYTES,
                    big_spawn_rounds: 3,
                    big_spawn_n: 50,
                },
                _ => Sizes {
                    spawn_rounds: 1,
                    spawn_n: 2,
                    create_rounds: 1,
                    create_n: 2,
                    latency_n: 1,
                    latency_immediate_n: 1,
                    ballast_bytes: 1 << 20,
                    big_spawn_rounds: 1,
                    big_spawn_n: 1,
                },
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Samples kept for the summary.

    static SAMPLES: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());

    fn record(key: &'static str, sample: Duration) {
        SAMPLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .push(sample);
    }

    fn samples(key: &str) -> Vec<Duration> {
        SAMPLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Median, 10th and 90th percentile, min and max of some samples.
    struct Stats {
        n: usize,
        median: Duration,
        p10: Duration,
        p90: Duration,
        min: Duration,
        max: Duration,
    }

    impl Stats {
        fn of(mut samples: Vec<Duration>) -> Option<Stats> {
            if samples.is_empty() {
                return None;
            }
            samples.sort();
            let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
            Some(Stats {
                n: samples.len(),
                median: at(0.5),
                p10: at(0.1),
                p90: at(0.9),
                min: samples[0],
                max: samples[samples.len() - 1],
            })
        }
    }

    fn us(d: Duration) -> String {
        format!("{:.1} us", d.as_secs_f64() * 1e6)
    }

    fn line(label: &str, key: &str) -> String {
        match Stats::of(samples(key)) {
            Some(s) => format!(
                "  {label:<44} median {:>10}  p10 {:>10}  p90 {:>10}  min {:>10}  max {:>10}  (n={})",
                us(s.median),
                us(s.p10),
                us(s.p90),
                us(s.min),
                us(s.max),
                s.n
            ),
            None => format!("  {label:<44} (no samples)"),
        }
    }

    /// Median, min and max of some ratios.
    fn ratio_line(label: &str, mut ratios: Vec<f64>) -> String {
        if ratios.is_empty() {
            return format!("  {label:<44} (no rounds)");
        }
        ratios.sort_by(f64::total_cmp);
        format!(
            "  {label:<44} median {:.3}x  (min {:.3}x, max {:.3}x over {} rounds)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len()
        )
    }

    // ---------------------------------------------------------------------------------------
    // Jobs, always below this process's own cgroups.

    fn options() -> Options {
        Options::new().cgroup_parent(CgroupParent::Own)
    }

    /// A job that kills what is left in it and removes itself when dropped, also on a panic.
    fn guarded_job(options: &Options) -> JobObject {
        let job = JobObject::create(options).expect("create a job");
        job.set_terminate_on_last_handle_close()
            .expect("set terminate on close");
        job
    }

    fn bench_name(what: &str) -> String {
        format!("jobobject-bench-{}-{what}", std::process::id())
    }

    // ---------------------------------------------------------------------------------------
    // The floor: the same cgroup directories made, joined and removed by hand.

    /// This process's own cgroup directory in each hierarchy the library uses, the v2 one first
    /// (where there is one).
    fn own_cgroup_dirs() -> io::Result<Vec<PathBuf>> {
        let own = fs::read_to_string("/proc/self/cgroup")?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")?;
        let mut dirs = Vec::new();
        for mount in mounts.lines() {
            let Some((left, right)) = mount.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(mount_point), Some(fstype)) =
                (left.get(3), left.get(4), right.first())
            else {
                continue;
            };
            // The v2 line of /proc/self/cgroup, or the v1 line carrying this mount's first
            // controller that the library uses.
            let controller = match *fstype {
                "cgroup2" => None,
                "cgroup" => {
                    let options = right.get(2).copied().unwrap_or_default();
                    match options.split(',').find(|o| USED_V1_CONTROLLERS.contains(o)) {
                        Some(c) => Some(c),
                        None => continue,
                    }
                }
                _ => continue,
            };
            let Some(path) = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let wanted = match controller {
                    None => id == "0" && controllers.is_empty(),
                    Some(c) => id != "0" && controllers.split(',').any(|x| x == c),
                };
                wanted.then_some(path)
            }) else {
                continue;
            };
            let Ok(relative) = Path::new(path).strip_prefix(root) else {
                continue;
            };
            let dir = Path::new(mount_point).join(relative);
            if *fstype == "cgroup2" {
                dirs.insert(0, dir);
            } else {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }

    /// One directory per hierarchy, made by hand; removed when dropped.
    struct RawCgroups {
        dirs: Vec<PathBuf>,
    }

    impl RawCgroups {
        fn make(parents: &[PathBuf], name: &str) -> io::Result<Self> {
            let mut made = RawCgroups { dirs: Vec::new() };
            for parent in parents {
                let dir = parent.join(name);
                fs::create_dir(&dir)?;
                made.dirs.push(dir);
            }
            Ok(made)
        }

        /// Copies `cpuset.cpus` and `cpuset.mems` from the parent, which a v1 cpuset needs
        /// before it accepts a process.
        fn init_cpusets(&self) -> io::Result<()> {
            for dir in &self.dirs {
                let parent = dir.parent().expect("a cgroup has a parent");
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    if parent.join(file).exists() {
                        fs::write(dir.join(file), fs::read(parent.join(file))?)?;
                    }
                }
            }
            Ok(())
        }

        fn remove(&mut self) -> io::Result<()> {
            let mut result = Ok(());
            while let Some(dir) = self.dirs.pop() {
                let started = Instant::now();
                loop {
                    match fs::remove_dir(&dir) {
                        Err(e)
                            if e.kind() == io::ErrorKind::ResourceBusy
                                && started.elapsed() < Duration::from_secs(2) =>
                        {
                            thread::sleep(Duration::from_micros(100));
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                        Ok(()) => break,
                    }
                }
            }
            result
        }
    }

    impl Drop for RawCgroups {
        fn drop(&mut self) {
            let _ = self.remove();
        }
    }

    fn floor_create_remove(parents: &[PathBuf]) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = bench_name(&format!("floor-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let mut raw = RawCgroups::make(parents, &name).expect("mkdir the floor cgroups");
        raw.remove().expect("rmdir the floor cgroups");
    }

    /// Cgroups made by hand with their `cgroup.procs` files open, for a hook to join.
    struct RawJoin {
        procs: Arc<[File]>,
        // Dropped after `procs`: the directories are removed once the files are closed.
        cgroups: RawCgroups,
    }

    impl RawJoin {
        fn new(parents: &[PathBuf], what: &str) -> io::Result<Self> {
            let cgroups = RawCgroups::make(parents, &bench_name(what))?;
            cgroups.init_cpusets()?;
            let procs = cgroups
                .dirs
                .iter()
                .map(|d| {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(d.join("cgroup.procs"))
                })
                .collect::<io::Result<Vec<File>>>()?;
            Ok(RawJoin {
                procs: procs.into(),
                cgroups,
            })
        }

        /// A command whose child joins these cgroups before it execs.
        fn command(&self, program: &str) -> Command {
            let procs = Arc::clone(&self.procs);
            let mut command = Command::new(program);
            // SAFETY: between fork and exec the hook only calls write(2) on open descriptors and
            // allocates nothing, as the library's own hook does.
            unsafe {
                command.pre_exec(move || {
                    for mut file in procs.iter() {
                        file.write_all(b"0")?;
                    }
                    Ok(())
                })
            };
            command
        }
    }

    /// Joined-by-hand cgroups with an inotify watch on the v2 `cgroup.events`: what the library's
    /// event thread does, without the thread.
    struct RawWatch {
        join: RawJoin,
        inotify: OwnedFd,
        events: PathBuf,
    }

    impl RawWatch {
        fn new(parents: &[PathBuf]) -> io::Result<Option<Self>> {
            let join = RawJoin::new(parents, "notify-floor")?;
            let Some(events) = join
                .cgroups
                .dirs
                .first()
                .map(|d| d.join("cgroup.events"))
                .filter(|e| e.exists())
            else {
                return Ok(None);
            };
            let inotify =
                inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
            inotify::add_watch(&inotify, &events, inotify::WatchFlags::MODIFY)?;
            Ok(Some(RawWatch {
                join,
                inotify,
                events,
            }))
        }

        fn drain(&self) {
            let mut buffer = [MaybeUninit::<u8>::uninit(); 1024];
            let mut reader = inotify::Reader::new(&self.inotify, &mut buffer);
            while reader.next().is_ok() {}
        }

        fn populated(&self) -> bool {
            fs::read_to_string(&self.events)
                .expect("read cgroup.events")
                .contains("populated 1")
        }
    }

    // ---------------------------------------------------------------------------------------
    // The routines.

    fn plain_spawn() {
        let status = Command::new(TRUE).spawn().unwrap().wait().unwrap();
        assert!(status.success());
    }

    fn hooked_spawn() {
        let mut command = Command::new(TRUE);
        // SAFETY: the hook does nothing.
        unsafe { command.pre_exec(|| Ok(())) };
        let status = command.spawn().unwrap().wait().unwrap();
        assert!(status.success());
    }

    fn raw_join_spawn(raw: &RawJoin) {
        let status = raw.command(TRUE).spawn().unwrap().wait().unwrap();
        assert!(status.success());
    }

    fn job_spawn(job: &JobObject) {
        // A fresh command each time: the library's hook stays on the one it was given.
        let status = job.spawn(&mut Command::new(TRUE)).unwrap().wait().unwrap();
        assert!(status.success());
    }

    fn create_close(options: &Options) {
        let job = JobObject::create(options).unwrap();
        job.close().unwrap();
    }

    /// SIGKILL to the job's only process `settle` after its spawn, until `AllProcessesExited`.
    fn exit_to_notification(job: &JobObject, settle: Duration, key: &'static str) -> Duration {
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

    /// The same by hand: SIGKILL, then inotify wakeups until `cgroup.events` says empty.
    fn exit_to_inotify(raw: &RawWatch, settle: Duration) -> Duration {
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
    fn exit_to_wait(settle: Duration) -> Duration {
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
    fn wait_for_pids(job: &JobObject, count: usize) {
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
    fn terminate_job() -> Duration {
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
    fn kill_each_and_reap() -> Duration {
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

    // ---------------------------------------------------------------------------------------
    // Criterion's part.

    fn criterion_benches(c: &mut Criterion, parents: &[PathBuf]) {
        let spawn_job = guarded_job(&options().name(bench_name("spawn")));
        let raw_join = RawJoin::new(parents, "join-floor").expect("make the join-floor cgroups");
        let mut group = c.benchmark_group("spawn_true");
        // 60 samples fit the default 5 s at about 1 ms per spawn.
        group.sample_size(60);
        group.bench_function("plain", |b| b.iter(plain_spawn));
        group.bench_function("pre_exec_empty", |b| b.iter(hooked_spawn));
        group.bench_function("pre_exec_join_floor", |b| {
            b.iter(|| raw_join_spawn(&raw_join))
        });
        group.bench_function("job", |b| b.iter(|| job_spawn(&spawn_job)));
        group.finish();
        drop(raw_join);
        spawn_job.close().unwrap();

        let anonymous = options();
        let mut group = c.benchmark_group("create_close");
        group.bench_function("job_anonymous", |b| b.iter(|| create_close(&anonymous)));
        group.bench_function("mkdir_rmdir_floor", |b| {
            b.iter(|| floor_create_remove(black_box(parents)))
        });
        group.finish();

        let notified = guarded_job(&options().name(bench_name("latency")).notifications(true));
        let raw_watch = RawWatch::new(parents).expect("make the notify-floor cgroups");
        let mut group = c.benchmark_group("exit_to_notification");
        // Only the interval is timed, not the spawn and the settling around it: a short target
        // time keeps the run short, and flat sampling keeps the number of iterations down.
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(30)
            .warm_up_time(Duration::from_millis(5))
            .measurement_time(Duration::from_millis(30));
        group.bench_function("job_all_processes_exited", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| exit_to_notification(&notified, SETTLE, "latency/job"))
                    .sum()
            })
        });
        if let Some(raw_watch) = &raw_watch {
            group.bench_function("inotify_floor", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| exit_to_inotify(raw_watch, SETTLE)).sum())
            });
        }
        group.bench_function("plain_wait_baseline", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| exit_to_wait(SETTLE)).sum())
        });
        group.bench_function("job_killed_right_after_spawn", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        exit_to_notification(&notified, Duration::ZERO, "latency/job_immediate")
                    })
                    .sum()
            })
        });
        group.finish();
        drop(raw_watch);
        notified.close().unwrap();

        let mut group = c.benchmark_group("terminate_200");
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(10));
        group.bench_function("job_until_all_exited", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| terminate_job()).sum())
        });
        group.bench_function("kill_each_and_reap_baseline", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| kill_each_and_reap()).sum())
        });
        group.finish();
    }

    // ---------------------------------------------------------------------------------------
    // The summary's own interleaved loops.

    /// One round: `n` timed runs of each of `ops`, interleaved one by one (the order rotating
    /// every time), so that a burst of load from elsewhere on the machine falls on all of them
    /// alike; records each run under its key and returns each op's median in seconds (a
    /// median moves less than a total under such bursts).
    fn interleaved_round<const K: usize>(
        n: usize,
        ops: [(&'static str, &mut dyn FnMut()); K],
    ) -> [f64; K] {
        let mut runs: [Vec<Duration>; K] = std::array::from_fn(|_| Vec::with_capacity(n));
        for i in 0..n {
            for k in 0..K {
                let op = (i + k) % K;
                let t0 = Instant::now();
                (ops[op].1)();
                let elapsed = t0.elapsed();
                record(ops[op].0, elapsed);
                runs[op].push(elapsed);
            }
        }
        runs.map(|r| Stats::of(r).map_or(0.0, |s| s.median.as_secs_f64()))
    }

    #[derive(Default)]
    struct Ratios {
        job_vs_plain: Vec<f64>,
        hook_vs_plain: Vec<f64>,
        join_floor_vs_plain: Vec<f64>,
        job_vs_hook: Vec<f64>,
        big_job_vs_plain: Vec<f64>,
        big_hook_vs_plain: Vec<f64>,
        create_vs_floor: Vec<f64>,
    }

    /// Where the spawn loops record their samples.
    struct SpawnKeys {
        plain: &'static str,
        hook: &'static str,
        join_floor: &'static str,
        job: &'static str,
    }

    /// Rounds of `n` spawns of each variant, interleaved; each round's medians in seconds:
    /// plain, empty hook, join floor, job.
    fn spawn_rounds(
        keys: &SpawnKeys,
        rounds: usize,
        n: usize,
        job: &JobObject,
        raw_join: &RawJoin,
    ) -> Vec<[f64; 4]> {
        (0..rounds)
            .map(|_| {
                interleaved_round(
                    n,
                    [
                        (keys.plain, &mut plain_spawn),
                        (keys.hook, &mut hooked_spawn),
                        (keys.join_floor, &mut || raw_join_spawn(raw_join)),
                        (keys.job, &mut || job_spawn(job)),
                    ],
                )
            })
            .collect()
    }

    fn summary_loops(sizes: &Sizes, parents: &[PathBuf]) -> Ratios {
        let mut ratios = Ratios::default();

        let job = guarded_job(&options().name(bench_name("spawn-summary")));
        let raw_join = RawJoin::new(parents, "join-floor").expect("make the join-floor cgroups");
        let keys = SpawnKeys {
            plain: "spawn/plain",
            hook: "spawn/pre_exec_empty",
            join_floor: "spawn/pre_exec_join_floor",
            job: "spawn/job",
        };
        for [plain, hook, join_floor, in_job] in
            spawn_rounds(&keys, sizes.spawn_rounds, sizes.spawn_n, &job, &raw_join)
        {
            ratios.job_vs_plain.push(in_job / plain);
            ratios.hook_vs_plain.push(hook / plain);
            ratios.join_floor_vs_plain.push(join_floor / plain);
            ratios.job_vs_hook.push(in_job / hook);
        }

        // The same from a parent with more memory mapped: fork copies its page tables, the
        // posix_spawn path (plain spawn) does not.
        let ballast = vec![1u8; sizes.ballast_bytes];
        black_box(&ballast);
        let keys = SpawnKeys {
            plain: "spawn_big/plain",
            hook: "spawn_big/pre_exec_empty",
            join_floor: "spawn_big/pre_exec_join_floor",
            job: "spawn_big/job",
        };
        for [plain, hook, _, in_job] in spawn_rounds(
            &keys,
            sizes.big_spawn_rounds,
            sizes.big_spawn_n,
            &job,
            &raw_join,
        ) {
            ratios.big_job_vs_plain.push(in_job / plain);
            ratios.big_hook_vs_plain.push(hook / plain);
        }
        drop(ballast);
        drop(raw_join);
        job.close().unwrap();

        let anonymous = options();
        for _ in 0..sizes.create_rounds {
            let [job, floor] = interleaved_round(
                sizes.create_n,
                [
                    ("create_close/job", &mut || create_close(&anonymous)),
                    ("create_close/floor", &mut || floor_create_remove(parents)),
                ],
            );
            ratios.create_vs_floor.push(job / floor);
        }

        let notified = guarded_job(
            &options()
                .name(bench_name("latency-summary"))
                .notifications(true),
        );
        let raw_watch = RawWatch::new(parents).expect("make the notify-floor cgroups");
        for _ in 0..sizes.latency_n {
            exit_to_notification(&notified, SETTLE, "latency/job");
            if let Some(raw_watch) = &raw_watch {
                exit_to_inotify(raw_watch, SETTLE);
            }
            exit_to_wait(SETTLE);
        }
        for _ in 0..sizes.latency_immediate_n {
            exit_to_notification(&notified, Duration::ZERO, "latency/job_immediate");
        }
        drop(raw_watch);
        notified.close().unwrap();
        ratios
    }

    fn print_summary(ratios: Ratios, sizes: &Sizes) {
        let mut out = String::new();
        let mut push = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        push("\n==== jobobject lifecycle summary (this process, same run) ====".into());
        push(format!(
            "spawn + wait of {TRUE} (per op; interleaved, one ratio of medians per round):"
        ));
        push(line("plain Command::spawn", "spawn/plain"));
        push(line(
            "empty pre_exec hook (fork path)",
            "spawn/pre_exec_empty",
        ));
        push(line(
            "hook joining 8 pre-opened cgroups (floor)",
            "spawn/pre_exec_join_floor",
        ));
        push(line("job.spawn (one long-lived job)", "spawn/job"));
        push(ratio_line("ratio job / plain", ratios.job_vs_plain));
        push(ratio_line(
            "ratio pre_exec-only / plain",
            ratios.hook_vs_plain,
        ));
        push(ratio_line(
            "ratio join floor / plain",
            ratios.join_floor_vs_plain,
        ));
        push(ratio_line("ratio job / pre_exec-only", ratios.job_vs_hook));
        push(format!(
            "the same with {} MiB more resident in this process:",
            sizes.ballast_bytes >> 20
        ));
        push(line("plain Command::spawn", "spawn_big/plain"));
        push(line(
            "empty pre_exec hook (fork path)",
            "spawn_big/pre_exec_empty",
        ));
        push(line("job.spawn (one long-lived job)", "spawn_big/job"));
        push(ratio_line("ratio job / plain", ratios.big_job_vs_plain));
        push(ratio_line(
            "ratio pre_exec-only / plain",
            ratios.big_hook_vs_plain,
        ));
        push("create + close of an empty anonymous job (per op):".into());
        push(line("JobObject::create + close", "create_close/job"));
        push(line(
            "mkdir + rmdir, one dir per hierarchy (floor)",
            "create_close/floor",
        ));
        push(ratio_line("ratio job / floor", ratios.create_vs_floor));
        push(format!(
            "SIGKILL of the last process ({} ms after its spawn) until it is known to be gone:",
            SETTLE.as_millis()
        ));
        push(line(
            "poll_notification -> AllProcessesExited",
            "latency/job",
        ));
        push(line(
            "inotify on cgroup.events by hand (floor)",
            "latency/inotify_floor",
        ));
        push(line("plain child: wait returns (baseline)", "latency/wait"));
        let latencies = samples("latency/job");
        if !latencies.is_empty() {
            let under = latencies
                .iter()
                .filter(|d| **d < Duration::from_millis(1))
                .count();
            push(format!(
                "  {:<44} {under} of {} ({:.1}%)",
                "under 1 ms",
                latencies.len(),
                100.0 * under as f64 / latencies.len() as f64
            ));
        }
        push(line(
            "killed right after spawn (kernel rate limit)",
            "latency/job_immediate",
        ));
        push(format!(
            "terminate of a job of {PROCESSES} processes (every criterion iteration):"
        ));
        push(line("terminate() returns", "terminate/returned"));
        push(line(
            "terminate() until AllProcessesExited",
            "terminate/job",
        ));
        push(line(
            "SIGKILL each + wait each (baseline)",
            "terminate/kill_each",
        ));
        print!("{out}");
    }

    pub(super) fn main() {
        let mode = mode();
        let parents = own_cgroup_dirs().expect("find this process's own cgroups");
        let mut criterion = Criterion::default().configure_from_args();
        criterion_benches(&mut criterion, &parents);
        criterion.final_summary();
        if mode == Mode::Other {
            return;
        }
        let sizes = Sizes::for_mode(mode);
        let ratios = summary_loops(&sizes, &parents);
        print_summary(ratios, &sizes);
    }
}
