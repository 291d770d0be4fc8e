//! Limits and statistics in kernel terms, behind one trait with an implementation per cgroup
//! version ([`super::v1::V1`], [`super::v2::V2`]), and the conversions both share.

use std::io;
use std::ops::RangeInclusive;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;
use std::time::Duration;

#[cfg(test)]
pub(crate) mod fixture;

/// A block device as `MAJ:MIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Device {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl Device {
    pub(crate) fn parse(text: &str) -> Option<Device> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(Device {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

/// An I/O limit on one device, as the API sees it; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoMax {
    pub(crate) bps: Option<u64>,
    pub(crate) iops: Option<u64>,
}

/// A disk's throttle rule exactly as the kernel holds it: read and write bandwidth in bytes/s
/// and operations/s, each `None` where there is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoRule {
    pub(crate) rbps: Option<u64>,
    pub(crate) wbps: Option<u64>,
    pub(crate) riops: Option<u64>,
    pub(crate) wiops: Option<u64>,
}

/// The bandwidth v1 writes for "unlimited" instead of removing the rule: kernels before about
/// 6.3 count a v1 cgroup's I/O in `blkio.throttle.io_service*` only while it has a throttle
/// rule on the device, so a rule that never throttles keeps the statistics running. It is
/// below `U64_MAX`, which the kernel takes as no rule, and above any limit the API can set
/// (an `i64`).
pub(crate) const ACCOUNTING_ONLY_BPS: u64 = u64::MAX - 1;

impl IoRule {
    /// The rule for `limit`, the same for reads and writes; `unlimited_bps` is what to write
    /// for no bandwidth limit.
    pub(crate) fn new(limit: IoMax, unlimited_bps: Option<u64>) -> Self {
        let bps = limit.bps.or(unlimited_bps);
        IoRule {
            rbps: bps,
            wbps: bps,
            riops: limit.iops,
            wiops: limit.iops,
        }
    }

    /// The limit the rule enforces, as the API reports it (from the write side; a bandwidth
    /// that never throttles is none).
    pub(crate) fn limit(&self) -> IoMax {
        IoMax {
            bps: self.wbps.filter(|&bps| bps < ACCOUNTING_ONLY_BPS),
            iops: self.wiops,
        }
    }
}

/// A CFS bandwidth limit in microseconds: `quota` per `period` (`None`: no quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuMax {
    pub(crate) quota: Option<u64>,
    pub(crate) period: u64,
}

/// Memory use in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemoryUsage {
    pub(crate) current: u64,
    pub(crate) peak: u64,
    /// In swap, where the kernel counts it.
    pub(crate) swap: Option<u64>,
}

/// I/O done, summed over devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IoUsage {
    pub(crate) read_bytes: u64,
    pub(crate) write_bytes: u64,
    pub(crate) read_ios: u64,
    pub(crate) write_ios: u64,
}

/// The pids controller's counters; `None` where the kernel keeps none (`pids.peak` is from
/// Linux 6.1 on), or the job has no pids controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProcessCounts {
    /// The most tasks (threads included) the job has held at once.
    pub(crate) peak: Option<u64>,
    /// Forks the process limit refused.
    pub(crate) refused: Option<u64>,
}

/// Reads the [`ProcessCounts`] of a pids cgroup (v1 and v2 name the files alike).
pub(crate) fn process_counts(pids: BorrowedFd<'_>) -> io::Result<ProcessCounts> {
    let optional = |file: &str| match super::dir::read(pids, file) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    };
    let invalid = |file: &str, text: &str| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {text:?}"))
    };
    let peak = match optional("pids.peak")? {
        Some(text) => Some(
            text.trim()
                .parse()
                .map_err(|_| invalid("pids.peak", &text))?,
        ),
        None => None,
    };
    let refused = match optional("pids.events")? {
        Some(text) => Some(keyed_value(&text, "max").ok_or_else(|| invalid("pids.events", &text))?),
        None => None,
    };
    Ok(ProcessCounts { peak, refused })
}

/// Counters behind the limit notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LimitEvents {
    /// Times the memory limit was reached.
    pub(crate) memory_max: u64,
    /// Processes killed by the OOM killer inside the job.
    pub(crate) oom_kills: u64,
    /// Times the job's own limit made the OOM killer act (v2 `oom`); `None` where the kernel
    /// does not say (v1).
    pub(crate) limit_ooms: Option<u64>,
    /// Times the kernel killed the whole job at once (v2 `oom_group_kill`).
    pub(crate) group_kills: u64,
    /// Forks refused by the process limit.
    pub(crate) pids_max: u64,
}

/// A file behind the limit notifications, and which of [`LimitEvents`] it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CounterFile {
    /// v2 `memory.events`: `max` and `oom_kill`.
    MemoryEvents,
    /// v1 `memory.failcnt`: times the limit was reached.
    MemoryFailcnt,
    /// v1 `memory.oom_control`: `oom_kill`.
    OomControl,
    /// `pids.events` (v1 and v2): `max`.
    PidsEvents,
}

impl CounterFile {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CounterFile::MemoryEvents => "memory.events",
            CounterFile::MemoryFailcnt => "memory.failcnt",
            CounterFile::OomControl => "memory.oom_control",
            CounterFile::PidsEvents => "pids.events",
        }
    }

    /// Puts what the file's `text` counts into `events`.
    pub(crate) fn apply(self, text: &str, events: &mut LimitEvents) {
        let keyed = |key| keyed_value(text, key).unwrap_or(0);
        match self {
            CounterFile::MemoryEvents => {
                events.memory_max = keyed("max");
                events.oom_kills = keyed("oom_kill");
                events.limit_ooms = Some(keyed("oom"));
                events.group_kills = keyed("oom_group_kill");
            }
            CounterFile::MemoryFailcnt => events.memory_max = text.trim().parse().unwrap_or(0),
            CounterFile::OomControl => events.oom_kills = keyed("oom_kill"),
            CounterFile::PidsEvents => events.pids_max = keyed("max"),
        }
    }
}

/// A job's limit files, read and written exactly as the kernel holds them: a value read and
/// written back leaves the file as it was, which is what undoing a half-applied change needs.
///
/// A setter that fails may have changed part of its limit (v1 spreads the CFS bandwidth and a
/// disk's rule over several files); writing back what the getter returned before repairs it.
pub(crate) trait Knobs {
    /// The kernel's default CPU weight (v2 `cpu.weight` 100, v1 `cpu.shares` 1024).
    fn default_cpu_weight(&self) -> u64;
    /// The raw CPU weight.
    fn cpu_weight(&self) -> io::Result<u64>;
    fn set_cpu_weight(&self, weight: u64) -> io::Result<()>;
    fn cpu_max(&self) -> io::Result<CpuMax>;
    fn set_cpu_max(&self, max: CpuMax) -> io::Result<()>;
    /// The job's own `cpuset.cpus` as the kernel lists it (`0-1,3`; empty on v2 while the
    /// parent's apply).
    fn cpus(&self) -> io::Result<String>;
    fn set_cpus(&self, list: &str) -> io::Result<()>;
    /// What `cpuset.cpus` holds when the job has no CPU affinity of its own: empty on v2 (the
    /// parent's CPUs apply), the parent's list on v1 (where a cpuset must list its own).
    fn unrestricted_cpus(&self) -> io::Result<String>;
    /// The CPUs the job's parent lets its children use (v1 its `cpuset.cpus`, v2 its
    /// `cpuset.cpus.effective`).
    fn parent_cpus(&self) -> io::Result<String>;
    /// The memory limit in bytes, a whole number of pages.
    fn memory_max(&self) -> io::Result<Option<u64>>;
    fn set_memory_max(&self, bytes: Option<u64>) -> io::Result<()>;
    /// The throttle rule of every disk that has one.
    fn io_rules(&self) -> io::Result<Vec<(Device, IoRule)>>;
    /// Sets a disk's rule; an all-`None` rule removes it.
    fn set_io_rule(&self, device: Device, rule: IoRule) -> io::Result<()>;
    /// The rule to write on a disk for `limit` (v1 keeps a rule that never throttles, see
    /// [`ACCOUNTING_ONLY_BPS`]).
    fn io_rule_for(&self, limit: IoMax) -> IoRule;
    fn pids_max(&self) -> io::Result<Option<u64>>;
    fn set_pids_max(&self, max: Option<u64>) -> io::Result<()>;
    /// The soft memory limit (v2 `memory.high`); v1 has none.
    fn memory_high(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
    fn set_memory_high(&self, _bytes: Option<u64>) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// The swap limit (v2 `memory.swap.max`); v1 has none of swap alone.
    fn swap_max(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
    fn set_swap_max(&self, _bytes: Option<u64>) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A memory setting only cgroup v2 has, for [`Controllers::lacks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V2Memory {
    /// `memory.high`.
    High,
    /// `memory.swap.max`.
    Swap,
    /// `memory.oom.group`.
    OomGroup,
}

impl V2Memory {
    pub(crate) fn file(self) -> &'static str {
        match self {
            V2Memory::High => "memory.high",
            V2Memory::Swap => "memory.swap.max",
            V2Memory::OomGroup => "memory.oom.group",
        }
    }

    pub(crate) fn what(self) -> &'static str {
        match self {
            V2Memory::High => "a soft memory limit",
            V2Memory::Swap => "a swap limit",
            V2Memory::OomGroup => "killing the whole job on OOM",
        }
    }
}

/// What a job's cgroups can limit and report, in kernel units.
pub(crate) trait Controllers: Knobs {
    fn memory_usage(&self) -> io::Result<MemoryUsage>;
    /// User and system CPU time of the job, the exited processes included.
    fn cpu_times(&self) -> io::Result<(Duration, Duration)>;
    /// Page faults of the job.
    fn page_faults(&self) -> io::Result<u64>;
    /// Anonymous (private) memory of the job.
    fn private_memory(&self) -> io::Result<u64>;
    /// Whether I/O accounting is available.
    fn io_accounting(&self) -> bool;
    fn io_usage(&self) -> io::Result<IoUsage>;
    /// The files behind the limit notifications, each in the directory that holds it.
    fn counter_files(&self) -> Vec<(BorrowedFd<'_>, CounterFile)>;
    /// The limit counters now; zeros for what cannot be read.
    fn limit_events(&self) -> io::Result<LimitEvents> {
        let mut events = LimitEvents::default();
        for (dir, file) in self.counter_files() {
            if let Ok(text) = super::dir::read(dir, file.name()) {
                file.apply(&text, &mut events);
            }
        }
        Ok(events)
    }
    /// The process limit's counters (what the pids controller keeps, where it has it).
    fn process_counts(&self) -> io::Result<ProcessCounts>;
    /// Why the job cannot have `setting`, or `None` where it can.
    fn lacks(&self, setting: V2Memory) -> Option<String>;
    /// Whether the kernel kills the whole job on OOM (v2 `memory.oom.group`).
    fn oom_group(&self) -> io::Result<bool> {
        Ok(false)
    }
    fn set_oom_group(&self, _all: bool) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Starts the memory peak again from the current use; `Unsupported` where the kernel
    /// cannot.
    fn reset_memory_peak(&self) -> io::Result<()>;
    /// The name of the I/O controller: `blkio` in v1, `io` in v2.
    fn io_controller(&self) -> &'static str;
    /// Whether the kernel counts the job's I/O only under a throttle rule (v1 before about
    /// 6.3, see [`ACCOUNTING_ONLY_BPS`]), so that accounting needs one on every disk.
    fn io_accounting_needs_rules(&self) -> bool;
    /// What to do when `controller` is not there for the job, whose parent is `parent`.
    fn how_to_get(&self, controller: &str, parent: &std::path::Path) -> String;
}

/// CPU weights 1-9 double at each step, with 5 at the kernel's default.
pub(crate) fn weight_to_kernel(weight: u32, default: u64) -> u64 {
    let weight = weight.clamp(1, 9);
    if weight >= 5 {
        default << (weight - 5)
    } else {
        (default >> (5 - weight)).max(1)
    }
}

/// The weight 1-9 whose kernel value is nearest to `value` on a log scale.
pub(crate) fn weight_from_kernel(value: u64, default: u64) -> u32 {
    let distance =
        |w: u32| ((value.max(1) as f64).ln() - (weight_to_kernel(w, default) as f64).ln()).abs();
    (1..=9)
        .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
        .unwrap_or(5)
}

/// The smallest CFS quota the kernel accepts, and the period range, in microseconds.
const MIN_QUOTA: u64 = 1_000;
const PERIOD: u64 = 100_000;
const MAX_PERIOD: u64 = 1_000_000;

/// CFS bandwidth for a rate of 1-10000 (percent × 100 of `cpus` CPUs): `rate × cpus × 10`
/// µs per 100 ms, or a longer period where that quota would be under the kernel's 1 ms.
pub(crate) fn rate_to_quota(rate: u32, cpus: u32) -> (u64, u64) {
    let share = u64::from(rate) * u64::from(cpus);
    let quota = share * PERIOD / 10_000;
    if quota >= MIN_QUOTA {
        return (quota, PERIOD);
    }
    ((share * MAX_PERIOD / 10_000).max(MIN_QUOTA), MAX_PERIOD)
}

/// The rate a CFS bandwidth enforces, rounded to the nearest unit.
pub(crate) fn rate_from_quota((quota, period): (u64, u64), cpus: u32) -> u32 {
    let whole = period * u64::from(cpus.max(1));
    ((quota * 10_000 + whole / 2) / whole).clamp(1, 10_000) as u32
}

/// The size of a page, the unit the kernel counts memory limits in.
pub(crate) fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the system; it has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
    })
}

/// The kernel's `PAGE_COUNTER_MAX` (include/linux/page_counter.h): `LONG_MAX / PAGE_SIZE`
/// pages on 64-bit, `LONG_MAX` on 32-bit. A memory counter's limit is at most that many pages,
/// and that many means none: `page_counter_memparse` (mm/page_counter.c) turns any larger
/// value into it, v2 `memory.max` reads it as `max`, v1 `memory.limit_in_bytes` as that many
/// pages in bytes.
pub(crate) fn page_counter_max() -> u64 {
    let long_max = libc::c_long::MAX as u64;
    if cfg!(target_pointer_width = "64") {
        long_max / page_size()
    } else {
        long_max
    }
}

/// The memory limits the kernel can hold, in bytes. It counts whole pages, rounding down: below
/// one page the limit is 0 pages, and the job is killed at its first allocation; from
/// `PAGE_COUNTER_MAX` pages up the limit is none.
pub(crate) fn memory_limit_range() -> RangeInclusive<u64> {
    let page = page_size();
    page..=page_counter_max() * page - 1
}

/// The highest process limit. `pids.max` refuses `PIDS_MAX` (`PID_MAX_LIMIT + 1`) and up with
/// EINVAL (kernel/cgroup/pids.c), and `PID_MAX_LIMIT` is 4 Mi where `long` has 64 bits, else
/// `PID_MAX_DEFAULT`, 32 Ki (include/linux/threads.h; a `CONFIG_BASE_SMALL` kernel has 32 Ki
/// too, and refuses more with EINVAL).
pub(crate) const MAX_PIDS: u64 = if cfg!(target_pointer_width = "64") {
    4 << 20
} else {
    0x8000
};

/// The highest I/O operations limit. blk-throttle keeps IOPS limits in an `unsigned int` where
/// `UINT_MAX` means none (block/blk-throttle.c): v2 `io.max` clamps larger values to it, and v1
/// `blkio.throttle.*_iops_device` truncates them (2^32 becomes 0, which stops all I/O).
/// Bandwidth is a `u64` where only `U64_MAX` means none: every `i64` the API takes fits.
pub(crate) const MAX_IOPS: u64 = u32::MAX as u64 - 1;

/// Reads `key value` lines (memory.stat, cpu.stat, memory.events) for one key.
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The value of `key` in a `key value` file; a missing or malformed one is an error.
pub(crate) fn required(text: &str, file: &str, key: &str) -> io::Result<u64> {
    keyed_value(text, key).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{file}: no number for {key}"),
        )
    })
}

/// A kernel file's `text` (a line of it, or all) that does not read as its format says.
pub(crate) fn malformed(file: &str, text: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {text:?}"))
}

/// The lines of a file with something on them.
pub(crate) fn nonblank(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !line.trim().is_empty())
}

/// A limit file's value: a number, or `max` for none.
pub(crate) fn max_or_number(text: &str) -> io::Result<Option<u64>> {
    match text.trim() {
        "max" => Ok(None),
        value => value.parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a limit: {value:?}"),
            )
        }),
    }
}

/// The whole disks a job's I/O limits apply to: every entry of `/sys/block` but loop, RAM and
/// zram devices (partitions are not listed there).
pub(crate) fn disks() -> io::Result<Vec<Device>> {
    let mut devices = Vec::new();
    for entry in std::fs::read_dir("/sys/block")? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if let Some(device) = std::fs::read_to_string(entry.path().join("dev"))
            .ok()
            .and_then(|text| Device::parse(&text))
        {
            devices.push(device);
        }
    }
    devices.sort();
    Ok(devices)
}

/// The number of CPUs of the host (all online ones, whatever this process's affinity).
pub(crate) fn host_cpus() -> u32 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| crate::cpu_list::parse(&list).ok())
        .map(u64::count_ones)
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
}

/// The host's online CPUs (all of them, whatever this process's affinity).
pub(crate) fn online_set() -> crate::CpuSet {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| crate::CpuSet::parse(&list).ok())
        .unwrap_or_else(|| (0..host_cpus().min(u32::from(u16::MAX)) as u16).collect())
}

/// The mask of the host's online CPUs.
pub(crate) fn online_mask() -> u64 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| crate::cpu_list::parse(&list).ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_and_are_monotonic() {
        for default in [100, 1024] {
            let mut last = 0;
            for w in 1..=9 {
                let k = weight_to_kernel(w, default);
                assert!(k > last, "weight {w} -> {k} not above {last}");
                last = k;
                assert_eq!(weight_from_kernel(k, default), w);
            }
            assert_eq!(weight_to_kernel(5, default), default);
        }
        assert_eq!(weight_from_kernel(10_000, 100), 9);
        assert_eq!(weight_from_kernel(1, 100), 1);
    }

    #[test]
    fn rates_round_trip() {
        for cpus in [1, 2, 4, 64] {
            for rate in [100, 2500, 5000, 9999, 10_000] {
                let quota = rate_to_quota(rate, cpus);
                assert!(quota.0 >= MIN_QUOTA);
                assert_eq!(
                    rate_from_quota(quota, cpus),
                    rate,
                    "rate {rate} cpus {cpus}"
                );
            }
        }
        assert_eq!(rate_to_quota(2500, 2), (50_000, 100_000));
        // Below 1 ms per 100 ms the period grows to a second.
        assert_eq!(rate_to_quota(10, 2), (2_000, 1_000_000));
        assert_eq!(rate_from_quota(rate_to_quota(10, 2), 2), 10);
        // The kernel's floor: 1 ms per second.
        assert_eq!(rate_to_quota(1, 2), (1_000, 1_000_000));
        assert_eq!(rate_from_quota((1_000, 1_000_000), 2), 5);
    }

    #[test]
    fn keyed_files() {
        let text = "anon 4096\nfile 0\npgfault 77\n";
        assert_eq!(keyed_value(text, "pgfault"), Some(77));
        assert_eq!(keyed_value(text, "anon"), Some(4096));
        assert_eq!(keyed_value(text, "missing"), None);
        assert_eq!(max_or_number("max\n").unwrap(), None);
        assert_eq!(max_or_number("4096\n").unwrap(), Some(4096));
        assert!(max_or_number("lots").is_err());
        assert_eq!(
            Device::parse("254:0\n"),
            Some(Device {
                major: 254,
                minor: 0
            })
        );
        assert_eq!(Device::parse("254"), None);
    }
}
