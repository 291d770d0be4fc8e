//! Limit values on Linux: what the getters say the kernel enforces, a CPU the host lacks,
//! values the kernel cannot hold and changes it refuses, which must change nothing (the
//! values no platform accepts, and the round trips, are in `tests/contract/limits.rs`; that
//! the kernel enforces limits is in `tests/limits.rs`).

#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::thread;

use common::{create, options, require_cgroups};
use jobobject::os::linux::CgroupLayout;
use jobobject::os::linux::JobObjectExt;
use jobobject::{CpuLimit, Error, JobLimits, JobObject};

const MIB: u64 = 1 << 20;

fn host_cpus() -> u32 {
    thread::available_parallelism().map_or(1, |n| n.get() as u32)
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

/// Asserts that the limit files `after` hold the limits of `before`: the same values, and
/// perhaps the files of a directory the job made on demand meanwhile (cpuset, blkio: a
/// refused change may leave it made), which must hold no limit: no throttle rule, and the
/// parent's CPUs.
fn assert_same_limits(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    context: &str,
) {
    for (path, value) in after {
        match before.get(path) {
            Some(old) => assert_eq!(value, old, "{context}: {}", path.display()),
            None if path.ends_with("cpuset.cpus") => {
                let parent = path.parent().unwrap().parent().unwrap().join("cpuset.cpus");
                let parent = fs::read_to_string(parent).unwrap();
                assert_eq!(value, &parent, "{context}: {}", path.display());
            }
            None => assert_eq!(value.trim(), "", "{context}: {}", path.display()),
        }
    }
    for path in before.keys() {
        assert!(
            after.contains_key(path),
            "{context}: {} is gone",
            path.display()
        );
    }
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
    assert_same_limits(&before, &limit_files(job), "after set_resource_limits");
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
