//! A job costs what it uses: on a v1 or hybrid host it gets a directory in the cpuset and
//! blkio hierarchies only once it needs one (CPU affinity; I/O limits or tracking), and on
//! hybrid none in cpuacct or freezer, whose work the v2 hierarchy does. A directory made while
//! the job runs takes in every process of the job, also while they fork; one made by another
//! process that has the job open is picked up by the next spawn; all go with the job.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::*;
use jobobject::os::linux::{CgroupLayout, JobObjectExt, OptionsExt};
use jobobject::{JobObject, Options};

/// The hierarchy used on demand (cpuset, blkio) that carries `controller`, for `test`; `None`
/// (and a SKIP line) where the test cannot run.
fn require_on_demand(test: &str, controller: &str) -> Option<OwnCgroup> {
    if !require_cgroups(test) {
        return None;
    }
    let found = own_cgroups()
        .into_iter()
        .find(|c| c.on_demand && c.controllers.iter().any(|k| k == controller));
    if found.is_none() {
        println!("SKIP {test}: no v1 {controller} hierarchy of its own");
    }
    found
}

/// A new job has a directory in the v2 hierarchy and the v1 ones of memory, cpu and pids
/// (plus cpuacct and freezer where there is no v2), and none elsewhere.
#[test]
fn a_new_job_has_only_the_directories_it_uses() {
    if !require_cgroups("a_new_job_has_only_the_directories_it_uses") {
        return;
    }
    let job = create(&options("costs"));
    let name = job.name().unwrap();
    let paths = job.cgroup_paths().unwrap();
    for own in own_cgroups() {
        let dir = own.dir.join(&name);
        assert_eq!(dir.is_dir(), own.used, "{}", dir.display());
        assert_eq!(paths.contains(&dir), own.used, "{paths:?}");
    }
    if CgroupLayout::detect().unwrap() == CgroupLayout::Hybrid {
        let labels: Vec<String> = used_cgroups().into_iter().map(|c| c.label).collect();
        for served in ["cpuacct", "freezer", "cpuset", "blkio"] {
            assert!(
                !labels.iter().any(|l| l.split(',').all(|c| c == served)),
                "{labels:?}"
            );
        }
    }
    // Reading the limits it has none of makes nothing.
    assert_eq!(job.cpu_affinity().unwrap(), None);
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    job.set_cpu_affinity(None).unwrap();
    job.set_io_limit(None, None).unwrap();
    for own in own_cgroups().iter().filter(|c| c.on_demand) {
        assert!(!own.dir.join(&name).exists(), "{}", own.dir.display());
    }
}

/// Setting an affinity on a running job moves every process of it, and of a tree that keeps
/// forking, into the new cpuset directory: the kernel then holds each to the CPUs.
#[test]
fn affinity_set_on_a_running_job_takes_in_every_process() {
    let Some(cpuset) = require_on_demand(
        "affinity_set_on_a_running_job_takes_in_every_process",
        "cpuset",
    ) else {
        return;
    };
    let job = create(&options("affinity-running"));
    let name = job.name().unwrap();
    // A tree that keeps forking short-lived children, and two long sleeps.
    let script = "sleep 100 & sleep 100 & while :; do /bin/true; done";
    let mut shell = Reap::new(job.spawn(Command::new("sh").args(["-c", script])).unwrap());
    wait_for("the tree to start", TIMEOUT, || {
        job.pids().unwrap().len() >= 3
    });
    job.set_cpu_affinity(Some(0b1)).unwrap();
    assert!(cpuset.dir.join(&name).is_dir());
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));
    for pid in job.pids().unwrap() {
        // A short-lived child may be gone, or dead, by now.
        let (Ok(status), Ok(cgroups)) = (
            std::fs::read_to_string(format!("/proc/{pid}/status")),
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")),
        ) else {
            continue;
        };
        if status
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        {
            continue;
        }
        let lines = parse_proc_cgroup(&cgroups);
        let in_job = |controller: &str| {
            lines
                .iter()
                .find(|l| l.controllers.iter().any(|c| c == controller))
                .is_some_and(|l| l.path.ends_with(&format!("/{name}")))
        };
        if !in_job("memory") {
            continue; // exiting: v1 shows an exiting process in its root cgroups
        }
        assert!(in_job(&cpuset.controllers[0]), "process {pid}: {cgroups}");
        let allowed = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        assert!(allowed.ends_with("\t0"), "process {pid}: {allowed}");
    }
    let child = job.spawn(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .stdout(std::process::Stdio::piped()),
    );
    let text = String::from_utf8(child.unwrap().wait_with_output().unwrap().stdout).unwrap();
    assert_in_job(&text, &name);
    job.terminate(1).unwrap();
    shell.wait();
}

/// Turning on I/O tracking makes the blkio directory; closing the job removes it with the
/// others.
#[test]
fn io_tracking_makes_the_blkio_directory_and_close_removes_it() {
    let Some(blkio) = require_on_demand(
        "io_tracking_makes_the_blkio_directory_and_close_removes_it",
        "blkio",
    ) else {
        return;
    };
    let job = create(&options("io-on-demand"));
    let name = job.name().unwrap();
    let mut sleeper = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());
    job.set_io_tracking().unwrap();
    let procs = std::fs::read_to_string(blkio.dir.join(&name).join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), sleeper.pid.to_string());
    job.storage_stats().unwrap();
    job.terminate(1).unwrap();
    sleeper.wait();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}

/// An observer's handle does not hold the job: its holder may remove the job while the
/// observer turns on I/O tracking. The blkio directory the observer makes then is its to take
/// back: the job is reported gone and no directory is left (`jobctl list` and `top` read
/// every job this way while their owners close them).
#[test]
fn a_directory_made_for_a_job_removed_meanwhile_is_taken_back() {
    let Some(blkio) = require_on_demand(
        "a_directory_made_for_a_job_removed_meanwhile_is_taken_back",
        "blkio",
    ) else {
        return;
    };
    let job = create(&options("on-demand-removed"));
    let name = job.name().unwrap();
    let observer = JobObject::open(&options_named(&name).observer(true)).unwrap();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
    let err = observer.set_io_tracking().unwrap_err();
    assert_eq!(err.kind(), jobobject::ErrorKind::JobNotFound, "{err}");
    assert!(!blkio.dir.join(&name).exists(), "{}", blkio.dir.display());
}

/// The variable that makes this binary the other process of
/// `a_directory_made_by_another_process_is_joined`: it holds the job's name.
const OTHER_ENV: &str = "JOBOBJECT_TEST_ON_DEMAND_JOB";

/// Another process opens the named job and sets an affinity: our next spawn joins the cpuset
/// directory it made (by either spawn path, the builder's having kept its join files from a
/// spawn before), and our close removes it.
#[test]
fn a_directory_made_by_another_process_is_joined() {
    let Some(cpuset) = require_on_demand("a_directory_made_by_another_process_is_joined", "cpuset")
    else {
        return;
    };
    let job = create(&options("on-demand-other"));
    let name = job.name().unwrap();
    let cgroup_of_builder_child = || {
        let mut child = jobobject::process::Command::new("cat")
            .arg("/proc/self/cgroup")
            .stdout(jobobject::process::Stdio::piped())
            .spawn(&job)
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
        assert!(child.wait().unwrap().success());
        text
    };
    assert_in_job(&cgroup_of_builder_child(), &name);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "other_process", "--nocapture", "-q"])
        .env(OTHER_ENV, &name)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(cpuset.dir.join(&name).is_dir());
    let child = job.spawn(
        Command::new("cat")
            .arg("/proc/self/cgroup")
            .stdout(std::process::Stdio::piped()),
    );
    let text = String::from_utf8(child.unwrap().wait_with_output().unwrap().stdout).unwrap();
    assert_in_job(&text, &name);
    assert_in_job(&cgroup_of_builder_child(), &name);
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}

/// In the other process: opens the job named in [`OTHER_ENV`] and sets an affinity.
#[test]
fn other_process() {
    let Ok(name) = std::env::var(OTHER_ENV) else {
        return;
    };
    let job = JobObject::open(&options_named(&name)).unwrap();
    job.set_cpu_affinity(Some(0b1)).unwrap();
}

fn options_named(name: &str) -> Options {
    use jobobject::os::linux::{CgroupParent, OptionsExt};
    Options::new().name(name).cgroup_parent(CgroupParent::Own)
}
