//! cgroup v1: a job's limits and statistics through its directories in the v1 hierarchies
//! ([`V1`], the [`Controllers`] of hybrid and legacy hosts, each directory opened when a call
//! needs it), and what only v1 needs: the freezer's states, thawing a frozen tree, and
//! cpuset's initialisation.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::controllers::{
    ACCOUNTING_ONLY_BPS, Controllers, CounterFile, CpuMax, Device, IoMax, IoRule, IoUsage, Knobs,
    MemoryUsage, ProcessCounts, V2Memory, malformed, max_or_number, nonblank, page_counter_max,
    page_size, process_counts, required,
};
use super::{CgroupDir, DirFd, JobCgroups, dir, wait_until};

/// Freezes (`true`) or thaws a v1 freezer cgroup, waiting up to a second for `FROZEN`.
///
/// A frozen v1 task ignores even SIGKILL until it is thawed, so callers signal while frozen
/// (no task can fork) and thaw afterwards (every signalled task dies).
pub(crate) fn freeze(freezer: BorrowedFd<'_>, frozen: bool) -> io::Result<()> {
    let state: &[u8] = if frozen { b"FROZEN" } else { b"THAWED" };
    dir::write(freezer, "freezer.state", state)?;
    if frozen {
        wait_until(Duration::from_secs(1), || {
            Ok(dir::read(freezer, "freezer.state")?.trim() == "FROZEN")
        })?;
    }
    Ok(())
}

/// Thaws a v1 freezer cgroup and every cgroup below it that was frozen by itself (thawing a
/// parent leaves a child frozen that someone froze on its own).
pub(crate) fn thaw_tree(freezer: BorrowedFd<'_>) -> io::Result<()> {
    let self_frozen = match dir::read(freezer, "freezer.self_freezing") {
        Ok(text) => text.trim() == "1",
        // Removed meanwhile: it holds nothing.
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(err) => return Err(err),
    };
    if self_frozen {
        dir::write(freezer, "freezer.state", b"THAWED")?;
    }
    for name in dir::subdirectories(freezer)? {
        match dir::open_child(freezer, &name) {
            Ok(child) => thaw_tree(child.as_fd())?,
            // Removed meanwhile.
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A new v1 cpuset refuses processes (`ENOSPC`) until `cpuset.cpus` and `cpuset.mems` are
/// set: copy both from the parent.
pub(crate) fn init_cpuset(parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = dir::read(parent, file)?;
        let value = value.trim();
        if !value.is_empty() {
            dir::write(child, file, value.as_bytes())?;
        }
    }
    Ok(())
}

/// A job's v1 cgroups, one per controller (the same directory where controllers are
/// mounted together), for limits and statistics.
#[derive(Default)]
pub(crate) struct V1<'a> {
    pub(crate) cpu: Option<LazyDir<'a>>,
    pub(crate) cpuacct: Option<LazyDir<'a>>,
    pub(crate) cpuset: Option<LazyDir<'a>>,
    pub(crate) memory: Option<LazyDir<'a>>,
    pub(crate) blkio: Option<LazyDir<'a>>,
    pub(crate) pids: Option<LazyDir<'a>>,
    /// The job's v2 directory on a hybrid host, which gives the CPU times where no v1
    /// `cpuacct` hierarchy is used.
    pub(crate) unified: Option<BorrowedFd<'a>>,
}

/// One of the job's v1 directories, opened on first use and kept while the [`V1`] lives (one
/// call): a job holds no descriptor of its v1 directories between calls.
pub(crate) struct LazyDir<'a> {
    job: &'a JobCgroups,
    dir: &'a CgroupDir,
    fd: OnceCell<DirFd<'a>>,
}

impl<'a> LazyDir<'a> {
    pub(crate) fn new(job: &'a JobCgroups, dir: &'a CgroupDir) -> Self {
        LazyDir {
            job,
            dir,
            fd: OnceCell::new(),
        }
    }

    fn get(&self) -> io::Result<BorrowedFd<'_>> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_fd());
        }
        let fd = self.job.open_dir(self.dir)?;
        Ok(self.fd.get_or_init(|| fd).as_fd())
    }
}

/// The kernel's default `cpu.shares`.
const DEFAULT_SHARES: u64 = 1024;

/// Where one of a disk's four throttles is in an [`IoRule`].
type Throttle = fn(&mut IoRule) -> &mut Option<u64>;

/// The blkio throttle files of a disk's rule, with the throttle each holds.
const THROTTLE_FILES: [(&str, Throttle); 4] = [
    ("blkio.throttle.read_bps_device", |r| &mut r.rbps),
    ("blkio.throttle.write_bps_device", |r| &mut r.wbps),
    ("blkio.throttle.read_iops_device", |r| &mut r.riops),
    ("blkio.throttle.write_iops_device", |r| &mut r.wiops),
];

fn missing(controller: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no v1 {controller} hierarchy"),
    )
}

fn get<'s>(dir: &'s Option<LazyDir<'_>>, controller: &str) -> io::Result<BorrowedFd<'s>> {
    dir.as_ref().ok_or_else(|| missing(controller))?.get()
}

/// A file holding one number (every v1 value this crate reads is unsigned but the quota).
fn number(dir: BorrowedFd<'_>, file: &str) -> io::Result<u64> {
    let text = dir::read(dir, file)?;
    text.trim().parse().map_err(|_| malformed(file, &text))
}

/// `cpu.cfs_quota_us`: microseconds, or -1 for none.
fn quota(cpu: BorrowedFd<'_>) -> io::Result<Option<u64>> {
    const FILE: &str = "cpu.cfs_quota_us";
    let text = dir::read(cpu, FILE)?;
    match text.trim() {
        "-1" => Ok(None),
        quota => quota.parse().map(Some).map_err(|_| malformed(FILE, &text)),
    }
}

fn write(dir: BorrowedFd<'_>, file: &str, value: &str) -> io::Result<()> {
    dir::write(dir, file, value.as_bytes())
}

/// The `MAJ:MIN VALUE` lines of a blkio throttle file.
fn device_values(file: &str, text: &str) -> io::Result<Vec<(Device, u64)>> {
    nonblank(text)
        .map(|line| device_value(line).ok_or_else(|| malformed(file, line)))
        .collect()
}

fn device_value(line: &str) -> Option<(Device, u64)> {
    let mut words = line.split_whitespace();
    match (words.next()?, words.next()?, words.next()) {
        (device, value, None) => Some((Device::parse(device)?, value.parse().ok()?)),
        _ => None,
    }
}

/// Sums the `Read` and `Write` rows of a blkio statistics file.
fn read_write_sums(file: &str, text: &str) -> io::Result<(u64, u64)> {
    let mut sums = (0u64, 0u64);
    for line in nonblank(text) {
        let (op, value) = stat_row(line).ok_or_else(|| malformed(file, line))?;
        let sum = match op {
            "Read" => &mut sums.0,
            "Write" => &mut sums.1,
            _ => continue,
        };
        *sum = sum.saturating_add(value);
    }
    Ok(sums)
}

/// A row of blkio statistics, `MAJ:MIN OP VALUE` (`Read`, `Write`, `Sync`, `Async`,
/// `Discard`, `Total`) or the sum over disks, `Total VALUE`: its operation and value.
fn stat_row(line: &str) -> Option<(&str, u64)> {
    let mut words = line.split_whitespace();
    match (words.next()?, words.next()?, words.next(), words.next()) {
        ("Total", value, None, None) => Some(("Total", value.parse().ok()?)),
        (device, op, Some(value), None) => {
            Device::parse(device)?;
            Some((op, value.parse().ok()?))
        }
        _ => None,
    }
}

impl V1<'_> {
    fn blkio_stat(&self, file: &str) -> io::Result<String> {
        let blkio = get(&self.blkio, "blkio")?;
        // The recursive files count nested cgroups too.
        dir::read(blkio, &format!("{file}_recursive")).or_else(|_| dir::read(blkio, file))
    }
}

impl Knobs for V1<'_> {
    fn default_cpu_weight(&self) -> u64 {
        DEFAULT_SHARES
    }

    fn cpu_weight(&self) -> io::Result<u64> {
        number(get(&self.cpu, "cpu")?, "cpu.shares")
    }

    fn set_cpu_weight(&self, weight: u64) -> io::Result<()> {
        write(get(&self.cpu, "cpu")?, "cpu.shares", &weight.to_string())
    }

    fn cpu_max(&self) -> io::Result<CpuMax> {
        let cpu = get(&self.cpu, "cpu")?;
        Ok(CpuMax {
            quota: quota(cpu)?,
            period: number(cpu, "cpu.cfs_period_us")?,
        })
    }

    /// The kernel checks each file's write against the other's current value, so a new period
    /// goes in while no quota is set (which the kernel always accepts: the job then inherits
    /// its parent's); an unchanged period is not written, so that lowering a quota is one
    /// write, which the kernel refuses or applies as a whole.
    fn set_cpu_max(&self, max: CpuMax) -> io::Result<()> {
        let cpu = get(&self.cpu, "cpu")?;
        if number(cpu, "cpu.cfs_period_us")? != max.period {
            write(cpu, "cpu.cfs_quota_us", "-1")?;
            write(cpu, "cpu.cfs_period_us", &max.period.to_string())?;
        }
        let quota = max.quota.map_or_else(|| "-1".to_owned(), |q| q.to_string());
        write(cpu, "cpu.cfs_quota_us", &quota)
    }

    fn cpus(&self) -> io::Result<String> {
        Ok(dir::read(get(&self.cpuset, "cpuset")?, "cpuset.cpus")?
            .trim()
            .to_owned())
    }

    fn set_cpus(&self, list: &str) -> io::Result<()> {
        let list = if list.is_empty() { "\n" } else { list };
        write(get(&self.cpuset, "cpuset")?, "cpuset.cpus", list)
    }

    fn unrestricted_cpus(&self) -> io::Result<String> {
        self.parent_cpus()
    }

    fn parent_cpus(&self) -> io::Result<String> {
        let parent = dir::read(get(&self.cpuset, "cpuset")?, "../cpuset.cpus")?;
        Ok(parent.trim().to_owned())
    }

    fn memory_max(&self) -> io::Result<Option<u64>> {
        let bytes = number(get(&self.memory, "memory")?, "memory.limit_in_bytes")?;
        // No limit reads as PAGE_COUNTER_MAX pages.
        Ok((bytes / page_size() < page_counter_max()).then_some(bytes))
    }

    fn set_memory_max(&self, bytes: Option<u64>) -> io::Result<()> {
        let value = bytes.map_or_else(|| "-1".to_owned(), |b| b.to_string());
        write(
            get(&self.memory, "memory")?,
            "memory.limit_in_bytes",
            &value,
        )
    }

    fn io_rules(&self) -> io::Result<Vec<(Device, IoRule)>> {
        let blkio = get(&self.blkio, "blkio")?;
        let mut rules = BTreeMap::new();
        for (file, field) in THROTTLE_FILES {
            for (device, value) in device_values(file, &dir::read(blkio, file)?)? {
                *field(rules.entry(device).or_default()) = Some(value);
            }
        }
        Ok(rules.into_iter().collect())
    }

    fn set_io_rule(&self, device: Device, mut rule: IoRule) -> io::Result<()> {
        let blkio = get(&self.blkio, "blkio")?;
        // 0 removes a file's rule (the kernel stores it as U64_MAX / UINT_MAX, no limit).
        for (file, field) in THROTTLE_FILES {
            let value = field(&mut rule).unwrap_or(0);
            write(blkio, file, &format!("{device} {value}"))?;
        }
        Ok(())
    }

    fn io_rule_for(&self, limit: IoMax) -> IoRule {
        IoRule::new(limit, Some(ACCOUNTING_ONLY_BPS))
    }

    fn pids_max(&self) -> io::Result<Option<u64>> {
        max_or_number(&dir::read(get(&self.pids, "pids")?, "pids.max")?)
    }

    fn set_pids_max(&self, max: Option<u64>) -> io::Result<()> {
        let value = max.map_or_else(|| "max".to_owned(), |m| m.to_string());
        write(get(&self.pids, "pids")?, "pids.max", &value)
    }
}

impl Controllers for V1<'_> {
    fn memory_usage(&self) -> io::Result<MemoryUsage> {
        let memory = get(&self.memory, "memory")?;
        let current = number(memory, "memory.usage_in_bytes")?;
        // memsw counts memory and swap together; it is there with swap accounting only.
        let swap = number(memory, "memory.memsw.usage_in_bytes")
            .ok()
            .map(|both| both.saturating_sub(current));
        Ok(MemoryUsage {
            current,
            peak: number(memory, "memory.max_usage_in_bytes")?,
            swap,
        })
    }

    fn cpu_times(&self) -> io::Result<(Duration, Duration)> {
        if let (None, Some(dir)) = (&self.cpuacct, self.unified) {
            return super::v2::V2::new(dir).cpu_times();
        }
        let cpuacct = get(&self.cpuacct, "cpuacct")?;
        let user = number(cpuacct, "cpuacct.usage_user")?;
        let system = number(cpuacct, "cpuacct.usage_sys")?;
        Ok((Duration::from_nanos(user), Duration::from_nanos(system)))
    }

    fn page_faults(&self) -> io::Result<u64> {
        let stat = dir::read(get(&self.memory, "memory")?, "memory.stat")?;
        required(&stat, "memory.stat", "total_pgfault")
    }

    fn private_memory(&self) -> io::Result<u64> {
        let stat = dir::read(get(&self.memory, "memory")?, "memory.stat")?;
        required(&stat, "memory.stat", "total_rss")
    }

    fn io_accounting(&self) -> bool {
        self.blkio.is_some()
    }

    fn io_usage(&self) -> io::Result<IoUsage> {
        let sums = |file| read_write_sums(file, &self.blkio_stat(file)?);
        let (read_bytes, write_bytes) = sums("blkio.throttle.io_service_bytes")?;
        let (read_ios, write_ios) = sums("blkio.throttle.io_serviced")?;
        Ok(IoUsage {
            read_bytes,
            write_bytes,
            read_ios,
            write_ios,
        })
    }

    fn io_controller(&self) -> &'static str {
        "blkio"
    }

    fn io_accounting_needs_rules(&self) -> bool {
        true
    }

    fn how_to_get(&self, controller: &str, _parent: &std::path::Path) -> String {
        format!("mount the cgroup v1 {controller} hierarchy")
    }

    fn process_counts(&self) -> io::Result<ProcessCounts> {
        match &self.pids {
            Some(pids) => process_counts(pids.get()?),
            None => Ok(ProcessCounts::default()),
        }
    }

    fn lacks(&self, setting: V2Memory) -> Option<String> {
        Some(format!(
            "{} needs the cgroup v2 memory controller ({}); this job's is cgroup v1",
            setting.what(),
            setting.file()
        ))
    }

    /// v1 resets the peak for every reader.
    fn reset_memory_peak(&self) -> io::Result<()> {
        let memory = get(&self.memory, "memory")?;
        dir::write(memory, "memory.max_usage_in_bytes", b"0")?;
        if dir::exists(memory, "memory.memsw.max_usage_in_bytes") {
            dir::write(memory, "memory.memsw.max_usage_in_bytes", b"0")?;
        }
        Ok(())
    }

    fn counter_files(&self) -> Vec<(BorrowedFd<'_>, CounterFile)> {
        let mut files = Vec::new();
        if let Ok(memory) = get(&self.memory, "memory") {
            files.push((memory, CounterFile::MemoryFailcnt));
            files.push((memory, CounterFile::OomControl));
        }
        if let Ok(pids) = get(&self.pids, "pids") {
            files.push((pids, CounterFile::PidsEvents));
        }
        files
    }
}

#[cfg(test)]
mod tests;
