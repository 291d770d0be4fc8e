//! What a job used, from its cgroups: the one place statistics are read.

use std::io;

use super::cgroup::JobCgroups;
use super::cgroup::controllers::Controllers;
use super::errors;
use crate::{Error, MemoryStats, ProcessorStats, StorageStats};

/// The process counts the library keeps itself (Linux keeps no count of processes that
/// passed through a cgroup).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counted {
    /// Processes this process put in the job (spawned or assigned).
    pub(crate) entered: u32,
    /// Processes its `terminate` killed.
    pub(crate) killed: u32,
}

/// A job's statistics, for one call.
pub(crate) struct Stats<'a> {
    cgroups: &'a JobCgroups,
    controllers: Box<dyn Controllers + 'a>,
}

impl<'a> Stats<'a> {
    pub(crate) fn new(cgroups: &'a JobCgroups) -> Self {
        Stats {
            cgroups,
            controllers: cgroups.controllers(),
        }
    }

    fn error(&self, controller: &str, op: &str, err: io::Error) -> Error {
        errors::controller(self.cgroups, &*self.controllers, controller, op, err)
    }

    /// Starts the memory peak again from the current use (see `JobObject::reset_memory_peak`).
    pub(crate) fn reset_memory_peak(&self) -> Result<(), Error> {
        match self.controllers.reset_memory_peak() {
            Err(err) if err.kind() == io::ErrorKind::Unsupported => Err(Error::Unsupported {
                what: format!(
                    "resetting the memory peak of job {:?}: {err}",
                    self.cgroups.name()
                ),
            }),
            result => result.map_err(|e| self.error("memory", "reset the memory peak", e)),
        }
    }

    pub(crate) fn memory(&self) -> Result<MemoryStats, Error> {
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
            swap: usage.swap,
        })
    }

    /// CPU times and counters from the job's cgroups, process totals from `counted`.
    pub(crate) fn processor(&self, counted: Counted) -> Result<ProcessorStats, Error> {
        let c = &self.controllers;
        let (user_time, kernel_time) = c
            .cpu_times()
            .map_err(|e| self.error("cpuacct", "read CPU times", e))?;
        // Without the memory controller there is no fault count: report none.
        let page_faults = c.page_faults().unwrap_or(0);
        let active = u32::try_from(self.cgroups.pids()?.len()).unwrap_or(u32::MAX);
        let oom_kills = c.limit_events().map(|e| e.oom_kills).unwrap_or(0);
        let terminated = counted
            .killed
            .saturating_add(u32::try_from(oom_kills).unwrap_or(u32::MAX));
        // Without the pids controller (or its files) there are none.
        let counts = c.process_counts().unwrap_or_default();
        Ok(ProcessorStats {
            user_time,
            kernel_time,
            page_faults,
            // Every process alive or killed was in the job.
            total_processes: counted.entered.max(active.saturating_add(terminated)),
            active_processes: active,
            terminated_processes: terminated,
            peak_processes: counts.peak,
            process_limit_refusals: counts.refused,
        })
    }

    /// Whether the job has an I/O controller to count its I/O; the error says how to get one.
    /// The name of the job's I/O controller: `blkio` on v1, `io` on v2.
    pub(crate) fn io_controller(&self) -> &'static str {
        self.controllers.io_controller()
    }

    pub(crate) fn check_io_accounting(&self) -> Result<(), Error> {
        if self.controllers.io_accounting() {
            return Ok(());
        }
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let io = self.controllers.io_controller();
        Err(self.error(io, "turn on I/O tracking", missing))
    }

    pub(crate) fn storage(&self) -> Result<StorageStats, Error> {
        let io = self.controllers.io_controller();
        let usage = self
            .controllers
            .io_usage()
            .map_err(|e| self.error(io, "read I/O statistics", e))?;
        Ok(StorageStats {
            read_operations: usage.read_ios,
            read_bytes: usage.read_bytes,
            write_operations: usage.write_ios,
            write_bytes: usage.write_bytes,
        })
    }

    pub(crate) fn private_working_set(&self) -> Result<u64, Error> {
        self.controllers
            .private_memory()
            .map_err(|e| self.error("memory", "read memory.stat", e))
    }
}
