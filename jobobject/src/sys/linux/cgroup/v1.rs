//! What only cgroup v1 needs: the freezer's states and cpuset's initialisation.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::controllers::{
    Controllers, Device, IoMax, IoUsage, LimitEvents, MemoryUsage, keyed_value, max_or_number,
    weight_from_kernel, weight_to_kernel,
};
use super::{dir, wait_until};

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
    if dir::read(freezer, "freezer.self_freezing")?.trim() == "1" {
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
    pub(crate) cpu: Option<BorrowedFd<'a>>,
    pub(crate) cpuacct: Option<BorrowedFd<'a>>,
    pub(crate) cpuset: Option<BorrowedFd<'a>>,
    pub(crate) memory: Option<BorrowedFd<'a>>,
    pub(crate) blkio: Option<BorrowedFd<'a>>,
    pub(crate) pids: Option<BorrowedFd<'a>>,
}

/// The bandwidth written for "unlimited" instead of removing the rule: kernels before about
/// 6.3 count a v1 cgroup's I/O in `blkio.throttle.io_service*` only while it has a throttle
/// rule on the device, so a rule that never throttles keeps the statistics running.
const ACCOUNTING_ONLY_BPS: u64 = u64::MAX - 1;

/// The kernel's default `cpu.shares`.
const DEFAULT_SHARES: u64 = 1024;
/// `memory.limit_in_bytes` reads about 2^63 when there is no limit.
const NO_MEMORY_LIMIT: u64 = 1 << 62;

fn missing(controller: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no v1 {controller} hierarchy"),
    )
}

fn get<'a>(dir: Option<BorrowedFd<'a>>, controller: &str) -> io::Result<BorrowedFd<'a>> {
    dir.ok_or_else(|| missing(controller))
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
        let blkio = get(self.blkio, "blkio")?;
        // The recursive files count nested cgroups too.
        dir::read(blkio, &format!("{file}_recursive")).or_else(|_| dir::read(blkio, file))
    }
}

impl Controllers for V1<'_> {
    fn set_cpu_weight(&self, weight: Option<u32>) -> io::Result<()> {
        let value = weight.map_or(DEFAULT_SHARES, |w| weight_to_kernel(w, DEFAULT_SHARES));
        write(get(self.cpu, "cpu")?, "cpu.shares", &value.to_string())
    }

    fn cpu_weight(&self) -> io::Result<u32> {
        let shares = number(get(self.cpu, "cpu")?, "cpu.shares")?;
        Ok(weight_from_kernel(shares.max(1) as u64, DEFAULT_SHARES))
    }

    fn set_cpu_quota(&self, quota: Option<(u64, u64)>) -> io::Result<()> {
        let cpu = get(self.cpu, "cpu")?;
        match quota {
            Some((quota, period)) => {
                // Lift any quota first: a new period may not fit the old quota.
                write(cpu, "cpu.cfs_quota_us", "-1")?;
                write(cpu, "cpu.cfs_period_us", &period.to_string())?;
                write(cpu, "cpu.cfs_quota_us", &quota.to_string())
            }
            None => write(cpu, "cpu.cfs_quota_us", "-1"),
        }
    }

    fn cpu_quota(&self) -> io::Result<Option<(u64, u64)>> {
        let cpu = get(self.cpu, "cpu")?;
        let quota = number(cpu, "cpu.cfs_quota_us")?;
        if quota < 0 {
            return Ok(None);
        }
        Ok(Some((
            quota as u64,
            number(cpu, "cpu.cfs_period_us")? as u64,
        )))
    }

    fn set_cpus(&self, list: &str) -> io::Result<()> {
        write(get(self.cpuset, "cpuset")?, "cpuset.cpus", list)
    }

    fn cpus(&self) -> io::Result<String> {
        dir::read(get(self.cpuset, "cpuset")?, "cpuset.cpus")
    }

    fn set_memory_max(&self, bytes: Option<u64>) -> io::Result<()> {
        let value = bytes.map_or_else(|| "-1".to_owned(), |b| b.to_string());
        write(get(self.memory, "memory")?, "memory.limit_in_bytes", &value)
    }

    fn memory_max(&self) -> io::Result<Option<u64>> {
        let value = number(get(self.memory, "memory")?, "memory.limit_in_bytes")? as u64;
        Ok((value < NO_MEMORY_LIMIT).then_some(value))
    }

    fn set_io_max(&self, device: Device, limit: IoMax) -> io::Result<()> {
        let blkio = get(self.blkio, "blkio")?;
        // An IOPS of 0 removes that rule; the bandwidth rule stays, never throttling.
        let (bps, iops) = (
            limit.bps.unwrap_or(ACCOUNTING_ONLY_BPS),
            limit.iops.unwrap_or(0),
        );
        for (file, value) in [
            ("blkio.throttle.read_bps_device", bps),
            ("blkio.throttle.write_bps_device", bps),
            ("blkio.throttle.read_iops_device", iops),
            ("blkio.throttle.write_iops_device", iops),
        ] {
            write(blkio, file, &format!("{device} {value}"))?;
        }
        Ok(())
    }

    fn io_max(&self) -> io::Result<Vec<(Device, IoMax)>> {
        let blkio = get(self.blkio, "blkio")?;
        let bps = device_values(&dir::read(blkio, "blkio.throttle.write_bps_device")?);
        let iops = device_values(&dir::read(blkio, "blkio.throttle.write_iops_device")?);
        let mut limits: Vec<(Device, IoMax)> = Vec::new();
        for (device, value) in bps.into_iter().filter(|&(_, v)| v < ACCOUNTING_ONLY_BPS) {
            limits.push((
                device,
                IoMax {
                    bps: Some(value),
                    iops: None,
                },
            ));
        }
        for (device, value) in iops {
            match limits.iter_mut().find(|(d, _)| *d == device) {
                Some((_, limit)) => limit.iops = Some(value),
                None => limits.push((
                    device,
                    IoMax {
                        bps: None,
                        iops: Some(value),
                    },
                )),
            }
        }
        Ok(limits)
    }

    fn set_pids_max(&self, max: Option<u32>) -> io::Result<()> {
        let value = max.map_or_else(|| "max".to_owned(), |m| m.to_string());
        write(get(self.pids, "pids")?, "pids.max", &value)
    }

    fn pids_max(&self) -> io::Result<Option<u32>> {
        let value = max_or_number(&dir::read(get(self.pids, "pids")?, "pids.max")?)?;
        Ok(value.map(|v| v.min(u64::from(u32::MAX)) as u32))
    }

    fn memory_usage(&self) -> io::Result<MemoryUsage> {
        let memory = get(self.memory, "memory")?;
        Ok(MemoryUsage {
            current: number(memory, "memory.usage_in_bytes")? as u64,
            peak: number(memory, "memory.max_usage_in_bytes")? as u64,
        })
    }

    fn cpu_times(&self) -> io::Result<(Duration, Duration)> {
        let cpuacct = get(self.cpuacct, "cpuacct")?;
        let user = number(cpuacct, "cpuacct.usage_user")?;
        let system = number(cpuacct, "cpuacct.usage_sys")?;
        Ok((
            Duration::from_nanos(user as u64),
            Duration::from_nanos(system as u64),
        ))
    }

    fn page_faults(&self) -> io::Result<u64> {
        let stat = dir::read(get(self.memory, "memory")?, "memory.stat")?;
        keyed_value(&stat, "total_pgfault").ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "memory.stat: no total_pgfault")
        })
    }

    fn private_memory(&self) -> io::Result<u64> {
        let stat = dir::read(get(self.memory, "memory")?, "memory.stat")?;
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
        if let Some(memory) = self.memory {
            events.memory_max = number(memory, "memory.failcnt").unwrap_or(0) as u64;
            let oom = dir::read(memory, "memory.oom_control").unwrap_or_default();
            events.oom_kills = keyed_value(&oom, "oom_kill").unwrap_or(0);
        }
        if let Some(pids) = self.pids {
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
