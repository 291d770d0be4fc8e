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
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::ops::RangeFrom;

    use super::*;
    use crate::sys::linux::cgroup::controllers::ACCOUNTING_ONLY_BPS;

    const SDA: Device = Device { major: 8, minor: 0 };
    const VDA: Device = Device {
        major: 254,
        minor: 0,
    };
    /// A disk that takes no throttling.
    const NBD: Device = Device {
        major: 43,
        minor: 0,
    };
    const MIB: u64 = 1 << 20;

    /// A job's limits in kernel terms.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct State {
        weight: u64,
        max: CpuMax,
        cpus: String,
        memory: Option<u64>,
        io: BTreeMap<Device, IoRule>,
        pids: Option<u64>,
    }

    /// A v1-like job with a limit of every kind, and a bandwidth rule on one disk only.
    fn limited() -> State {
        let five = Some(5 * MIB);
        State {
            weight: 2048,
            max: CpuMax {
                quota: Some(60_000),
                period: 100_000,
            },
            cpus: "0-1".into(),
            memory: Some(80 * MIB),
            io: BTreeMap::from([(
                VDA,
                IoRule {
                    rbps: five,
                    wbps: five,
                    riops: None,
                    wiops: None,
                },
            )]),
            pids: Some(20),
        }
    }

    /// A job in memory, whose writes in `failing` (counted from 0) fail after changing part of
    /// their limit, as v1 does.
    struct Fake {
        state: RefCell<State>,
        writes: Cell<usize>,
        failing: Option<RangeFrom<usize>>,
        /// Writes fail only at `failing.start`, not after it (so putting back works).
        once: bool,
        io_unreadable: bool,
    }

    impl Fake {
        fn new(state: State) -> Self {
            Fake {
                state: RefCell::new(state),
                writes: Cell::new(0),
                failing: None,
                once: true,
                io_unreadable: false,
            }
        }

        /// A fake whose `n`-th write fails.
        fn failing_at(state: State, n: usize) -> Self {
            Fake {
                failing: Some(n..),
                ..Fake::new(state)
            }
        }

        fn state(&self) -> State {
            self.state.borrow().clone()
        }

        /// Counts a write; a failing one applies `part` of it first.
        fn write(&self, part: impl FnOnce(&mut State)) -> io::Result<()> {
            let n = self.writes.get();
            self.writes.set(n + 1);
            let fails = match &self.failing {
                Some(failing) if self.once => n == failing.start,
                Some(failing) => failing.contains(&n),
                None => false,
            };
            if fails {
                part(&mut self.state.borrow_mut());
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            Ok(())
        }
    }

    impl Knobs for Fake {
        fn default_cpu_weight(&self) -> u64 {
            1024
        }

        fn cpu_weight(&self) -> io::Result<u64> {
            Ok(self.state.borrow().weight)
        }

        fn set_cpu_weight(&self, weight: u64) -> io::Result<()> {
            self.write(|_| {})?;
            self.state.borrow_mut().weight = weight;
            Ok(())
        }

        fn cpu_max(&self) -> io::Result<CpuMax> {
            Ok(self.state.borrow().max)
        }

        fn set_cpu_max(&self, max: CpuMax) -> io::Result<()> {
            // v1 lifts the quota before it writes a new period.
            self.write(|s| s.max.quota = None)?;
            self.state.borrow_mut().max = max;
            Ok(())
        }

        fn cpus(&self) -> io::Result<String> {
            Ok(self.state.borrow().cpus.clone())
        }

        fn set_cpus(&self, list: &str) -> io::Result<()> {
            self.write(|_| {})?;
            self.state.borrow_mut().cpus = list.to_owned();
            Ok(())
        }

        fn unrestricted_cpus(&self) -> io::Result<String> {
            self.parent_cpus()
        }

        fn parent_cpus(&self) -> io::Result<String> {
            Ok("0-3".into())
        }

        fn memory_max(&self) -> io::Result<Option<u64>> {
            Ok(self.state.borrow().memory)
        }

        fn set_memory_max(&self, bytes: Option<u64>) -> io::Result<()> {
            self.write(|_| {})?;
            self.state.borrow_mut().memory = bytes;
            Ok(())
        }

        fn io_rules(&self) -> io::Result<Vec<(Device, IoRule)>> {
            if self.io_unreadable {
                return Err(io::ErrorKind::PermissionDenied.into());
            }
            Ok(self.state.borrow().io.clone().into_iter().collect())
        }

        fn set_io_rule(&self, device: Device, rule: IoRule) -> io::Result<()> {
            if device == NBD {
                return Err(io::Error::from_raw_os_error(libc::ENODEV));
            }
            // v1 writes the read bandwidth first.
            let set = |s: &mut State, rule: IoRule| {
                if rule == IoRule::default() {
                    s.io.remove(&device);
                } else {
                    s.io.insert(device, rule);
                }
            };
            self.write(|s| {
                let now = s.io.get(&device).copied().unwrap_or_default();
                set(
                    s,
                    IoRule {
                        rbps: rule.rbps,
                        ..now
                    },
                );
            })?;
            set(&mut self.state.borrow_mut(), rule);
            Ok(())
        }

        fn io_rule_for(&self, limit: IoMax) -> IoRule {
            IoRule::new(limit, Some(ACCOUNTING_ONLY_BPS))
        }

        fn pids_max(&self) -> io::Result<Option<u64>> {
            Ok(self.state.borrow().pids)
        }

        fn set_pids_max(&self, max: Option<u64>) -> io::Result<()> {
            self.write(|_| {})?;
            self.state.borrow_mut().pids = max;
            Ok(())
        }
    }

    /// Every call's changes, on a 2-CPU host with two disks.
    fn calls() -> Vec<(&'static str, Vec<Change>)> {
        let disks = [SDA, VDA];
        let all = JobLimits::new()
            .cpu(CpuLimit::Rate(2_000))
            .cpu_affinity(0b1)
            .memory(64 * MIB)
            .io_bandwidth(MIB)
            .io_iops(50)
            .max_processes(10);
        let rate_and_memory = JobLimits::new().cpu(CpuLimit::Rate(2_000)).memory(64 * MIB);
        let weight_and_iops = JobLimits::new().cpu(CpuLimit::Weight(7)).io_iops(70);
        let mut none = JobLimits::new();
        none.cpu = Limit::Clear;
        none.cpu_affinity = Limit::Clear;
        none.memory = Limit::Clear;
        none.max_processes = Limit::Clear;
        vec![
            ("weight", cpu(Some(CpuLimit::Weight(3)), 2)),
            ("rate", cpu(Some(CpuLimit::Rate(2_000)), 2)),
            // Below 1 ms per 100 ms: a new period.
            ("small rate", cpu(Some(CpuLimit::Rate(1)), 2)),
            ("no CPU limit", cpu(None, 2)),
            ("affinity", vec![Change::Cpus(Some("0".into()))]),
            ("no affinity", vec![Change::Cpus(None)]),
            ("memory", vec![Change::Memory(Some(64 * MIB))]),
            ("no memory limit", vec![Change::Memory(None)]),
            ("io", io(&disks, Some(Some(MIB)), Some(Some(50)))),
            ("iops only", io(&disks, None, Some(Some(70)))),
            ("io unlimited", io(&disks, Some(None), Some(None))),
            ("processes", vec![Change::Processes(Some(10))]),
            ("no process limit", vec![Change::Processes(None)]),
            ("all", resources(&all, &disks, 2)),
            ("rate and memory", resources(&rate_and_memory, &disks, 2)),
            ("weight and iops", resources(&weight_and_iops, &disks, 2)),
            ("none", resources(&none, &disks, 2)),
        ]
    }

    /// The number of writes a call makes when nothing fails, and the state it leaves.
    fn unfailed(changes: &[Change]) -> (usize, State) {
        let fake = Fake::new(limited());
        apply(&fake, changes).unwrap();
        (fake.writes.get(), fake.state())
    }

    #[test]
    fn every_call_changes_its_limits() {
        for (call, changes) in calls() {
            let (writes, after) = unfailed(&changes);
            assert!(writes > 0, "{call}: nothing written");
            assert_ne!(after, limited(), "{call}: nothing changed");
            // The same call again finds everything as it wants it.
            let fake = Fake::new(after.clone());
            apply(&fake, &changes).unwrap();
            assert_eq!(fake.writes.get(), 0, "{call}: rewrote equal values");
        }
        let (_, after) = unfailed(&cpu(Some(CpuLimit::Rate(2_000)), 2));
        assert_eq!(after.weight, 1024, "a rate resets the weight");
        assert_eq!(after.max.quota, Some(40_000));
        let (_, after) = unfailed(&cpu(Some(CpuLimit::Weight(3)), 2));
        assert_eq!(
            after.max,
            CpuMax {
                quota: None,
                period: 100_000
            },
            "the period is kept"
        );
        assert_eq!(after.weight, 256);
        let (_, after) = unfailed(&io(&[SDA, VDA], None, Some(Some(70))));
        assert_eq!(
            after.io[&VDA].limit(),
            IoMax {
                bps: Some(5 * MIB),
                iops: Some(70)
            }
        );
        assert_eq!(
            after.io[&SDA].limit(),
            IoMax {
                bps: None,
                iops: Some(70)
            }
        );
    }

    #[test]
    fn a_write_that_fails_leaves_every_limit_as_it_was() {
        for (call, changes) in calls() {
            let (writes, _) = unfailed(&changes);
            for n in 0..writes {
                let fake = Fake::failing_at(limited(), n);
                let failure = apply(&fake, &changes).expect_err(call);
                assert!(failure.refused.is_some(), "{call}, write {n}: {failure:?}");
                assert!(
                    failure.unrestored.is_none(),
                    "{call}, write {n}: {failure:?}"
                );
                assert_eq!(fake.state(), limited(), "{call}: write {n} failed");
            }
        }
    }

    #[test]
    fn a_limit_that_cannot_be_put_back_is_reported() {
        let changes = resources(
            &JobLimits::new().cpu(CpuLimit::Rate(2_000)).memory(64 * MIB),
            &[],
            2,
        );
        // Memory, weight, then the rate: the rate's write and every one after it fail.
        let fake = Fake {
            once: false,
            ..Fake::failing_at(limited(), 2)
        };
        let failure = apply(&fake, &changes).unwrap_err();
        assert_eq!(failure.knob, Knob::CpuRate);
        // The half-written rate cannot be put back, nor can the weight and memory written
        // before it: the first of them tried, the rate, is reported.
        assert_eq!(
            failure.unrestored.map(|(knob, _)| knob),
            Some(Knob::CpuRate)
        );
        assert_ne!(fake.state(), limited());
    }

    #[test]
    fn a_limit_that_cannot_be_read_stops_the_call_before_any_write() {
        let changes = resources(&JobLimits::new().memory(64 * MIB).io_iops(10), &[VDA], 2);
        let fake = Fake {
            io_unreadable: true,
            ..Fake::new(limited())
        };
        let failure = apply(&fake, &changes).unwrap_err();
        assert_eq!((failure.knob, failure.refused), (Knob::Io(VDA), None));
        assert_eq!(fake.writes.get(), 0);
        assert_eq!(fake.state(), limited());
    }

    #[test]
    fn io_accounting_rules_and_disks_without_throttling() {
        // Rewriting the limits as they are gives v1 a rule that never throttles.
        let fake = Fake::new(limited());
        apply(&fake, &io(&[SDA, NBD, VDA], None, None)).unwrap();
        let accounting = IoRule::new(IoMax::default(), Some(ACCOUNTING_ONLY_BPS));
        assert_eq!(fake.state().io[&SDA], accounting);
        assert_eq!(fake.state().io[&SDA].limit(), IoMax::default());
        assert_eq!(fake.state().io[&VDA], limited().io[&VDA]);
        assert!(!fake.state().io.contains_key(&NBD));
    }
}
