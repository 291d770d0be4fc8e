//! The public limit and statistic semantics on top of [`Controllers`]: validation, units,
//! and errors that say what is missing.

use std::io;

use super::cgroup::JobCgroups;
use super::cgroup::controllers::{self, Controllers, IoMax};
use crate::limits::{check_affinity, check_cpu, check_io};
use crate::{CpuRateControlType, Error, JobLimits, MemoryStats};

/// A job's limits, for one call.
pub(crate) struct Limits<'a> {
    cgroups: &'a JobCgroups,
    controllers: Box<dyn Controllers + 'a>,
}

/// What to do with one of the two I/O limits: keep it, or set it (`None`: unlimited).
type IoChange = Option<Option<u64>>;

impl<'a> Limits<'a> {
    pub(crate) fn new(cgroups: &'a JobCgroups) -> Self {
        Limits {
            cgroups,
            controllers: cgroups.controllers(),
        }
    }

    /// Maps an error of `controller`'s files: a missing file means the controller is not
    /// there for this job.
    fn error(&self, controller: &str, op: &str, err: io::Error) -> Error {
        let job = self.cgroups.name();
        let path = self.cgroups.path_for(controller);
        if err.kind() == io::ErrorKind::NotFound {
            let fix = if self.cgroups.v1(controller).is_some() || self.cgroups.v2().is_none() {
                format!("mount the cgroup v1 {controller} hierarchy")
            } else {
                format!(
                    "enable it in the cgroup.subtree_control of the job's parent, {} \
                     (a cgroup that holds processes itself cannot enable controllers: choose \
                     another Options::cgroup_parent)",
                    path.parent().unwrap_or(path).display()
                )
            };
            return Error::Unsupported {
                what: format!("the {controller} controller is not available to job {job:?}: {fix}"),
            };
        }
        super::cgroup::os(job, op, path, err)
    }

    /// The I/O controller's name: `blkio` in v1, `io` in v2.
    pub(crate) fn io_controller(&self) -> &'static str {
        if self.cgroups.v1("blkio").is_some() || self.cgroups.v2().is_none() {
            "blkio"
        } else {
            "io"
        }
    }

    fn not_set(&self, what: &str) -> Error {
        Error::NotSet {
            what: format!("the {what} of job {:?}", self.cgroups.name()),
        }
    }

    pub(crate) fn set_cpu_limit(&self, kind: CpuRateControlType, value: u32) -> Result<(), Error> {
        check_cpu(kind, value)?;
        let c = &self.controllers;
        let result = match kind {
            CpuRateControlType::WeightBased => c
                .set_cpu_quota(None)
                .and_then(|()| c.set_cpu_weight(Some(value))),
            CpuRateControlType::RateBased => {
                let quota = controllers::rate_to_quota(value, controllers::host_cpus());
                c.set_cpu_weight(None)
                    .and_then(|()| c.set_cpu_quota(Some(quota)))
            }
        };
        result.map_err(|e| self.error("cpu", "set CPU limit", e))
    }

    /// The rate reads back from the quota; the weight is readable while no rate is set
    /// (5, the default, when none was set).
    pub(crate) fn cpu_limit(&self, kind: CpuRateControlType) -> Result<u32, Error> {
        let c = &self.controllers;
        let quota = c
            .cpu_quota()
            .map_err(|e| self.error("cpu", "read CPU limit", e))?;
        match (kind, quota) {
            (CpuRateControlType::RateBased, Some(quota)) => Ok(controllers::rate_from_quota(
                quota,
                controllers::host_cpus(),
            )),
            (CpuRateControlType::RateBased, None) => Err(self.not_set("CPU rate limit")),
            (CpuRateControlType::WeightBased, Some(_)) => {
                Err(self.not_set("CPU weight (it has a CPU rate limit instead)"))
            }
            (CpuRateControlType::WeightBased, None) => c
                .cpu_weight()
                .map_err(|e| self.error("cpu", "read CPU weight", e)),
        }
    }

    pub(crate) fn set_cpu_affinity(&self, mask: u64) -> Result<(), Error> {
        check_affinity(mask, controllers::online_mask())?;
        let list = crate::format_cpu_list(mask);
        self.controllers.set_cpus(&list).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => Error::invalid(format!(
                "CPU affinity {mask:#x} (CPUs {list}) is outside the CPUs the job's parent allows"
            )),
            _ => self.error("cpuset", "set CPU affinity", e),
        })
    }

    pub(crate) fn cpu_affinity(&self) -> Result<u64, Error> {
        let list = self
            .controllers
            .cpus()
            .map_err(|e| self.error("cpuset", "read CPU affinity", e))?;
        crate::parse_cpu_list(&list).map_err(|_| {
            let err = io::Error::new(io::ErrorKind::InvalidData, format!("CPU list {list:?}"));
            self.error("cpuset", "parse CPU affinity", err)
        })
    }

    pub(crate) fn set_memory_limit(&self, bytes: u64) -> Result<(), Error> {
        if bytes == 0 {
            return Err(Error::invalid("a memory limit of 0 bytes"));
        }
        self.controllers
            .set_memory_max(Some(bytes))
            .map_err(|e| self.error("memory", "set memory limit", e))
    }

    pub(crate) fn memory_limit(&self) -> Result<u64, Error> {
        self.controllers
            .memory_max()
            .map_err(|e| self.error("memory", "read memory limit", e))?
            .ok_or_else(|| self.not_set("memory limit"))
    }

    pub(crate) fn set_io_limit(&self, max_bandwidth: i64, max_iops: i64) -> Result<(), Error> {
        check_io(max_bandwidth, max_iops)?;
        let positive = |v: i64| (v > 0).then_some(v as u64);
        self.change_io(Some(positive(max_bandwidth)), Some(positive(max_iops)))
    }

    /// Applies I/O changes to every disk, keeping what a change leaves out.
    fn change_io(&self, bps: IoChange, iops: IoChange) -> Result<(), Error> {
        let c = &self.controllers;
        let map = |e| self.error(self.io_controller(), "set I/O limit", e);
        let current = c.io_max().map_err(map)?;
        let disks = controllers::disks().map_err(map)?;
        for device in disks {
            let old = current
                .iter()
                .find(|(d, _)| *d == device)
                .map(|(_, limit)| *limit)
                .unwrap_or_default();
            let limit = IoMax {
                bps: bps.unwrap_or(old.bps),
                iops: iops.unwrap_or(old.iops),
            };
            match c.set_io_max(device, limit) {
                // The disk went away, or takes no throttling (some virtual devices).
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                other => other.map_err(map)?,
            }
        }
        Ok(())
    }

    /// Makes sure the kernel counts the job's I/O on every disk: on v1 that takes a throttle
    /// rule per disk (see `v1::ACCOUNTING_ONLY_BPS`), which rewriting the current limits
    /// installs. Best effort: newer kernels count without it.
    pub(crate) fn start_io_accounting(&self) {
        if self.cgroups.v1("blkio").is_some() {
            self.change_io(None, None).ok();
        }
    }

    fn io_limits(&self) -> Result<Vec<IoMax>, Error> {
        let limits = self
            .controllers
            .io_max()
            .map_err(|e| self.error(self.io_controller(), "read I/O limits", e))?;
        Ok(limits.into_iter().map(|(_, limit)| limit).collect())
    }

    pub(crate) fn io_max_bandwidth_limit(&self) -> Result<i64, Error> {
        let max = self.io_limits()?.iter().filter_map(|l| l.bps).max();
        Ok(max.unwrap_or(0).min(i64::MAX as u64) as i64)
    }

    pub(crate) fn io_max_iops_limit(&self) -> Result<i64, Error> {
        let max = self.io_limits()?.iter().filter_map(|l| l.iops).max();
        Ok(max.unwrap_or(0).min(i64::MAX as u64) as i64)
    }

    pub(crate) fn set_max_processes(&self, count: u32) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::invalid("a process limit of 0"));
        }
        self.controllers
            .set_pids_max(Some(count))
            .map_err(|e| self.error("pids", "set process limit", e))
    }

    pub(crate) fn max_processes(&self) -> Result<u32, Error> {
        self.controllers
            .pids_max()
            .map_err(|e| self.error("pids", "read process limit", e))?
            .ok_or_else(|| self.not_set("process limit"))
    }

    pub(crate) fn set_resource_limits(&self, limits: &JobLimits) -> Result<(), Error> {
        limits.check(controllers::online_mask())?;
        if limits.cpu_limit != 0 {
            self.set_cpu_limit(CpuRateControlType::RateBased, limits.cpu_limit)?;
        }
        if limits.cpu_weight != 0 {
            self.set_cpu_limit(CpuRateControlType::WeightBased, limits.cpu_weight)?;
        }
        if limits.cpu_affinity != 0 {
            self.set_cpu_affinity(limits.cpu_affinity)?;
        }
        if limits.memory_limit_in_bytes != 0 {
            self.set_memory_limit(limits.memory_limit_in_bytes)?;
        }
        if limits.max_bandwidth != 0 || limits.max_iops != 0 {
            let change = |v: i64| (v != 0).then_some(Some(v as u64));
            self.change_io(change(limits.max_bandwidth), change(limits.max_iops))?;
        }
        if limits.max_processes != 0 {
            self.set_max_processes(limits.max_processes)?;
        }
        Ok(())
    }

    pub(crate) fn memory_stats(&self) -> Result<MemoryStats, Error> {
        let c = &self.controllers;
        let usage = c
            .memory_usage()
            .map_err(|e| self.error("memory", "read memory use", e))?;
        let limit = c
            .memory_max()
            .map_err(|e| self.error("memory", "read memory limit", e))?;
        Ok(MemoryStats {
            current: usage.current,
            peak: usage.peak.max(usage.current),
            limit,
        })
    }

    pub(crate) fn private_working_set(&self) -> Result<u64, Error> {
        self.controllers
            .private_memory()
            .map_err(|e| self.error("memory", "read memory.stat", e))
    }

    pub(crate) fn controllers(&self) -> &dyn Controllers {
        &*self.controllers
    }

    pub(crate) fn map_error(&self, controller: &str, op: &str, err: io::Error) -> Error {
        self.error(controller, op, err)
    }
}
