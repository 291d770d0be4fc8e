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
