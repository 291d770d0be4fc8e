//! Limits, proven by the kernel enforcing them: memory (OOM kill and its notification), CPU
//! rate and weight, affinity, the process limit, and I/O bandwidth and IOPS. Values refused or
//! held in part are in `tests/limit_values.rs`; the round trips in `tests/contract/limits.rs`.

#![cfg(target_os = "linux")]

mod common;
mod workload;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Reap, TIMEOUT, Watcher, create, create_arc, options, require_cgroups, wait_for};
use jobobject::{CpuLimit, JobObject, Notification};

const MIB: u64 = 1 << 20;

/// Not a test: the workload program (see `workload`).
#[test]
#[ignore = "workload program of the limit tests"]
fn workload() {
    workload::run_from_env();
}

fn host_cpus() -> u32 {
    thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Waits for the next notification that is `wanted`, skipping others.
fn wait_notification(watcher: &Watcher, wanted: Notification) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (message, _) = watcher.next(left);
        if message == wanted {
            return;
        }
    }
}

/// CPU time the job used while `work` ran, over the wall time it took.
fn cpu_share(job: &JobObject, wall: Duration) -> f64 {
    let before = job.processor_stats().unwrap();
    let start = Instant::now();
    thread::sleep(wall);
    let after = job.processor_stats().unwrap();
    let used = (after.user_time + after.kernel_time) - (before.user_time + before.kernel_time);
    used.as_secs_f64() / start.elapsed().as_secs_f64()
}

fn spin() -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", "while :; do :; done"]);
    command
}

#[test]
fn memory_limit_kills_and_notifies_and_spares_a_small_process() {
    if !require_cgroups("memory_limit_kills_and_notifies_and_spares_a_small_process") {
        return;
    }
    let job = create_arc(&options("oom").notifications(true));
    job.set_memory_limit(Some(100 * MIB)).unwrap();
    let watcher = Watcher::start(&job);
    let mut hogs: Vec<Reap> = (0..5)
        .map(|_| {
            let mut command = workload::command(&format!("hog {} 600000", 30 * MIB));
            command.stdout(Stdio::null());
            Reap::new(job.spawn(&mut command).unwrap())
        })
        .collect();
    wait_notification(&watcher, Notification::OutOfMemoryKill);
    wait_for("a hog killed by SIGKILL", TIMEOUT, || {
        hogs.iter_mut().any(|hog| {
            hog.child()
                .try_wait()
                .unwrap()
                .is_some_and(|status| status.signal() == Some(9))
        })
    });
    job.terminate(1).unwrap();
    drop(watcher);

    let small = create(&options("oom-small"));
    small.set_memory_limit(Some(100 * MIB)).unwrap();
    let mut command = workload::command(&format!("hog {} 200", 20 * MIB));
    command.stdout(Stdio::piped());
    let output = small
        .spawn(&mut command)
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(
        output.status.success(),
        "the 20 MiB process failed: {:?}",
        output.status
    );
    assert!(workload::ready(&String::from_utf8_lossy(&output.stdout)));
}

#[test]
fn cpu_rate_holds_two_busy_processes_to_the_rate() {
    if !require_cgroups("cpu_rate_holds_two_busy_processes_to_the_rate") {
        return;
    }
    let job = create(&options("cpu-rate"));
    // A quarter of the machine's CPUs.
    job.set_cpu_limit(Some(CpuLimit::Rate(2500))).unwrap();
    let _a = Reap::new(job.spawn(&mut spin()).unwrap());
    let _b = Reap::new(job.spawn(&mut spin()).unwrap());
    let share = cpu_share(&job, Duration::from_secs(3));
    let expected = 0.25 * f64::from(host_cpus());
    assert!(
        share > expected * 0.5 && share < expected * 1.5,
        "two busy processes under rate 2500 used {share:.2} CPUs, expected about {expected:.2}"
    );
    job.terminate(1).unwrap();
}

#[test]
fn cpu_weight_nine_beats_weight_one_on_one_cpu() {
    if !require_cgroups("cpu_weight_nine_beats_weight_one_on_one_cpu") {
        return;
    }
    let heavy = create(&options("weight-9"));
    let light = create(&options("weight-1"));
    for (job, weight) in [(&heavy, 9), (&light, 1)] {
        job.set_cpu_affinity(Some(0b1)).unwrap();
        job.set_cpu_limit(Some(CpuLimit::Weight(weight))).unwrap();
    }
    let _a = Reap::new(heavy.spawn(&mut spin()).unwrap());
    let _b = Reap::new(light.spawn(&mut spin()).unwrap());
    thread::sleep(Duration::from_millis(500));
    let times = |job: &JobObject| {
        let stats = job.processor_stats().unwrap();
        stats.user_time + stats.kernel_time
    };
    let (heavy0, light0) = (times(&heavy), times(&light));
    thread::sleep(Duration::from_secs(3));
    let heavy_used = times(&heavy) - heavy0;
    let light_used = times(&light) - light0;
    assert!(
        heavy_used > light_used * 3,
        "weight 9 got {heavy_used:?} of CPU 0, weight 1 got {light_used:?}"
    );
    heavy.terminate(1).unwrap();
    light.terminate(1).unwrap();
}

fn cpus_allowed_of_child(job: &JobObject) -> String {
    let mut command = Command::new("grep");
    command
        .args(["Cpus_allowed_list", "/proc/self/status"])
        .stdout(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.split(':').nth(1).unwrap_or_default().trim().to_owned()
}

#[test]
fn affinity_applies_to_a_spawned_child() {
    if !require_cgroups("affinity_applies_to_a_spawned_child") {
        return;
    }
    let job = create(&options("affinity"));
    job.set_cpu_affinity(Some(0b1)).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), Some(0b1));
    assert_eq!(cpus_allowed_of_child(&job), "0");
    if host_cpus() >= 2 {
        // The Go package's round trip.
        job.set_cpu_affinity(Some(0x3)).unwrap();
        // Every CPU the parent allows is no restriction at all.
        let expected = (host_cpus() > 2).then_some(0x3);
        assert_eq!(job.cpu_affinity().unwrap(), expected);
        assert_eq!(cpus_allowed_of_child(&job), "0-1");
    }
    job.set_cpu_affinity(None).unwrap();
    assert_eq!(job.cpu_affinity().unwrap(), None);
    let all = format!("0-{}", host_cpus() - 1);
    assert_eq!(
        cpus_allowed_of_child(&job),
        if host_cpus() == 1 { "0".into() } else { all }
    );
}

#[test]
fn process_limit_refuses_the_eleventh_and_notifies() {
    if !require_cgroups("process_limit_refuses_the_eleventh_and_notifies") {
        return;
    }
    let job = create_arc(&options("pids").notifications(true));
    job.set_max_processes(Some(10)).unwrap();
    assert_eq!(job.max_processes().unwrap(), Some(10));
    let watcher = Watcher::start(&job);
    // The shell and nine sleeps make ten; the tenth fork, the eleventh process, fails.
    // The sleeps must not hold the stderr pipe open.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 600 >/dev/null 2>&1 & done; wait";
    let mut command = Command::new("sh");
    command.args(["-c", script]).stderr(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    assert!(!output.status.success(), "the shell's fork never failed");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("fork"),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_notification(&watcher, Notification::ActiveProcessLimit);
    assert_eq!(job.pids().unwrap().len(), 9, "the nine sleeps");
    // The counters say so too: ten at most, and at least one fork refused.
    let stats = job.processor_stats().unwrap();
    assert!(stats.process_limit_refusals.unwrap() >= 1, "{stats:?}");
    if let Some(peak) = stats.peak_processes {
        assert_eq!(peak, 10, "{stats:?}");
    }
    job.terminate(1).unwrap();
}

/// Where O_DIRECT writes hit a real, throttled disk: `JOBOBJECT_TEST_IO_PATH` (the guest's
/// spare disk), else a file in the temporary directory when it is on a block device.
fn io_target(test: &str) -> Option<String> {
    if let Ok(path) = std::env::var("JOBOBJECT_TEST_IO_PATH") {
        return Some(path);
    }
    let dir = std::env::temp_dir();
    let on_disk = rustix::fs::stat(&dir).is_ok_and(|s| rustix::fs::major(s.st_dev) != 0);
    if on_disk {
        return Some(
            dir.join(format!("jobobject-io-{test}-{}", std::process::id()))
                .display()
                .to_string(),
        );
    }
    let reason = format!(
        "{} is not on a block device; set JOBOBJECT_TEST_IO_PATH",
        dir.display()
    );
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
    None
}

/// Writes `count` blocks of `block` bytes with O_DIRECT inside the job; returns the time.
fn direct_write(job: &JobObject, target: &str, block: &str, count: u32) -> Duration {
    let start = Instant::now();
    let mut command = Command::new("dd");
    command
        .args([
            "if=/dev/zero",
            &format!("of={target}"),
            &format!("bs={block}"),
        ])
        .args([&format!("count={count}"), "oflag=direct", "conv=notrunc"])
        .stderr(Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed()
}

fn remove_target(target: &str) {
    if !target.starts_with("/dev/") {
        std::fs::remove_file(target).ok();
    }
}

#[test]
fn io_bandwidth_and_iops_are_enforced() {
    let test = "io_bandwidth_and_iops_are_enforced";
    if !require_cgroups(test) {
        return;
    }
    let Some(target) = io_target(test) else {
        return;
    };
    let job = create(&options("io"));
    job.set_io_limit(Some(5 * MIB), None).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), Some(5 * MIB));
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
    let took = direct_write(&job, &target, "1M", 20);
    assert!(
        took >= Duration::from_millis(2500) && took < TIMEOUT,
        "20 MiB under 5 MiB/s took {took:?}, expected about 4 s"
    );

    job.set_io_limit(None, Some(50)).unwrap();
    assert_eq!(job.io_max_bandwidth_limit().unwrap(), None);
    assert_eq!(job.io_max_iops_limit().unwrap(), Some(50));
    let took = direct_write(&job, &target, "4k", 200);
    assert!(
        took >= Duration::from_millis(2500) && took < TIMEOUT,
        "200 writes under 50 IOPS took {took:?}, expected about 4 s"
    );
    job.set_io_limit(None, None).unwrap();
    assert_eq!(job.io_max_iops_limit().unwrap(), None);
    remove_target(&target);
}

/// A CPU set holds the job's processes to its CPUs (the kernel's `Cpus_allowed_list` of a
/// process says so), reads back as a set and as the mask of the first 64; CPUs the host
/// lacks are refused naming them; clearing lets the job run anywhere.
#[test]
fn a_cpu_set_holds_processes_to_its_cpus() {
    if !require_cgroups("a_cpu_set_holds_processes_to_its_cpus") {
        return;
    }
    let job = create(&options("cpu-set"));
    let last = host_cpus() - 1;
    let set: jobobject::CpuSet = last.to_string().parse().unwrap();
    job.set_cpu_set(Some(&set)).unwrap();
    assert_eq!(job.cpu_set().unwrap(), Some(set.clone()));
    assert_eq!(job.cpu_affinity().unwrap(), Some(1 << last));
    let mut sleeper = Command::new("sleep");
    sleeper.arg("100");
    let child = Reap::new(job.spawn(&mut sleeper).unwrap());
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid)).unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    assert_eq!(allowed, set.to_string(), "the kernel lets it run elsewhere");

    let beyond: jobobject::CpuSet = format!("0,{}-4095", host_cpus()).parse().unwrap();
    let err = job.set_cpu_set(Some(&beyond)).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("does not have: {}-4095", host_cpus())),
        "{err}"
    );
    assert_eq!(
        job.cpu_set().unwrap(),
        Some(set),
        "a refusal changed the set"
    );
    // Cleared once empty: some v2 kernels (the guests' 6.1) refuse (ENOSPC) to empty the
    // cpuset.cpus of a cgroup that holds processes.
    job.terminate(1).unwrap();
    drop(child);
    common::wait_empty(&job, TIMEOUT);
    job.set_cpu_set(None).unwrap();
    assert_eq!(job.cpu_set().unwrap(), None);
}
