//! The rival: cgroups-rs 0.5 doing the same lifecycle as its users do it (a cgroup in each of
//! its hierarchies, the limits through its controllers, the child joining in a `pre_exec`
//! hook, `delete`), below this process's own cgroups in each hierarchy.

use std::collections::HashMap;

use cgroups_rs::CgroupPid;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, MaxValue, hierarchies};

use super::*;

/// This process's own cgroup in each v1 hierarchy that is not the root, by controller: where
/// cgroups-rs must make its cgroups (it takes one relative path for all hierarchies).
pub(super) fn own_relative_paths() -> HashMap<String, String> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut paths = HashMap::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if path != "/" {
            for controller in controllers.split(',').filter(|c| !c.is_empty()) {
                paths.insert(controller.to_owned(), path.to_owned());
            }
        }
    }
    paths
}

/// Create, memory/CPU/process limits, spawn `/bin/true` joining in `pre_exec`, wait, delete.
pub(super) fn cgroups_rs_lifecycle(relative: &HashMap<String, String>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = bench_name(&format!(
        "cgroups-rs-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let cgroup = Cgroup::new_with_relative_paths(hierarchies::auto(), &name, relative.clone())
        .expect("cgroups-rs: create");
    let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if let Some(memory) = cgroup.controller_of::<MemController>() {
        memory
            .set_limit(256 << 20)
            .expect("cgroups-rs: memory limit");
    }
    if let Some(cpu) = cgroup.controller_of::<CpuController>() {
        cpu.set_cfs_quota_and_period(Some(100_000 * cpus / 2), Some(100_000))
            .expect("cgroups-rs: CPU limit");
    }
    if let Some(pids) = cgroup.controller_of::<PidController>() {
        pids.set_pid_max(MaxValue::Value(64))
            .expect("cgroups-rs: process limit");
    }
    let joining = Cgroup::load_with_relative_paths(hierarchies::auto(), &name, relative.clone());
    let mut command = Command::new(TRUE);
    // SAFETY: the child is single-threaded after the fork; the hook writes its pid to the
    // cgroups' files, as cgroups-rs users do (it allocates, which the fork path tolerates).
    unsafe {
        command.pre_exec(move || {
            joining
                .add_task_by_tgid(CgroupPid::from(std::process::id() as u64))
                .map_err(io::Error::other)
        })
    };
    let status = command.spawn().unwrap().wait().unwrap();
    assert!(status.success());
    drop(command);
    // A cgroup whose last process has just exited can still be busy for a moment (cgroups-rs
    // retries that on v1 itself, not on v2).
    let started = Instant::now();
    while let Err(err) = cgroup.delete() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "cgroups-rs: delete: {err}"
        );
        thread::sleep(Duration::from_micros(100));
    }
}
