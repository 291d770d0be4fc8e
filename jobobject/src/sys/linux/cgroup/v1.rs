//! What only cgroup v1 needs: the freezer's states and cpuset's initialisation.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::controllers::{
    ACCOUNTING_ONLY_BPS, Controllers, CpuMax, Device, IoMax, IoRule, IoUsage, Knobs, LimitEvents,
    MemoryUsage, keyed_value, max_or_number, page_counter_max, page_size,
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

fn number(dir: BorrowedFd<'_>, file: &str) -> io::Result<i64> {
    let text = dir::read(dir, file)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {text:?}")))
}

fn write(dir: BorrowedFd<'_>, file: &str, value: &str) -> io::Result<()> {
    dir::write(dir, file, value.as_bytes())
}

/// `MAJ:MIN VALUE` lines of the blkio throttle files.
fn device_values(text: &str) -> Vec<(Device, u64)> {
    text.lines()
        .filter_map(|line| {
            let (device, value) = line.split_once(' ')?;
            Some((Device::parse(device)?, value.trim().parse().ok()?))
        })
        .collect()
}

/// Sums the `Read` and `Write` rows of `MAJ:MIN Op VALUE` lines (blkio statistics).
fn read_write_sums(text: &str) -> (u64, u64) {
    let mut sums = (0, 0);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(_device), Some(op), Some(value)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match op {
            "Read" => sums.0 += value,
            "Write" => sums.1 += value,
            _ => {}
        }
    }
    sums
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
        Ok(number(get(&self.cpu, "cpu")?, "cpu.shares")?.max(0) as u64)
    }

    fn set_cpu_weight(&self, weight: u64) -> io::Result<()> {
        write(get(&self.cpu, "cpu")?, "cpu.shares", &weight.to_string())
    }

    fn cpu_max(&self) -> io::Result<CpuMax> {
        let cpu = get(&self.cpu, "cpu")?;
        let quota = number(cpu, "cpu.cfs_quota_us")?;
        Ok(CpuMax {
            quota: u64::try_from(quota).ok(),
            period: number(cpu, "cpu.cfs_period_us")?.max(0) as u64,
        })
    }

    /// The kernel checks each file's write against the other's current value, so a new period
    /// goes in while no quota is set (which the kernel always accepts: the job then inherits
    /// its parent's); an unchanged period is not written, so that lowering a quota is one
    /// write, which the kernel refuses or applies as a whole.
    fn set_cpu_max(&self, max: CpuMax) -> io::Result<()> {
        let cpu = get(&self.cpu, "cpu")?;
        if number(cpu, "cpu.cfs_period_us")? != max.period as i64 {
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

    fn memory_max(&self) -> io::Result<Option<u64>> {
        let bytes = number(get(&self.memory, "memory")?, "memory.limit_in_bytes")?.max(0) as u64;
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
            for (device, value) in device_values(&dir::read(blkio, file)?) {
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
    fn effective_cpus(&self) -> io::Result<String> {
        dir::read(get(&self.cpuset, "cpuset")?, "cpuset.effective_cpus")
    }

    fn memory_usage(&self) -> io::Result<MemoryUsage> {
        let memory = get(&self.memory, "memory")?;
        Ok(MemoryUsage {
            current: number(memory, "memory.usage_in_bytes")? as u64,
            peak: number(memory, "memory.max_usage_in_bytes")? as u64,
        })
    }

    fn cpu_times(&self) -> io::Result<(Duration, Duration)> {
        let cpuacct = get(&self.cpuacct, "cpuacct")?;
        let user = number(cpuacct, "cpuacct.usage_user")?;
        let system = number(cpuacct, "cpuacct.usage_sys")?;
        Ok((
            Duration::from_nanos(user as u64),
            Duration::from_nanos(system as u64),
        ))
    }

    fn page_faults(&self) -> io::Result<u64> {
        let stat = dir::read(get(&self.memory, "memory")?, "memory.stat")?;
        keyed_value(&stat, "total_pgfault").ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "memory.stat: no total_pgfault")
        })
    }

    fn private_memory(&self) -> io::Result<u64> {
        let stat = dir::read(get(&self.memory, "memory")?, "memory.stat")?;
        keyed_value(&stat, "total_rss")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "memory.stat: no total_rss"))
    }

    fn io_accounting(&self) -> bool {
        self.blkio.is_some()
    }

    fn io_usage(&self) -> io::Result<IoUsage> {
        let (read_bytes, write_bytes) =
            read_write_sums(&self.blkio_stat("blkio.throttle.io_service_bytes")?);
        let (read_ios, write_ios) =
            read_write_sums(&self.blkio_stat("blkio.throttle.io_serviced")?);
        Ok(IoUsage {
            read_bytes,
            write_bytes,
            read_ios,
            write_ios,
        })
    }

    fn limit_events(&self) -> io::Result<LimitEvents> {
        let mut events = LimitEvents::default();
        if let Ok(memory) = get(&self.memory, "memory") {
            events.memory_max = number(memory, "memory.failcnt").unwrap_or(0) as u64;
            let oom = dir::read(memory, "memory.oom_control").unwrap_or_default();
            events.oom_kills = keyed_value(&oom, "oom_kill").unwrap_or(0);
        }
        if let Ok(pids) = get(&self.pids, "pids") {
            let text = dir::read(pids, "pids.events").unwrap_or_default();
            events.pids_max = keyed_value(&text, "max").unwrap_or(0);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_files() {
        assert_eq!(
            device_values("254:0 1048576\n8:0 5\n"),
            vec![
                (
                    Device {
                        major: 254,
                        minor: 0
                    },
                    1_048_576
                ),
                (Device { major: 8, minor: 0 }, 5)
            ]
        );
        let stat = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n8:0 Read 1\nTotal 12289\n";
        assert_eq!(read_write_sums(stat), (4097, 8192));
        assert_eq!(read_write_sums("garbage\n"), (0, 0));
    }
}
