//! Limits, proven by the kernel enforcing them: memory (OOM kill and its notification), CPU
//! rate and weight, affinity, the process limit, and I/O bandwidth and IOPS; plus every invalid
//! value, values the kernel cannot hold, changes the kernel refuses (which must change
//! nothing), and the getters' round trips.

#![cfg(target_os = "linux")]

mod common;
mod workload;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Reap, TIMEOUT, Watcher, create, create_arc, options, require_cgroups, wait_for};
use jobobject::os::linux::CgroupLayout;
use jobobject::os::linux::JobObjectExt;
use jobobject::{CpuLimit, Error, JobLimits, JobObject, Notification};

const MIB: u64 = 1 << 20;

/// Not a test: the workload program (see `workload`).
#[test]
#[ignore = "workload program of the limit tests"]
fn workload() {
    workload::run_from_env();
}

fn host_cpus() -> u32 {
    thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Waits for the next notification that is `wanted`, skipping others.
fn wait_notification(watcher: &Watcher, wanted: Notification) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (message, _) = watcher.next(left);
        if message == wanted {
            return;
        }
    }
}

/// CPU time the job used while `work` ran, over the wall time it took.
fn cpu_share(job: &JobObject, wall: Duration) -> f64 {
    let before = job.processor_stats().unwrap();
    let start = Instant::now();
    thread::sleep(wall);
    let after = job.processor_stats().unwrap();
    let used = (after.user_time + after.kernel_time) - (before.user_time + before.kernel_time);
    used.as_secs_f64() / start.elapsed().as_secs_f64()
}

fn spin() -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", "while :; do :; done"]);
    command
}

#[test]
fn memory_limit_kills_and_notifies_and_spares_a_small_process() {
    if !require_cgroups("memory_limit_kills_and_notifies_and_spares_a_small_process") {
        return;
    }
    let job = create_arc(&options("oom").notifications(true));
    job.set_memory_limit(Some(100 * MIB)).unwrap();
    let watcher = Watcher::start(&job);
    let mut hogs: Vec<Reap> = (0..5)
        .map(|_| {
            let mut command = workload::command(&format!("hog {} 600000", 30 * MIB));
            command.stdout(Stdio::null());
            Reap::new(job.spawn(&mut command).unwrap())
        })
        .collect();
    wait_notification(&watcher, Notification::OutOfMemoryKill);
    wait_for("a hog killed by SIGKILL", TIMEOUT, || {
        hogs.iter_mut().any(|hog| {
            hog.child()
                .try_wait()
                .unwrap()
                .is_some_and(|status| status.signal() == Some(9))
        })
    });
    job.terminate(1).unwrap();
    drop(watcher);

    let small = create(&options("oom-small"));
    small.set_memory_limit(Some(100 * MIB)).unwrap();
    let mut command = workload::command(&format!("hog {} 200", 20 * MIB));
    command.stdout(Stdio::piped());
    let output = small
        .spawn(&mut command)
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(
        output.status.success(),
        "the 20 MiB process failed: {:?}",
        output.status
    );
    assert!(workload::ready(&String::from_utf8_lossy(&output.stdout)));
}

#[test]
fn cpu_rate_holds_two_busy_processes_to_the_rate() {
    if !require_cgroups("cpu_rate_holds_two_busy_processes_to_the_rate") {
        return;
    }
    let job = create(&options("cpu-rate"));
    // A quarter of the machine's CPUs.
    job.set_cpu_limit(Some(CpuLimit::Rate(2500))).unwrap();
    let _a = Reap::new(job.spawn(&mut spin()).unwrap());
    let _b = Reap::new(job.spawn(&mut spin()).unwrap());
    let share = cpu_share(&job, Duration::from_secs(3));
    let expected = 0.25 * f64::from(host_cpus());
    assert!(
        share > expected * 0.5 && share < expected * 1.5,
        "two busy processes under rate 2500 used {share:.2} CPUs, expected about {expected:.2}"
    );
    job.terminate(1).unwrap();
}

#[test]
fn cpu_weight_nine_beats_weight_one_on_one_cpu() {
    if !require_cgroups("cpu_weight_nine_beats_weight_one_on_one_cpu") {
        return;
    }
    let heavy = create(&options("weight-9"));
    let light = create(&options("weight-1"));
    for (job, weight) in [(&heavy, 9), (&light, 1)] {
        job.set_cpu_affinity(Some(0b1)).unwrap();
        job.set_cpu_limit(Some(CpuLimit::Weight(weight))).unwrap();
    }
    let _a = Reap::new(heavy.spawn(&mut spin()).unwrap());
    let _b = Reap::new(light.spawn(&mut spin()).unwrap());
    thread::sleep(Duration::from_millis(500));
    let times = |job: &JobObject| {
        let stats = job.processor_stats().unwrap();
        stats.user_time + stats.kernel_time
    };
    let (heavy0, light0) = (times(&heavy), times(&light));
    thread::sleep(Duration::from_secs(3));
    let heavy_used = times(&heavy) - heavy0;
    let light_used = times(&light) - light0;
    assert!(
        heavy_used > light_used * 3,
        "weight 9 got {heavy_used:?} of CPU 0, weight 1 got {light_used:?}"
    );
    heavy.terminate(1).unwrap();
    light.terminate(1).unwrap();
}

fn cpus_allowed_of_child(job: &JobObject) -> String {
    let mut command = Command::new("grep");
    command
        .args(["Cpus_allowed_list", "/proc/self/status"])
        .stdout(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.split(':').nth(1).unwrap_or_default().trim().to_owned()
}

#[test]
fn affinity_applies_to_a_spawned_child() {
    if !require_cgroups("affinity_applies_to_a_spawned_child") {
        return;
    }
    let job = create(&options("affinity"));
    job.set_cpu_affinity(Some(0b1)).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));
    assert_eq!(cpus_allowed_of_child(&job), "0");
    if host_cpus() >= 2 {
        // The Go package's round trip.
        job.set_cpu_affinity(Some(0x3)).unwrap();
        // Every CPU the parent allows is no restriction at all.
        let expected = (host_cpus() > 2).then_some(0x3);
        assert_eq!(job.cpu_affinity().unwrap(), expected);
        assert_eq!(cpus_allowed_of_child(&job), "0-1");
    }
    job.set_cpu_affinity(None).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), None);
    let all = format!("0-{}", host_cpus() - 1);
    assert_eq!(
        cpus_allowed_of_child(&job),
        if host_cpus() == 1 { "0".into() } else { all }
    );
}

#[test]
fn process_limit_refuses_the_eleventh_and_notifies() {
    if !require_cgroups("process_limit_refuses_the_eleventh_and_notifies") {
        return;
    }
    let job = create_arc(&options("pids").notifications(true));
    job.set_max_processes(Some(10)).unwrap();
    assert_eq!(job.max_processes().unwrap(), Some(10));
    let watcher = Watcher::start(&job);
    // The shell and nine sleeps make ten; the tenth fork, the eleventh process, fails.
    // The sleeps must not hold the stderr pipe open.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 600 >/dev/null 2>&1 & done; wait";
    let mut command = Command::new("sh");
    command.args(["-c", script]).stderr(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    assert!(!output.status.success(), "the shell's fork never failed");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("fork"),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_notification(&watcher, Notification::ActiveProcessLimit);
    assert_eq!(job.pids().unwrap().len(), 9, "the nine sleeps");
    // The counters say so too: ten at most, and at least one fork refused.
    let stats = job.processor_stats().unwrap();
    assert!(stats.process_limit_refusals.unwrap() >= 1, "{stats:?}");
    if let Some(peak) = stats.peak_processes {
        assert_eq!(peak, 10, "{stats:?}");
    }
    job.terminate(1).unwrap();
}

/// Where O_DIRECT writes hit a real, throttled disk: `JOBOBJECT_TEST_IO_PATH` (the guest's
/// spare disk), else a file in the temporary directory when it is on a block device.
fn io_target(test: &str) -> Option<String> {
    if let Ok(path) = std::env::var("JOBOBJECT_TEST_IO_PATH") {
        return Some(path);
    }
    let dir = std::env::temp_dir();
    let on_disk = rustix::fs::stat(&dir).is_ok_and(|s| rustix::fs::major(s.st_dev) != 0);
    if on_disk {
        return Some(
            dir.join(format!("jobobject-io-{test}-{}", std::process::id()))
                .display()
                .to_string(),
        );
    }
    let reason = format!(
        "{} is not on a block device; set JOBOBJECT_TEST_IO_PATH",
        dir.display()
    );
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
    None
}

/// Writes `count` blocks of `block` bytes with O_DIRECT inside the job; returns the time.
fn direct_write(job: &JobObject, target: &str, block: &str, count: u32) -> Duration {
    let start = Instant::now();
    let mut command = Command::new("dd");
    command
        .args([
            "if=/dev/zero",
            &format!("of={target}"),
            &format!("bs={block}"),
        ])
        .args([&format!("count={count}"), "oflag=direct", "conv=notrunc"])
        .stderr(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed()
}

fn remove_target(target: &str) {
    if !target.starts_with("/dev/") {
        std::fs::remove_file(target).ok();
    }
}

#[test]
fn io_bandwidth_and_iops_are_enforced() {
    let test = "io_bandwidth_and_iops_are_enforced";
    if !require_cgroups(test) {
        return;
    }
    let Some(target) = io_target(test) else {
        return;
    };
    let job = create(&options("io"));
    job.set_io_limit(Some(5 * MIB), None).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(5 * MIB));
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
    let took = direct_write(&job, &target, "1M", 20);
    assert!(
        took >= Duration::from_millis(2500) && took < TIMEOUT,
        "20 MiB under 5 MiB/s took {took:?}, expected about 4 s"
    );

    job.set_io_limit(None, Some(50)).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(50));
    let took = direct_write(&job, &target, "4k", 200);
    assert!(
        took >= Duration::from_millis(2500) && took < TIMEOUT,
        "200 writes under 50 IOPS took {took:?}, expected about 4 s"
    );
    job.set_io_limit(None, None).unwrap();
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
    remove_target(&target);
}

/// The getters say what the kernel enforces (the portable round trips are in
/// `tests/contract/limits.rs`): weight 5 is the kernel's default share, so no limit, and a
/// memory limit is whole pages.
#[test]
fn getters_say_what_the_kernel_enforces() {
    if !require_cgroups("getters_say_what_the_kernel_enforces") {
        return;
    }
    let job = create(&options("round-trip"));
    job.set_cpu_limit(Some(CpuLimit::Weight(5))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), None);
    job.set_memory_limit(Some(64 * MIB + 100)).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(64 * MIB));
    assert_eq!(job.memory_stats().unwrap().limit, Some(64 * MIB));
}

/// An affinity naming a CPU the host lacks is invalid, alone or among valid limits, and
/// changes nothing (the values no platform accepts are in `tests/contract/limits.rs`).
#[test]
fn an_affinity_of_a_missing_cpu_is_invalid() {
    if !require_cgroups("an_affinity_of_a_missing_cpu_is_invalid") {
        return;
    }
    let job = create(&options("missing-cpu"));
    job.set_memory_limit(Some(80 * MIB)).unwrap();
    let missing_cpu = 1u64 << host_cpus().min(63);
    for (what, result) in [
        ("alone", job.set_cpu_affinity(Some(missing_cpu))),
        (
            "with a process limit",
            job.set_resource_limits(&JobLimits::new().cpu_affinity(missing_cpu).max_processes(3)),
        ),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{what}: {result:?}"
        );
    }
    assert_eq!(job.memory_limit().unwrap(), Some(80 * MIB));
    assert_eq!(job.max_processes().unwrap(), None);
    assert_eq!(job.cpu_affinity().unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Values the kernel cannot hold, and changes it refuses: either way nothing changes

/// The limit files a job's cgroups may have.
const LIMIT_FILES: &[&str] = &[
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.shares",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.cfs_burst_us",
    "cpuset.cpus",
    "memory.max",
    "memory.limit_in_bytes",
    "io.max",
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
    "pids.max",
];

/// Every limit file of the job's cgroups, with its contents: what "nothing changed" compares.
fn limit_files(job: &JobObject) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for dir in job.cgroup_paths().unwrap() {
        for name in LIMIT_FILES {
            let path = dir.join(name);
            if let Ok(text) = fs::read_to_string(&path) {
                files.insert(path, text);
            }
        }
    }
    files
}

/// The job's directory in the hierarchy of the `cpu` controller.
fn cpu_dir(job: &JobObject) -> PathBuf {
    job.cgroup_paths()
        .unwrap()
        .into_iter()
        .find(|d| d.join("cpu.max").exists() || d.join("cpu.cfs_quota_us").exists())
        .expect("the job has no cpu controller")
}

/// The job's CFS quota in microseconds, read from its file.
fn cpu_quota(job: &JobObject) -> u64 {
    let dir = cpu_dir(job);
    let text = fs::read_to_string(dir.join("cpu.max"))
        .or_else(|_| fs::read_to_string(dir.join("cpu.cfs_quota_us")))
        .unwrap();
    let quota = text.split_whitespace().next().unwrap_or_default();
    quota
        .parse()
        .unwrap_or_else(|_| panic!("no quota in {text:?}"))
}

/// Writes a CPU weight no weight of 1-9 maps to (v2 `cpu.weight`, v1 `cpu.shares`): a value
/// that only an exact restore brings back.
fn set_odd_weight(job: &JobObject) {
    let dir = cpu_dir(job);
    let (file, value) = if dir.join("cpu.weight").exists() {
        ("cpu.weight", "150")
    } else {
        ("cpu.shares", "1500")
    };
    fs::write(dir.join(file), value).unwrap();
}

/// Says that `test` skips a part, on the stderr descriptor (the harness captures `eprintln!`).
fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
}

fn is_unified() -> bool {
    matches!(CgroupLayout::detect(), Ok(CgroupLayout::Unified))
}

fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).expect("page size")
}

/// Limits of every kind the kernel can be made to restore, the CPU rate `rate` among them.
fn every_limit_with_rate(rate: u32) -> JobLimits {
    JobLimits::new()
        .cpu(CpuLimit::Rate(rate))
        .cpu_affinity(0b1)
        .memory(48 * MIB)
        .io_bandwidth(2 * MIB)
        .io_iops(30)
        .max_processes(33)
}

/// Checks that a refused CPU rate of 20%, alone and with every other limit, leaves the job's
/// limits (an odd raw weight, a 30% rate, 80 MiB, 20 processes, no I/O rule) as they were.
fn assert_refused_rate_changes_nothing(job: &JobObject) {
    let before = limit_files(job);
    let refused = job.set_cpu_limit(Some(CpuLimit::Rate(2000)));
    assert_eq!(
        refused.as_ref().map_err(Error::raw_os_error),
        Err(Some(libc::EINVAL)),
        "{refused:?}"
    );
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(3000)));
    assert_eq!(limit_files(job), before, "after set_cpu_limit");

    let refused = job.set_resource_limits(&every_limit_with_rate(2000));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(limit_files(job), before, "after set_resource_limits");
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(3000)));
    assert_eq!(job.memory_limit().unwrap(), Some(80 * MIB));
    assert_eq!(job.max_processes().unwrap(), Some(20));
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
}

/// A job with a 30% rate, an odd raw weight, 80 MiB and 20 processes.
fn limited_job(what: &str) -> JobObject {
    let job = create(&options(what));
    job.set_memory_limit(Some(80 * MIB)).unwrap();
    job.set_max_processes(Some(20)).unwrap();
    job.set_cpu_limit(Some(CpuLimit::Rate(3000))).unwrap();
    set_odd_weight(&job);
    job
}

/// A cgroup made by hand in a job's `cpu` directory with a CFS quota: a nested job, as the
/// cpu controller sees it. Removed when dropped, which must come before the job's removal.
struct NestedCpuCgroup(PathBuf);

impl NestedCpuCgroup {
    fn new(job: &JobObject, quota_us: u64) -> Self {
        let nested = NestedCpuCgroup(cpu_dir(job).join("nested"));
        fs::create_dir(&nested.0).unwrap();
        fs::write(nested.0.join("cpu.cfs_quota_us"), quota_us.to_string()).unwrap();
        nested
    }
}

impl Drop for NestedCpuCgroup {
    fn drop(&mut self) {
        fs::remove_dir(&self.0).ok();
    }
}

/// On cgroup v1 the kernel refuses (EINVAL) a CFS quota below a nested cgroup's, so lowering a
/// job's rate below a nested job's fails: it must leave every limit as it was (it used to lift
/// the job's cap, and `set_resource_limits` to apply the limits before the rate).
#[test]
fn a_cpu_rate_below_a_nested_jobs_is_refused_and_changes_nothing() {
    let test = "a_cpu_rate_below_a_nested_jobs_is_refused_and_changes_nothing";
    if !require_cgroups(test) {
        return;
    }
    if is_unified() {
        // cgroup v2 takes the smaller of the two quotas instead of refusing
        // (tg_cfs_schedulable_down, kernel/sched/core.c). The burst test below makes v2 refuse.
        skip(test, "cgroup v2 does not refuse a quota below a nested one");
        return;
    }
    let job = limited_job("refused-nested");
    let _nested = NestedCpuCgroup::new(&job, cpu_quota(&job));
    assert_refused_rate_changes_nothing(&job);
    // A rate the nested cgroup fits under is taken.
    job.set_cpu_limit(Some(CpuLimit::Rate(5000))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(5000)));
}

/// Both cgroup versions refuse (EINVAL) a CFS quota below the cgroup's burst
/// (tg_set_cfs_bandwidth, kernel/sched/core.c): the same as above, also on a unified host.
#[test]
fn a_cpu_rate_below_the_burst_is_refused_and_changes_nothing() {
    let test = "a_cpu_rate_below_the_burst_is_refused_and_changes_nothing";
    if !require_cgroups(test) {
        return;
    }
    let job = limited_job("refused-burst");
    let dir = cpu_dir(&job);
    let Some(burst) = ["cpu.max.burst", "cpu.cfs_burst_us"]
        .into_iter()
        .find(|f| dir.join(f).exists())
    else {
        let reason = "the kernel has no CFS burst (before Linux 5.14)";
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{test}: {reason}"
        );
        skip(test, reason);
        return;
    };
    fs::write(dir.join(burst), cpu_quota(&job).to_string()).unwrap();
    assert_refused_rate_changes_nothing(&job);
}

#[test]
fn memory_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing() {
    if !require_cgroups("memory_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing") {
        return;
    }
    let job = create(&options("memory-bounds"));
    job.set_memory_limit(Some(80 * MIB)).unwrap();
    let page = page_size();
    // PAGE_COUNTER_MAX pages (LONG_MAX / PAGE_SIZE on 64-bit), which the kernel holds as no
    // limit at all; less than a page it holds as none at all.
    let no_limit = (i64::MAX as u64 / page) * page;
    for bad in [
        1,
        4095.min(page - 1),
        page - 1,
        no_limit,
        no_limit + 1,
        u64::MAX,
    ] {
        let result = job.set_memory_limit(Some(bad));
        assert!(
            matches!(&result, Err(Error::InvalidArgument { message })
                if message.contains(&format!("{page} to {}", no_limit - 1))),
            "{bad}: {result:?}"
        );
        assert_eq!(job.memory_limit().unwrap(), Some(80 * MIB), "after {bad}");
    }
    // The bounds themselves are limits the kernel holds, and the getters say so.
    job.set_memory_limit(Some(page)).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(page));
    job.set_memory_limit(Some(no_limit - 1)).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(no_limit - page));
    assert_eq!(job.memory_stats().unwrap().limit, Some(no_limit - page));
}

#[test]
fn process_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing() {
    if !require_cgroups("process_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing") {
        return;
    }
    let job = create(&options("pids-bounds"));
    job.set_max_processes(Some(20)).unwrap();
    // pids.max refuses PID_MAX_LIMIT + 1 (4 Mi + 1 on 64-bit) and up.
    for bad in [4_194_305, u32::MAX] {
        let result = job.set_max_processes(Some(bad));
        assert!(
            matches!(&result, Err(Error::InvalidArgument { message })
                if message.contains("1 to 4194304")),
            "{bad}: {result:?}"
        );
        assert_eq!(job.max_processes().unwrap(), Some(20), "after {bad}");
    }
    job.set_max_processes(Some(4_194_304)).unwrap();
    assert_eq!(job.max_processes().unwrap(), Some(4_194_304));
}

#[test]
fn io_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing() {
    if !require_cgroups("io_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing") {
        return;
    }
    let job = create(&options("io-bounds"));
    job.set_io_limit(Some(3 * MIB), Some(70)).unwrap();
    let before = limit_files(&job);
    // IOPS limits are 32-bit in the kernel, with u32::MAX meaning none: v2 clamps larger
    // values to none, v1 truncates them (2^32 becomes 0, which stops all I/O).
    for bad in [u64::from(u32::MAX), 1 << 32, (1 << 32) + 5, u64::MAX] {
        let result = job.set_io_limit(None, Some(bad));
        assert!(
            matches!(&result, Err(Error::InvalidArgument { message })
                if message.contains("4294967294")),
            "{bad}: {result:?}"
        );
        assert_eq!(limit_files(&job), before, "after {bad}");
        assert_eq!(job.io_max_iops_limit().unwrap(), Some(70));
        assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(3 * MIB));
    }
    // The largest values are held.
    let bandwidth = jobobject::MAX_IO_BANDWIDTH;
    job.set_io_limit(Some(bandwidth), Some(4_294_967_294))
        .unwrap();
    if job.io_max_iops_limit().unwrap().is_some() {
        assert_eq!(job.io_max_iops_limit().unwrap(), Some(4_294_967_294));
        assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(bandwidth));
    }
    let result = job.set_io_limit(Some(bandwidth + 1), None);
    assert!(
        matches!(result, Err(Error::InvalidArgument { .. })),
        "{result:?}"
    );
}

#[test]
fn resource_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing() {
    if !require_cgroups("resource_limits_the_kernel_cannot_hold_are_invalid_and_change_nothing") {
        return;
    }
    let job = create(&options("resource-bounds"));
    job.set_memory_limit(Some(80 * MIB)).unwrap();
    job.set_max_processes(Some(20)).unwrap();
    job.set_cpu_limit(Some(CpuLimit::Weight(4))).unwrap();
    let before = limit_files(&job);
    for bad in [
        JobLimits::new().memory(4095).max_processes(5),
        JobLimits::new().cpu(CpuLimit::Rate(2500)).memory(u64::MAX),
        JobLimits::new().memory(40 * MIB).max_processes(4_194_305),
        JobLimits::new().cpu(CpuLimit::Weight(3)).io_iops(1 << 32),
    ] {
        let result = job.set_resource_limits(&bad);
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{bad:?}: {result:?}"
        );
        assert_eq!(limit_files(&job), before, "after {bad:?}");
    }
}
