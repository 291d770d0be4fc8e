//! Limits changed all or nothing.
//!
//! A call may change several limits: a CPU rate clears the weight, an I/O limit is one rule per
//! disk, `set_resource_limits` sets up to six. Every limit a call changes is read first, then
//! the new values are written in order; when the kernel refuses one (v1 refuses a CFS quota
//! below a nested cgroup's, both versions one below the CFS burst, v1 a memory limit it cannot
//! reclaim down to), every value written so far, the refused one included (v1 spreads some
//! limits over several files), is put back, last first, to what was read. Values are the
//! kernel's own (raw weights, quota and period, page-rounded bytes, each disk's four
//! throttles), so what is put back is exactly what was there.

use std::fmt;
use std::io;

use crate::sys::linux::cgroup::controllers::{
    CpuMax, Device, IoMax, IoRule, Knobs, rate_to_quota, weight_to_kernel,
};
use crate::{CpuLimit, JobLimits, Limit};

/// What to do with one of a disk's two limits: keep it (`None`), or set it (`Some(None)`:
/// unlimited).
pub(crate) type IoChange = Option<Option<u64>>;

/// One limit a call changes, in the API's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A CPU weight of 1-9, or the kernel's default.
    CpuWeight(Option<u32>),
    /// A CFS quota and period in microseconds, or no quota (the period is kept).
    CpuQuota(Option<(u64, u64)>),
    /// The CPUs, as a kernel list, or none of the job's own.
    Cpus(Option<String>),
    /// Memory, in bytes, or no limit.
    Memory(Option<u64>),
    /// The soft memory limit, in bytes, or none.
    MemoryHigh(Option<u64>),
    /// Swap, in bytes, or no limit.
    Swap(Option<u64>),
    /// One disk's bandwidth and IOPS limits.
    Io {
        device: Device,
        bps: IoChange,
        iops: IoChange,
    },
    /// A number of processes, or no limit.
    Processes(Option<u32>),
}

/// A limit's value in kernel terms, as read or as to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting {
    CpuWeight(u64),
    CpuMax(CpuMax),
    Cpus(String),
    MemoryMax(Option<u64>),
    MemoryHigh(Option<u64>),
    SwapMax(Option<u64>),
    Io(Device, IoRule),
    PidsMax(Option<u64>),
}

/// Which limit, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knob {
    CpuWeight,
    CpuRate,
    Cpus,
    Memory,
    MemoryHigh,
    Swap,
    Io(Device),
    Processes,
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Knob::CpuWeight => f.write_str("CPU weight"),
            Knob::CpuRate => f.write_str("CPU rate"),
            Knob::Cpus => f.write_str("CPU affinity"),
            Knob::Memory => f.write_str("memory limit"),
            Knob::MemoryHigh => f.write_str("soft memory limit"),
            Knob::Swap => f.write_str("swap limit"),
            Knob::Io(device) => write!(f, "I/O limit of disk {device}"),
            Knob::Processes => f.write_str("process limit"),
        }
    }
}

/// Why a change was not made. Unless `unrestored` says otherwise, every limit is as it was.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The limit that could not be read or written.
    pub(crate) knob: Knob,
    /// The value the kernel refused; `None` when reading, before anything was written.
    pub(crate) refused: Option<Setting>,
    pub(crate) error: io::Error,
    /// A limit that could not be put back, and why.
    pub(crate) unrestored: Option<(Knob, io::Error)>,
}

/// A limit's value before and after.
struct Step {
    before: Setting,
    after: Setting,
}

impl Change {
    fn knob(&self) -> Knob {
        match self {
            Change::CpuWeight(_) => Knob::CpuWeight,
            Change::CpuQuota(_) => Knob::CpuRate,
            Change::Cpus(_) => Knob::Cpus,
            Change::Memory(_) => Knob::Memory,
            Change::MemoryHigh(_) => Knob::MemoryHigh,
            Change::Swap(_) => Knob::Swap,
            Change::Io { device, .. } => Knob::Io(*device),
            Change::Processes(_) => Knob::Processes,
        }
    }

    /// Reads the limit, and works out the value to write.
    fn step<K: Knobs + ?Sized>(&self, knobs: &K) -> io::Result<Step> {
        let (before, after) = match self {
            Change::CpuWeight(weight) => {
                let default = knobs.default_cpu_weight();
                let after = weight.map_or(default, |w| weight_to_kernel(w, default));
                (
                    Setting::CpuWeight(knobs.cpu_weight()?),
                    Setting::CpuWeight(after),
                )
            }
            Change::CpuQuota(quota) => {
                let before = knobs.cpu_max()?;
                let after = match *quota {
                    Some((quota, period)) => CpuMax {
                        quota: Some(quota),
                        period,
                    },
                    None => CpuMax {
                        quota: None,
                        ..before
                    },
                };
                (Setting::CpuMax(before), Setting::CpuMax(after))
            }
            Change::Cpus(list) => {
                let after = match list {
                    Some(list) => list.clone(),
                    None => knobs.unrestricted_cpus()?,
                };
                (Setting::Cpus(knobs.cpus()?), Setting::Cpus(after))
            }
            Change::Memory(bytes) => (
                Setting::MemoryMax(knobs.memory_max()?),
                Setting::MemoryMax(*bytes),
            ),
            Change::MemoryHigh(bytes) => (
                Setting::MemoryHigh(knobs.memory_high()?),
                Setting::MemoryHigh(*bytes),
            ),
            Change::Swap(bytes) => (
                Setting::SwapMax(knobs.swap_max()?),
                Setting::SwapMax(*bytes),
            ),
            Change::Io { device, bps, iops } => {
                let before = io_rule(knobs, *device)?;
                let now = before.limit();
                let limit = IoMax {
                    bps: bps.unwrap_or(now.bps),
                    iops: iops.unwrap_or(now.iops),
                };
                (
                    Setting::Io(*device, before),
                    Setting::Io(*device, knobs.io_rule_for(limit)),
                )
            }
            Change::Processes(count) => (
                Setting::PidsMax(knobs.pids_max()?),
                Setting::PidsMax(count.map(u64::from)),
            ),
        };
        Ok(Step { before, after })
    }
}

impl Setting {
    fn knob(&self) -> Knob {
        match self {
            Setting::CpuWeight(_) => Knob::CpuWeight,
            Setting::CpuMax(_) => Knob::CpuRate,
            Setting::Cpus(_) => Knob::Cpus,
            Setting::MemoryMax(_) => Knob::Memory,
            Setting::MemoryHigh(_) => Knob::MemoryHigh,
            Setting::SwapMax(_) => Knob::Swap,
            Setting::Io(device, _) => Knob::Io(*device),
            Setting::PidsMax(_) => Knob::Processes,
        }
    }

    /// The same limit's value now.
    fn reread<K: Knobs + ?Sized>(&self, knobs: &K) -> io::Result<Setting> {
        Ok(match self {
            Setting::CpuWeight(_) => Setting::CpuWeight(knobs.cpu_weight()?),
            Setting::CpuMax(_) => Setting::CpuMax(knobs.cpu_max()?),
            Setting::Cpus(_) => Setting::Cpus(knobs.cpus()?),
            Setting::MemoryMax(_) => Setting::MemoryMax(knobs.memory_max()?),
            Setting::MemoryHigh(_) => Setting::MemoryHigh(knobs.memory_high()?),
            Setting::SwapMax(_) => Setting::SwapMax(knobs.swap_max()?),
            Setting::Io(device, _) => Setting::Io(*device, io_rule(knobs, *device)?),
            Setting::PidsMax(_) => Setting::PidsMax(knobs.pids_max()?),
        })
    }

    fn write<K: Knobs + ?Sized>(&self, knobs: &K) -> io::Result<()> {
        match self {
            Setting::CpuWeight(weight) => knobs.set_cpu_weight(*weight),
            Setting::CpuMax(max) => knobs.set_cpu_max(*max),
            Setting::Cpus(list) => knobs.set_cpus(list),
            Setting::MemoryMax(bytes) => knobs.set_memory_max(*bytes),
            Setting::MemoryHigh(bytes) => knobs.set_memory_high(*bytes),
            Setting::SwapMax(bytes) => knobs.set_swap_max(*bytes),
            Setting::Io(device, rule) => knobs.set_io_rule(*device, *rule),
            Setting::PidsMax(max) => knobs.set_pids_max(*max),
        }
    }

    /// Whether a failed write is a disk that went away, or that takes no throttling (some
    /// virtual devices): such a disk is left out.
    fn no_such_disk(&self, error: &io::Error) -> bool {
        matches!(self, Setting::Io(..)) && error.raw_os_error() == Some(libc::ENODEV)
    }
}

/// A disk's rule; the default (none) where it has none.
fn io_rule<K: Knobs + ?Sized>(knobs: &K, device: Device) -> io::Result<IoRule> {
    Ok(knobs
        .io_rules()?
        .into_iter()
        .find(|(d, _)| *d == device)
        .map(|(_, rule)| rule)
        .unwrap_or_default())
}

/// Makes `changes` (each limit at most once), all or nothing.
pub(crate) fn apply<K: Knobs + ?Sized>(knobs: &K, changes: &[Change]) -> Result<(), Failure> {
    let steps = changes
        .iter()
        .map(|change| {
            change.step(knobs).map_err(|error| Failure {
                knob: change.knob(),
                refused: None,
                error,
                unrestored: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (at, step) in steps.iter().enumerate() {
        if step.after == step.before {
            continue;
        }
        match step.after.write(knobs) {
            Ok(()) => {}
            Err(error) if step.after.no_such_disk(&error) => {}
            Err(error) => {
                return Err(Failure {
                    knob: step.after.knob(),
                    refused: Some(step.after.clone()),
                    error,
                    unrestored: restore(knobs, &steps[..=at]),
                });
            }
        }
    }
    Ok(())
}

/// Puts back, last first, every limit of `steps` that is not as it was read; returns the first
/// that could not be.
fn restore<K: Knobs + ?Sized>(knobs: &K, steps: &[Step]) -> Option<(Knob, io::Error)> {
    let mut failed = None;
    for Step { before, after } in steps.iter().rev() {
        if after == before || before.reread(knobs).is_ok_and(|now| now == *before) {
            continue;
        }
        if let Err(error) = before.write(knobs) {
            failed.get_or_insert((before.knob(), error));
        }
    }
    failed
}

/// The changes of a CPU limit (`None`: none): setting one kind clears the other. A rate is
/// for a host of `cpus` CPUs.
pub(crate) fn cpu(limit: Option<CpuLimit>, cpus: u32) -> Vec<Change> {
    match limit {
        Some(CpuLimit::Weight(weight)) => {
            vec![Change::CpuQuota(None), Change::CpuWeight(Some(weight))]
        }
        Some(CpuLimit::Rate(rate)) => vec![
            Change::CpuWeight(None),
            Change::CpuQuota(Some(rate_to_quota(rate, cpus))),
        ],
        None => vec![Change::CpuQuota(None), Change::CpuWeight(None)],
    }
}

/// The same bandwidth and IOPS change on every disk of `disks`.
pub(crate) fn io(disks: &[Device], bps: IoChange, iops: IoChange) -> Vec<Change> {
    disks
        .iter()
        .map(|&device| Change::Io { device, bps, iops })
        .collect()
}

/// A [`Limit`] as a change: `None` keeps, `Some(None)` removes.
fn change<T>(limit: Limit<T>) -> Option<Option<T>> {
    match limit {
        Limit::Keep => None,
        Limit::Set(value) => Some(Some(value)),
        Limit::Clear => Some(None),
    }
}

/// The changes `limits` (checked already) asks for, with I/O limits on `disks`, for a host
/// of `cpus` CPUs.
pub(crate) fn resources(limits: &JobLimits, disks: &[Device], cpus: u32) -> Vec<Change> {
    let mut changes = Vec::new();
    if let Some(bytes) = change(limits.memory) {
        changes.push(Change::Memory(bytes));
    }
    if let Some(bytes) = change(limits.memory_high) {
        changes.push(Change::MemoryHigh(bytes));
    }
    if let Some(bytes) = change(limits.swap) {
        changes.push(Change::Swap(bytes));
    }
    if let Some(count) = change(limits.max_processes) {
        changes.push(Change::Processes(count));
    }
    let (bps, iops) = (change(limits.io_bandwidth), change(limits.io_iops));
    if bps.is_some() || iops.is_some() {
        changes.extend(io(disks, bps, iops));
    }
    if let Some(limit) = change(limits.cpu) {
        changes.extend(cpu(limit, cpus));
    }
    // The affinity last, so that nothing after it can fail and need it undone: some kernels
    // cannot (on v2 they refuse, with ENOSPC, to empty again the `cpuset.cpus` of a cgroup that
    // holds processes; later ones keep that rule for v1 only).
    if let Some(mask) = change(limits.cpu_affinity) {
        changes.push(Change::Cpus(mask.map(crate::cpu_list::format)));
    }
    changes
}

#[cfg(test)]
mod tests;
