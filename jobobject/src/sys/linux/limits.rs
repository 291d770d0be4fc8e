//! The public limit and statistic semantics on top of [`Controllers`]: validation against the
//! kernel's bounds, units, changes made all or nothing, and errors that say what is missing.

mod transaction;

use std::io;
use std::sync::{Mutex, PoisonError};

use super::cgroup::JobCgroups;
use super::cgroup::controllers::{self, Controllers, MAX_IOPS, MAX_PIDS};
use crate::limits::{check_affinity, check_cpu, check_io};
use crate::{CpuRateControlType, Error, JobLimits, MemoryStats};
use transaction::{Change, Failure, IoChange, Knob, Setting};

/// A job's limits, for one call.
pub(crate) struct Limits<'a> {
    cgroups: &'a JobCgroups,
    controllers: Box<dyn Controllers + 'a>,
}

/// Held while limits change: a change that fails puts back the values it read first, which
/// would undo what another thread changed meanwhile.
static CHANGING: Mutex<()> = Mutex::new(());

/// Checks a memory limit against what the kernel can hold.
fn check_memory(bytes: u64) -> Result<(), Error> {
    let range = controllers::memory_limit_range();
    if range.contains(&bytes) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "a memory limit must be {} to {} bytes, got {bytes} (the kernel counts whole pages of \
         {} bytes: under one page is a limit of 0, {} pages or more is no limit)",
        range.start(),
        range.end(),
        controllers::page_size(),
        controllers::page_counter_max(),
    )))
}

/// Checks a process limit against what the kernel can hold.
fn check_processes(count: u32) -> Result<(), Error> {
    if (1..=MAX_PIDS).contains(&u64::from(count)) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "a process limit must be 1 to {MAX_PIDS} (the kernel's PID_MAX_LIMIT), got {count}"
    )))
}

/// Checks an I/O operations limit (0: none) against what the kernel can hold.
fn check_iops(iops: i64) -> Result<(), Error> {
    if iops.unsigned_abs() <= MAX_IOPS {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "an I/O operations limit must be at most {MAX_IOPS} per second (the kernel holds it in \
         32 bits), got {iops}"
    )))
}

/// Checks every non-zero field of `limits` against the kernel's bounds (`JobLimits::check`
/// does the rest).
fn check_kernel_bounds(limits: &JobLimits) -> Result<(), Error> {
    if limits.memory_limit_in_bytes != 0 {
        check_memory(limits.memory_limit_in_bytes)?;
    }
    if limits.max_processes != 0 {
        check_processes(limits.max_processes)?;
    }
    check_iops(limits.max_iops)
}

/// Why the kernel refuses a value it can hold, where it is known.
fn refusal_reason(knob: Knob, error: &io::Error) -> Option<&'static str> {
    match (knob, error.raw_os_error()?) {
        (Knob::CpuRate, libc::EINVAL) => Some(
            "a CFS quota may not be below the job's CFS burst nor, on cgroup v1, below a nested \
             cgroup's quota",
        ),
        (Knob::Cpus, libc::EACCES) => Some("on cgroup v1 a job's CPUs must be among its parent's"),
        (Knob::Cpus, libc::EBUSY) => Some("a nested cgroup uses CPUs outside the new list"),
        (Knob::Memory, libc::EBUSY) => {
            Some("the job uses more than that, and the kernel could not reclaim enough")
        }
        _ => None,
    }
}

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
                     another cgroup parent: os::linux::OptionsExt::cgroup_parent)",
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

    /// The controller whose files hold `knob`.
    fn controller(&self, knob: Knob) -> &'static str {
        match knob {
            Knob::CpuWeight | Knob::CpuRate => "cpu",
            Knob::Cpus => "cpuset",
            Knob::Memory => "memory",
            Knob::Io(_) => self.io_controller(),
            Knob::Processes => "pids",
        }
    }

    fn not_set(&self, what: &str) -> Error {
        Error::NotSet {
            what: format!("the {what} of job {:?}", self.cgroups.name()),
        }
    }

    /// Makes `changes`, all or nothing.
    fn apply(&self, changes: &[Change]) -> Result<(), Error> {
        let _changing = CHANGING.lock().unwrap_or_else(PoisonError::into_inner);
        transaction::apply(&*self.controllers, changes).map_err(|f| self.failure(f))
    }

    fn failure(&self, failure: Failure) -> Error {
        let Failure {
            knob,
            refused,
            error,
            unrestored,
        } = failure;
        let controller = self.controller(knob);
        let Some(refused) = refused else {
            return self.error(controller, &format!("read the {knob}"), error);
        };
        if let Some((other, restore_error)) = unrestored {
            let op = format!(
                "set the {knob} (and putting back the {other} failed too: {restore_error}; the \
                 job's limits may be changed in part)"
            );
            return self.error(controller, &op, error);
        }
        match (&refused, error.raw_os_error()) {
            // CPUs the kernel does not have, or (v2) held exclusively by another cgroup.
            (Setting::Cpus(list), Some(libc::EINVAL | libc::ERANGE)) => {
                return Error::invalid(format!(
                    "the kernel refuses CPU affinity {list}: CPUs this job may not have (held \
                     exclusively by another cgroup, or not there)"
                ));
            }
            // A kernel whose PID_MAX_LIMIT is lower (CONFIG_BASE_SMALL).
            (Setting::PidsMax(Some(count)), Some(libc::EINVAL)) => {
                return Error::invalid(format!(
                    "this kernel refuses a process limit of {count} (its PID_MAX_LIMIT is lower)"
                ));
            }
            _ => {}
        }
        let op = match refusal_reason(knob, &error) {
            Some(reason) => format!("set the {knob} (refused: {reason}; nothing was changed)"),
            None => format!("set the {knob} (nothing was changed)"),
        };
        self.error(controller, &op, error)
    }

    pub(crate) fn set_cpu_limit(&self, kind: CpuRateControlType, value: u32) -> Result<(), Error> {
        check_cpu(kind, value)?;
        self.apply(&transaction::cpu(kind, value, controllers::host_cpus()))
    }

    /// The rate reads back from the quota; the weight is readable while no rate is set
    /// (5, the default, when none was set).
    pub(crate) fn cpu_limit(&self, kind: CpuRateControlType) -> Result<u32, Error> {
        let c = &self.controllers;
        let max = c
            .cpu_max()
            .map_err(|e| self.error("cpu", "read CPU limit", e))?;
        match (kind, max.quota) {
            (CpuRateControlType::RateBased, Some(quota)) => Ok(controllers::rate_from_quota(
                (quota, max.period),
                controllers::host_cpus(),
            )),
            (CpuRateControlType::RateBased, None) => Err(self.not_set("CPU rate limit")),
            (CpuRateControlType::WeightBased, Some(_)) => {
                Err(self.not_set("CPU weight (it has a CPU rate limit instead)"))
            }
            (CpuRateControlType::WeightBased, None) => {
                let weight = c
                    .cpu_weight()
                    .map_err(|e| self.error("cpu", "read CPU weight", e))?;
                Ok(controllers::weight_from_kernel(
                    weight,
                    c.default_cpu_weight(),
                ))
            }
        }
    }

    pub(crate) fn set_cpu_affinity(&self, mask: u64) -> Result<(), Error> {
        check_affinity(mask, controllers::online_mask())?;
        self.apply(&[Change::Cpus(crate::cpu_list::format(mask))])
    }

    /// The job's own CPU list, or the CPUs it may use where it has none (v2).
    pub(crate) fn cpu_affinity(&self) -> Result<u64, Error> {
        let c = &self.controllers;
        let read = |e| self.error("cpuset", "read CPU affinity", e);
        let mut list = c.cpus().map_err(read)?;
        if list.is_empty() {
            list = c.effective_cpus().map_err(read)?;
        }
        crate::cpu_list::parse(&list).map_err(|_| {
            let err = io::Error::new(io::ErrorKind::InvalidData, format!("CPU list {list:?}"));
            self.error("cpuset", "parse CPU affinity", err)
        })
    }

    pub(crate) fn set_memory_limit(&self, bytes: u64) -> Result<(), Error> {
        check_memory(bytes)?;
        self.apply(&[Change::Memory(bytes)])
    }

    pub(crate) fn memory_limit(&self) -> Result<u64, Error> {
        self.controllers
            .memory_max()
            .map_err(|e| self.error("memory", "read memory limit", e))?
            .ok_or_else(|| self.not_set("memory limit"))
    }

    pub(crate) fn set_io_limit(&self, max_bandwidth: i64, max_iops: i64) -> Result<(), Error> {
        check_io(max_bandwidth, max_iops)?;
        check_iops(max_iops)?;
        let positive = |v: i64| (v > 0).then_some(v.unsigned_abs());
        self.change_io(Some(positive(max_bandwidth)), Some(positive(max_iops)))
    }

    /// Changes the I/O limits of every disk, keeping what a change leaves out.
    fn change_io(&self, bps: IoChange, iops: IoChange) -> Result<(), Error> {
        let disks = controllers::disks()
            .map_err(|e| self.error(self.io_controller(), "list the disks in /sys/block", e))?;
        self.apply(&transaction::io(&disks, bps, iops))
    }

    /// Makes sure the kernel counts the job's I/O on every disk: on v1 that takes a throttle
    /// rule per disk (see `controllers::ACCOUNTING_ONLY_BPS`), which rewriting the current
    /// limits installs. Best effort: newer kernels count without it.
    pub(crate) fn start_io_accounting(&self) {
        if self.cgroups.v1("blkio").is_some() {
            self.change_io(None, None).ok();
        }
    }

    fn io_limits(&self) -> Result<Vec<controllers::IoMax>, Error> {
        let rules = self
            .controllers
            .io_rules()
            .map_err(|e| self.error(self.io_controller(), "read I/O limits", e))?;
        Ok(rules.iter().map(|(_, rule)| rule.limit()).collect())
    }

    pub(crate) fn io_max_bandwidth_limit(&self) -> Result<i64, Error> {
        let max = self.io_limits()?.iter().filter_map(|l| l.bps).max();
        Ok(i64::try_from(max.unwrap_or(0)).unwrap_or(i64::MAX))
    }

    pub(crate) fn io_max_iops_limit(&self) -> Result<i64, Error> {
        let max = self.io_limits()?.iter().filter_map(|l| l.iops).max();
        Ok(i64::try_from(max.unwrap_or(0)).unwrap_or(i64::MAX))
    }

    pub(crate) fn set_max_processes(&self, count: u32) -> Result<(), Error> {
        check_processes(count)?;
        self.apply(&[Change::Processes(count)])
    }

    pub(crate) fn max_processes(&self) -> Result<u32, Error> {
        let max = self
            .controllers
            .pids_max()
            .map_err(|e| self.error("pids", "read process limit", e))?
            .ok_or_else(|| self.not_set("process limit"))?;
        Ok(u32::try_from(max).unwrap_or(u32::MAX))
    }

    pub(crate) fn set_resource_limits(&self, limits: &JobLimits) -> Result<(), Error> {
        limits.check(controllers::online_mask())?;
        check_kernel_bounds(limits)?;
        let disks = if limits.max_bandwidth != 0 || limits.max_iops != 0 {
            controllers::disks()
                .map_err(|e| self.error(self.io_controller(), "list the disks in /sys/block", e))?
        } else {
            Vec::new()
        };
        let changes = transaction::resources(limits, &disks, controllers::host_cpus());
        self.apply(&changes)
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
