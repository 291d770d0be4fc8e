//! The public limit semantics on top of [`Controllers`]: validation against the
//! kernel's bounds, units, changes made all or nothing, and errors that say what is missing.

mod transaction;

use std::io;
use std::sync::{Mutex, PoisonError};

use super::cgroup::JobCgroups;
use super::cgroup::controllers::{self, Controllers, MAX_IOPS, MAX_PIDS, V2Memory};
use super::errors;
use super::keeper;
use crate::{CpuLimit, CpuSet, Error, JobLimits, Limit};
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

/// Checks an I/O operations limit against what the kernel can hold.
fn check_iops(iops: u64) -> Result<(), Error> {
    if iops <= MAX_IOPS {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "an I/O operations limit must be at most {MAX_IOPS} per second (the kernel holds it in \
         32 bits), got {iops}"
    )))
}

/// Checks every value `limits` sets against the kernel's bounds (`JobLimits::check` does what
/// every platform checks).
fn check_kernel_bounds(limits: &JobLimits) -> Result<(), Error> {
    if let Limit::Set(bytes) = limits.memory {
        check_memory(bytes)?;
    }
    if let Limit::Set(bytes) = limits.memory_high {
        check_memory(bytes)?;
    }
    if let Limit::Set(bytes) = limits.swap {
        let max = *controllers::memory_limit_range().end();
        if bytes > max {
            return Err(Error::invalid(format!(
                "a swap limit must be at most {max} bytes (from there the kernel holds no \
                 limit), got {bytes}"
            )));
        }
    }
    if let Limit::Set(count) = limits.max_processes {
        check_processes(count)?;
    }
    if let Limit::Set(iops) = limits.io_iops {
        check_iops(iops)?;
    }
    Ok(())
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

    fn error(&self, controller: &str, op: &str, err: io::Error) -> Error {
        errors::controller(self.cgroups, &*self.controllers, controller, op, err)
    }

    fn io_controller(&self) -> &'static str {
        self.controllers.io_controller()
    }

    /// The controller whose files hold `knob`.
    fn controller(&self, knob: Knob) -> &'static str {
        match knob {
            Knob::CpuWeight | Knob::CpuRate => "cpu",
            Knob::Cpus => "cpuset",
            Knob::Memory | Knob::MemoryHigh | Knob::Swap => "memory",
            Knob::Io(_) => self.io_controller(),
            Knob::Processes => "pids",
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
            (Setting::Cpus(list), Some(libc::EINVAL | libc::ERANGE)) if !list.is_empty() => {
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

    /// Makes the directories (on demand) that the limits being set need; a limit to clear
    /// where its directory was never made is kept (there is none).
    fn on_demand(&self, limits: &JobLimits) -> Result<JobLimits, Error> {
        let mut limits = *limits;
        let io = self.io_controller();
        let set = |limit: &Limit<u64>| matches!(limit, Limit::Set(_));
        if set(&limits.cpu_affinity) {
            self.cgroups.ensure("cpuset")?;
            keeper::parents_changed(self.cgroups);
        } else if self.cgroups.lacks("cpuset") {
            limits.cpu_affinity = Limit::Keep;
        }
        if set(&limits.io_bandwidth) || set(&limits.io_iops) {
            self.cgroups.ensure(io)?;
            keeper::parents_changed(self.cgroups);
        } else if self.cgroups.lacks(io) {
            limits.io_bandwidth = Limit::Keep;
            limits.io_iops = Limit::Keep;
        }
        Ok(limits)
    }

    /// Refuses to set a v2-only memory limit where the job cannot have it; clearing one it
    /// cannot have is keeping it (there is none).
    fn v2_memory(&self, limits: &JobLimits) -> Result<JobLimits, Error> {
        let mut limits = *limits;
        for (limit, setting) in [
            (&mut limits.memory_high, V2Memory::High),
            (&mut limits.swap, V2Memory::Swap),
        ] {
            let Some(why) = self.controllers.lacks(setting) else {
                continue;
            };
            match limit {
                Limit::Set(_) => return Err(self.unsupported(&why)),
                Limit::Clear => *limit = Limit::Keep,
                Limit::Keep => {}
            }
        }
        Ok(limits)
    }

    fn unsupported(&self, why: &str) -> Error {
        Error::Unsupported {
            what: format!("job {:?}: {why}", self.cgroups.name()),
        }
    }

    pub(crate) fn memory_high(&self) -> Result<Option<u64>, Error> {
        self.controllers
            .memory_high()
            .map_err(|e| self.error("memory", "read the soft memory limit", e))
    }

    pub(crate) fn swap_limit(&self) -> Result<Option<u64>, Error> {
        self.controllers
            .swap_max()
            .map_err(|e| self.error("memory", "read the swap limit", e))
    }

    pub(crate) fn set_oom_group_kill(&self, all: bool) -> Result<(), Error> {
        if let Some(why) = self.controllers.lacks(V2Memory::OomGroup) {
            return Err(self.unsupported(&why));
        }
        let _changing = CHANGING.lock().unwrap_or_else(PoisonError::into_inner);
        self.controllers
            .set_oom_group(all)
            .map_err(|e| self.error("memory", "set memory.oom.group", e))
    }

    pub(crate) fn oom_group_kill(&self) -> Result<bool, Error> {
        self.controllers
            .oom_group()
            .map_err(|e| self.error("memory", "read memory.oom.group", e))
    }

    /// The rate where a quota is set, else the weight where it is not the kernel's default.
    pub(crate) fn cpu_limit(&self) -> Result<Option<CpuLimit>, Error> {
        let c = &self.controllers;
        let max = c
            .cpu_max()
            .map_err(|e| self.error("cpu", "read CPU limit", e))?;
        if let Some(quota) = max.quota {
            let cpus = controllers::host_cpus();
            let rate = controllers::rate_from_quota((quota, max.period), cpus);
            return Ok(Some(CpuLimit::Rate(rate)));
        }
        let weight = c
            .cpu_weight()
            .map_err(|e| self.error("cpu", "read CPU weight", e))?;
        let default = c.default_cpu_weight();
        Ok((weight != default)
            .then(|| CpuLimit::Weight(controllers::weight_from_kernel(weight, default))))
    }

    /// The job's own CPU list as a mask, unless it has none; an error where it names CPUs
    /// from 64 up, which a mask cannot hold.
    pub(crate) fn cpu_affinity(&self) -> Result<Option<u64>, Error> {
        let Some(set) = self.cpu_set()? else {
            return Ok(None);
        };
        set.mask().map(Some).ok_or_else(|| Error::Unsupported {
            what: format!(
                "the CPU affinity of job {:?} as a mask: it has CPUs from 64 up ({set}); read \
                 it with cpu_set",
                self.cgroups.name()
            ),
        })
    }

    /// The job's own CPU list, unless it has none (v2) or it allows every CPU its parent does.
    pub(crate) fn cpu_set(&self) -> Result<Option<CpuSet>, Error> {
        if self.cgroups.lacks("cpuset") {
            return Ok(None);
        }
        let c = &self.controllers;
        let read = |e| self.error("cpuset", "read CPU affinity", e);
        let list = c.cpus().map_err(read)?;
        if list.is_empty() {
            return Ok(None);
        }
        let set = self.parse_cpus(&list)?;
        let parent = self.parse_cpus(&c.parent_cpus().map_err(read)?)?;
        Ok((set != parent).then_some(set))
    }

    /// Restricts the job to `cpus` (checked: not empty), or lets it run anywhere.
    pub(crate) fn set_cpu_set(&self, cpus: Option<&CpuSet>) -> Result<(), Error> {
        match cpus {
            Some(cpus) => {
                crate::cpu_set::check_online(cpus, &controllers::online_set())?;
                self.cgroups.ensure("cpuset")?;
                keeper::parents_changed(self.cgroups);
            }
            None if self.cgroups.lacks("cpuset") => return Ok(()),
            None => {}
        }
        // The directory made on demand just now has controllers too.
        let this = Limits::new(self.cgroups);
        this.apply(&[Change::Cpus(cpus.map(ToString::to_string))])
    }

    fn parse_cpus(&self, list: &str) -> Result<CpuSet, Error> {
        CpuSet::parse(list).map_err(|_| {
            let err = io::Error::new(io::ErrorKind::InvalidData, format!("CPU list {list:?}"));
            self.error("cpuset", "parse CPU affinity", err)
        })
    }

    pub(crate) fn memory_limit(&self) -> Result<Option<u64>, Error> {
        self.controllers
            .memory_max()
            .map_err(|e| self.error("memory", "read memory limit", e))
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
        if self.controllers.io_accounting_needs_rules() {
            self.change_io(None, None).ok();
        }
    }

    fn io_limits(&self) -> Result<Vec<controllers::IoMax>, Error> {
        if self.cgroups.lacks(self.io_controller()) {
            return Ok(Vec::new());
        }
        let rules = self
            .controllers
            .io_rules()
            .map_err(|e| self.error(self.io_controller(), "read I/O limits", e))?;
        Ok(rules.iter().map(|(_, rule)| rule.limit()).collect())
    }

    /// The highest bandwidth limit of the job's disks.
    pub(crate) fn io_max_bandwidth_limit(&self) -> Result<Option<u64>, Error> {
        Ok(self.io_limits()?.iter().filter_map(|l| l.bps).max())
    }

    /// The highest operations limit of the job's disks.
    pub(crate) fn io_max_iops_limit(&self) -> Result<Option<u64>, Error> {
        Ok(self.io_limits()?.iter().filter_map(|l| l.iops).max())
    }

    pub(crate) fn max_processes(&self) -> Result<Option<u32>, Error> {
        let max = self
            .controllers
            .pids_max()
            .map_err(|e| self.error("pids", "read process limit", e))?;
        Ok(max.map(|max| u32::try_from(max).unwrap_or(u32::MAX)))
    }

    pub(crate) fn set_resource_limits(&self, limits: &JobLimits) -> Result<(), Error> {
        limits.check(controllers::online_mask())?;
        check_kernel_bounds(limits)?;
        let limits = &self.v2_memory(limits)?;
        let limits = &self.on_demand(limits)?;
        // The directories made on demand just now have controllers too.
        let this = Limits::new(self.cgroups);
        let disks = if limits.io_bandwidth != Limit::Keep || limits.io_iops != Limit::Keep {
            controllers::disks()
                .map_err(|e| this.error(this.io_controller(), "list the disks in /sys/block", e))?
        } else {
            Vec::new()
        };
        let changes = transaction::resources(limits, &disks, controllers::host_cpus());
        this.apply(&changes)
    }
}
