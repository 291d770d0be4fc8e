//! Which names a job may have in a cgroup hierarchy, and the names of anonymous jobs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// The prefixes of cgroup interface files: `cgroup.` and each controller's name, v1 and v2
/// (`memory.max`, `cpu.pressure`, `hugetlb.2MB.max`, ...).
const INTERFACE_PREFIXES: &[&str] = &[
    "cgroup",
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "io",
    "blkio",
    "pids",
    "freezer",
    "devices",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
    "dmem",
    "irq",
    "debug",
];
/// The v1 interface files without a prefix.
const INTERFACE_FILES: &[&str] = &["tasks", "notify_on_release", "release_agent"];

/// Checks a job name: the portable rules, and no name that a cgroup interface file has or may
/// have (a job named `memory.max` or `tasks` would collide with that file of its parent).
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    crate::name::check(name)?;
    let interface = match name.split_once('.') {
        Some((stem, _)) => INTERFACE_PREFIXES.contains(&stem),
        None => INTERFACE_FILES.contains(&name),
    };
    if interface {
        return Err(Error::invalid(format!(
            "a job name may not be that of a cgroup interface file (got {name:?}): the names \
             {} and those starting with `cgroup.` or a controller's name and `.` ({}) are \
             reserved",
            INTERFACE_FILES.join(", "),
            INTERFACE_PREFIXES[1..].join(", ")
        )));
    }
    Ok(())
}

/// A name that a file of the parent cgroup has: an interface file of a controller this crate
/// does not know yet.
pub(super) fn interface_file(name: &str, path: &Path) -> Error {
    Error::invalid(format!(
        "a job name may not be that of a cgroup interface file (got {name:?}: {} is a file)",
        path.display()
    ))
}

/// A name for an anonymous job, unique in this process and, with its pid, among processes.
pub(super) fn anonymous_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("anon-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a", "build-42", "x.y", "memory", "cpu", "tasks-2", "cpux.max",
        ] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a/b",
            ".hidden",
            "esc\x1b[2J",
            "cgroup.procs",
            "cgroup.kill",
            "tasks",
            "notify_on_release",
            "release_agent",
            "memory.max",
            "memory.oom_control",
            "cpu.pressure",
            "cpuset.cpus",
            "pids.max",
            "io.max",
            "hugetlb.2MB.max",
            "freezer.state",
        ] {
            assert!(
                matches!(check_name(bad), Err(Error::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_are_no_interface_file(name in "[a-z_]{1,12}(\\.[a-z0-9_.]{0,12})?") {
            if check_name(&name).is_ok() {
                let stem = name.split('.').next().unwrap_or_default();
                proptest::prop_assert!(!name.contains('.') || !INTERFACE_PREFIXES.contains(&stem));
                proptest::prop_assert!(!INTERFACE_FILES.contains(&name.as_str()));
            }
        }
    }
}
