//! Limits read back: each setter's value is what its getter returns, `None` clears it,
//! setting one leaves the others, and invalid values are refused before anything changes.
//! That the kernel enforces them is proven per platform (`tests/limits.rs`, `tests/windows.rs`).
//! Wine implements no limits: there each test checks that the library says so.

use jobobject::{CpuLimit, CpuSet, Error, JobLimits, JobObject};

use crate::common::*;

const MIB: u64 = 1 << 20;

fn assert_unsupported<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::Unsupported { .. })),
        "{what}: {result:?} (expected Unsupported)"
    );
}

fn assert_invalid(what: &str, result: Result<(), Error>) {
    assert!(
        matches!(result, Err(Error::InvalidArgument { .. })),
        "{what}: {result:?} (expected InvalidArgument)"
    );
}

/// A fresh job has no limits.
fn assert_unlimited(job: &JobObject) {
    assert_eq!(job.memory_limit().unwrap(), None);
    assert_eq!(job.max_processes().unwrap(), None);
    assert_eq!(job.cpu_affinity().unwrap(), None);
    assert_eq!(job.cpu_limit().unwrap(), None);
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
}

#[test]
fn cpu_limits_read_back() {
    if !require_jobs("cpu_limits_read_back") {
        return;
    }
    let job = create(&options("cpu-read-back"));
    assert_unlimited(&job);
    if !limits_implemented("cpu_limits_read_back") {
        assert_unsupported("weight", job.set_cpu_limit(Some(CpuLimit::Weight(7))));
        assert_unsupported("rate", job.set_cpu_limit(Some(CpuLimit::Rate(2500))));
        // A limit the system cannot hold reads as none.
        assert_eq!(job.cpu_limit().unwrap(), None);
        return;
    }
    // 5 is the default weight, which some platforms store as no limit: it is left out.
    for weight in [1, 2, 3, 4, 6, 7, 8, 9] {
        job.set_cpu_limit(Some(CpuLimit::Weight(weight))).unwrap();
        assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(weight)));
    }
    // One kind replaces the other: never both.
    for rate in [100, 2500, 5000, 10_000] {
        job.set_cpu_limit(Some(CpuLimit::Rate(rate))).unwrap();
        assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(rate)));
    }
    job.set_cpu_limit(Some(CpuLimit::Weight(3))).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(3)));
    job.set_cpu_limit(None).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), None);
}

#[test]
fn memory_process_and_affinity_limits_read_back() {
    if !require_jobs("memory_process_and_affinity_limits_read_back") {
        return;
    }
    let job = create(&options("memory-read-back"));
    if !limits_implemented("memory_process_and_affinity_limits_read_back") {
        // Wine accepts these limits but stores none: the library must not claim them.
        assert_unsupported("memory", job.set_memory_limit(Some(64 * MIB)));
        assert_unsupported("processes", job.set_max_processes(Some(2)));
        assert_unsupported("affinity", job.set_cpu_affinity(Some(1)));
        assert_unlimited(&job);
        return;
    }
    job.set_memory_limit(Some(64 * MIB)).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(64 * MIB));
    job.set_max_processes(Some(50)).unwrap();
    assert_eq!(job.max_processes().unwrap(), Some(50));
    job.set_cpu_affinity(Some(0b1)).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));

    job.set_memory_limit(None).unwrap();
    assert_eq!(job.memory_limit().unwrap(), None);
    assert_eq!(
        job.max_processes().unwrap(),
        Some(50),
        "clearing one cleared another"
    );
    job.set_max_processes(None).unwrap();
    assert_eq!(job.max_processes().unwrap(), None);
    job.set_cpu_affinity(None).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), None);
}

#[test]
fn io_limits_read_back() {
    if !require_jobs("io_limits_read_back") {
        return;
    }
    let job = create(&options("io-read-back"));
    if !limits_implemented("io_limits_read_back") {
        assert_unsupported("io", job.set_io_limit(Some(10 * MIB), Some(500)));
        assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
        assert_eq!(job.io_max_iops_limit().unwrap(), None);
        return;
    }
    job.set_io_limit(Some(3 * MIB), Some(70)).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(3 * MIB));
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(70));
    job.set_io_limit(None, Some(80)).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(80));
    job.set_io_limit(None, None).unwrap();
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
}

/// `set_resource_limits` changes the fields it sets, keeps the others, and a later call of
/// it or of a single setter keeps what an earlier one set.
#[test]
fn resource_limits_set_together_are_all_kept() {
    if !require_jobs("resource_limits_set_together_are_all_kept") {
        return;
    }
    let job = create(&options("resource-limits"));
    let limits = JobLimits::new().memory(256 * MIB).max_processes(8);
    if !limits_implemented("resource_limits_set_together_are_all_kept") {
        assert_unsupported("memory and processes", job.set_resource_limits(&limits));
        let io = JobLimits::new().memory(256 * MIB).io_bandwidth(MIB);
        assert_unsupported("with I/O", job.set_resource_limits(&io));
        assert_unlimited(&job);
        return;
    }
    job.set_resource_limits(&limits).unwrap();
    assert_eq!(job.memory_limit().unwrap(), Some(256 * MIB));
    assert_eq!(job.max_processes().unwrap(), Some(8));
    job.set_resource_limits(&JobLimits::new().cpu(CpuLimit::Weight(7)))
        .unwrap();
    job.set_max_processes(Some(20)).unwrap();
    assert_eq!(
        job.memory_limit().unwrap(),
        Some(256 * MIB),
        "a kept field changed"
    );
    assert_eq!(job.max_processes().unwrap(), Some(20));
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(7)));

    let all = JobLimits::new()
        .cpu(CpuLimit::Rate(5000))
        .cpu_affinity(0b1)
        .memory(96 * MIB)
        .io_bandwidth(7 * MIB)
        .max_processes(30);
    job.set_resource_limits(&all).unwrap();
    assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Rate(5000)));
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));
    assert_eq!(job.memory_limit().unwrap(), Some(96 * MIB));
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(7 * MIB));
    assert_eq!(job.max_processes().unwrap(), Some(30));
}

/// Values no platform accepts are `InvalidArgument`, alone or among valid ones, and change
/// nothing (checked before anything is applied, on every platform).
#[test]
fn invalid_values_are_refused_and_change_nothing() {
    if !require_jobs("invalid_values_are_refused_and_change_nothing") {
        return;
    }
    let job = create(&options("invalid"));
    let implemented = limits_implemented("invalid_values_are_refused_and_change_nothing");
    if implemented {
        job.set_memory_limit(Some(80 * MIB)).unwrap();
        job.set_cpu_limit(Some(CpuLimit::Weight(4))).unwrap();
    }
    assert_invalid("weight 0", job.set_cpu_limit(Some(CpuLimit::Weight(0))));
    assert_invalid("weight 10", job.set_cpu_limit(Some(CpuLimit::Weight(10))));
    assert_invalid("rate 0", job.set_cpu_limit(Some(CpuLimit::Rate(0))));
    assert_invalid(
        "rate 10001",
        job.set_cpu_limit(Some(CpuLimit::Rate(10_001))),
    );
    assert_invalid("affinity 0", job.set_cpu_affinity(Some(0)));
    assert_invalid("bandwidth 0", job.set_io_limit(Some(0), None));
    assert_invalid("IOPS 0", job.set_io_limit(None, Some(0)));
    assert_invalid("memory 0", job.set_memory_limit(Some(0)));
    assert_invalid("process limit 0", job.set_max_processes(Some(0)));
    for bad in [
        JobLimits::new().cpu(CpuLimit::Weight(10)).memory(40 * MIB),
        JobLimits::new().cpu(CpuLimit::Rate(0)).memory(40 * MIB),
        JobLimits::new().io_iops(0).memory(40 * MIB),
        JobLimits::new().cpu_affinity(0).max_processes(3),
    ] {
        assert_invalid(&format!("{bad:?}"), job.set_resource_limits(&bad));
    }
    if implemented {
        assert_eq!(job.memory_limit().unwrap(), Some(80 * MIB));
        assert_eq!(job.cpu_limit().unwrap(), Some(CpuLimit::Weight(4)));
        assert_eq!(job.max_processes().unwrap(), None);
        assert_eq!(job.io_max_iops_limit().unwrap(), None);
    } else {
        assert_unlimited(&job);
    }
}

/// CPU sets of any size: an empty one, and CPUs the host lacks (named as a CPU list), are
/// refused on every platform; where affinity is implemented, a set of CPU 0 reads back.
#[test]
fn cpu_sets_are_checked_and_read_back() {
    if !require_jobs("cpu_sets_are_checked_and_read_back") {
        return;
    }
    let job = create(&anonymous_options());
    let err = job.set_cpu_set(Some(&CpuSet::new())).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let huge: CpuSet = "0-4095".parse().unwrap();
    let err = job.set_cpu_set(Some(&huge)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("4095"), "{err}");
    let first: CpuSet = "0".parse().unwrap();
    if limits_implemented("cpu_sets_are_checked_and_read_back") {
        job.set_cpu_set(Some(&first)).unwrap();
        assert_eq!(job.cpu_set().unwrap(), Some(first));
        job.set_cpu_set(None).unwrap();
        assert_eq!(job.cpu_set().unwrap(), None);
    } else {
        let err = job.set_cpu_set(Some(&first)).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert_eq!(job.cpu_set().unwrap(), None);
    }
}

/// Every getter of a fresh job's limits says "none", on every platform: a limit that was never
/// set reads as unset, also where the system cannot hold it (a soft memory limit on Windows or
/// cgroup v1, CPU rate and I/O controls under Wine), and only setters say `Unsupported`.
#[test]
fn a_fresh_jobs_getters_all_say_unset() {
    if !require_jobs("a_fresh_jobs_getters_all_say_unset") {
        return;
    }
    let job = create(&anonymous_options());
    let read = [
        ("cpu_limit", format!("{:?}", job.cpu_limit())),
        ("cpu_affinity", format!("{:?}", job.cpu_affinity())),
        ("cpu_set", format!("{:?}", job.cpu_set())),
        ("memory_limit", format!("{:?}", job.memory_limit())),
        ("memory_high", format!("{:?}", job.memory_high())),
        ("swap_limit", format!("{:?}", job.swap_limit())),
        ("max_processes", format!("{:?}", job.max_processes())),
        (
            "io_max_bandwidth_limit",
            format!("{:?}", job.io_max_bandwidth_limit()),
        ),
        (
            "io_max_iops_limit",
            format!("{:?}", job.io_max_iops_limit()),
        ),
        ("oom_group_kill", format!("{:?}", job.oom_group_kill())),
    ];
    let wrong: Vec<_> = read
        .iter()
        .filter(|(_, value)| value != "Ok(None)" && value != "Ok(false)")
        .collect();
    assert!(wrong.is_empty(), "getters that do not say unset: {wrong:?}");
}
