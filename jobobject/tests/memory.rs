//! Memory beyond the hard limit, proven by what the kernel does: a process over the soft
//! limit is reclaimed (into swap) and slowed but not killed; the swap limit decides whether a
//! process over its memory limit swaps or dies; with OOM group kill one allocation over the
//! limit kills every process of the job; a kill for a limit above the job is told apart from
//! the job's own; the memory peak can be started again.
//!
//! The soft limit, the swap limit and OOM group kill are cgroup v2's: on a v1 memory
//! controller (hybrid and legacy hosts) each test checks that the library says so. Swap
//! comes from `JOBOBJECT_TEST_SWAP_DEVICE` (the guests of `scripts/guest-test` have one),
//! turned on for one test at a time.
#![cfg(target_os = "linux")]

mod common;
mod workload;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::*;
use jobobject::os::linux::{CgroupLayout, CgroupParent, JobObjectExt, OptionsExt};
use jobobject::{Error, JobObject, Notification};

const MIB: u64 = 1 << 20;

/// Not a test: the workload program (see `workload`).
#[test]
#[ignore = "workload program of the memory tests"]
fn workload() {
    workload::run_from_env();
}

#[test]
fn child_mode() {
    run_child_mode();
}

/// One test at a time: swap is on for some, and must be off for the others.
static SWAP: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SWAP.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Swap, on while it lives.
struct SwapOn(String);

impl SwapOn {
    /// Turns on the test swap device; `None` where there is none (a guest must have one).
    fn start(test: &str) -> Option<SwapOn> {
        let Some(device) = std::env::var("JOBOBJECT_TEST_SWAP_DEVICE").ok() else {
            assert!(
                std::env::var_os("JOBOBJECT_GUEST").is_none(),
                "{test}: the guest has no JOBOBJECT_TEST_SWAP_DEVICE"
            );
            eprintln!("SKIP {test}: no swap device (JOBOBJECT_TEST_SWAP_DEVICE)");
            return None;
        };
        let status = Command::new("swapon").arg(&device).status().unwrap();
        assert!(status.success(), "swapon {device}: {status}");
        Some(SwapOn(device))
    }
}

impl Drop for SwapOn {
    fn drop(&mut self) {
        Command::new("swapoff").arg(&self.0).status().ok();
    }
}

/// Whether jobs here have the v2 memory controller (a pure v2 host); on hybrid and legacy
/// hosts the memory controller is v1.
fn v2_memory() -> bool {
    CgroupLayout::detect().unwrap() == CgroupLayout::Unified
}

/// Checks that `result` is the `Unsupported` of a v2-only memory setting on a v1 host.
fn assert_v1_unsupported(result: jobobject::Result<()>, what: &str) {
    match result {
        Err(err @ Error::Unsupported { .. }) => {
            assert!(err.to_string().contains("cgroup v2"), "{what}: {err}");
            eprintln!("{what}: on a v1 memory controller: {err}");
        }
        other => panic!("{what} on a v1 memory controller: {other:?}"),
    }
}

/// Starts a `hog BYTES HOLD_MS` workload in `job` and waits until it has touched its memory;
/// how long that took, as it says.
fn start_hog(job: &JobObject, bytes: u64, hold_ms: u64) -> (Reap, Duration) {
    let mut command = workload::command(&format!("hog {bytes} {hold_ms}"));
    command.stdout(Stdio::piped());
    let mut child = job.spawn(&mut command).unwrap();
    let took = read_ready(&mut child);
    (Reap::new(child), took)
}

/// Reads `WORKLOAD ready N bytes in DURATION` from the workload's stdout.
fn read_ready(child: &mut Child) -> Duration {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .by_ref()
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("WORKLOAD ready"))
        .expect("the hog never said it was ready");
    // The rest (the test harness's own lines) is read too: a closed pipe would fail the hog.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let took = line.rsplit(" in ").next().unwrap();
    parse_debug_duration(took)
}

/// A `Duration`'s `Debug` text (`1.5s`, `20.1ms`, `300µs`, `12ns`).
fn parse_debug_duration(text: &str) -> Duration {
    let split = text.find(|c: char| c.is_alphabetic() || c == 'µ').unwrap();
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap();
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        other => panic!("unit {other}"),
    };
    Duration::from_secs_f64(seconds)
}

#[test]
fn a_process_over_the_soft_limit_is_reclaimed_and_slowed_not_killed() {
    let test = "a_process_over_the_soft_limit_is_reclaimed_and_slowed_not_killed";
    if !require_cgroups(test) {
        return;
    }
    let _serial = serial();
    let job = create(&options("memory-high"));
    if !v2_memory() {
        assert_v1_unsupported(job.set_memory_high(Some(16 * MIB)), "memory_high");
        assert_eq!(job.memory_high().unwrap(), None);
        // Clearing what cannot be set is nothing to do.
        job.set_memory_high(None).unwrap();
        return;
    }
    job.set_memory_high(Some(16 * MIB)).unwrap();
    assert_eq!(job.memory_high().unwrap(), Some(16 * MIB));
    let Some(_swap) = SwapOn::start(test) else {
        return;
    };
    // The same allocation without a soft limit, for the time it takes.
    let free = create(&options("memory-high-free"));
    let (mut control, free_took) = start_hog(&free, 48 * MIB, 0);
    assert!(control.wait().success());

    let (mut hog, took) = start_hog(&job, 48 * MIB, 3000);
    let stats = job.memory_stats().unwrap();
    let swapped = stats.swap.expect("swap is counted on v2");
    println!(
        "48 MiB under a 16 MiB soft limit: {took:?} (free: {free_took:?}, {:.1}x); in memory \
         {} MiB, in swap {} MiB",
        took.as_secs_f64() / free_took.as_secs_f64(),
        stats.current / MIB,
        swapped / MIB
    );
    assert!(
        stats.current < 32 * MIB,
        "the soft limit left {} MiB in memory",
        stats.current / MIB
    );
    assert!(
        swapped >= 16 * MIB,
        "only {} MiB went to swap",
        swapped / MIB
    );
    assert!(
        took > free_took,
        "the soft limit did not slow the allocation"
    );
    let status = hog.wait();
    assert!(
        status.success(),
        "the soft limit killed the process: {status:?}"
    );
}

#[test]
fn the_swap_limit_decides_whether_a_process_over_its_memory_limit_swaps_or_dies() {
    let test = "the_swap_limit_decides_whether_a_process_over_its_memory_limit_swaps_or_dies";
    if !require_cgroups(test) {
        return;
    }
    let _serial = serial();
    let job = create(&options("swap"));
    job.set_memory_limit(Some(16 * MIB)).unwrap();
    if !v2_memory() {
        assert_v1_unsupported(job.set_swap_limit(Some(0)), "swap limit");
        assert_eq!(job.swap_limit().unwrap(), None);
        // v1 counts swap (memsw) where it has swap accounting: a process over the memory
        // limit, with swap and no memsw limit, swaps.
        let Some(_swap) = SwapOn::start(test) else {
            return;
        };
        let (mut hog, _) = start_hog(&job, 48 * MIB, 2000);
        let swapped = job.memory_stats().unwrap().swap;
        println!("v1: 48 MiB under a 16 MiB limit: in swap {swapped:?}");
        assert!(swapped.is_some_and(|s| s >= 16 * MIB), "{swapped:?}");
        assert!(hog.wait().success());
        return;
    }
    let Some(_swap) = SwapOn::start(test) else {
        return;
    };
    // No swap: over its memory limit, it dies.
    job.set_swap_limit(Some(0)).unwrap();
    assert_eq!(job.swap_limit().unwrap(), Some(0));
    let mut command = workload::command(&format!("hog {} 2000", 48 * MIB));
    command.stdout(Stdio::null());
    let status = job.spawn(&mut command).unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    // Swap allowed: the same process lives, with what does not fit in swap.
    job.set_swap_limit(Some(128 * MIB)).unwrap();
    assert_eq!(job.swap_limit().unwrap(), Some(128 * MIB));
    let (mut hog, _) = start_hog(&job, 48 * MIB, 2000);
    let swapped = job.memory_stats().unwrap().swap.unwrap();
    println!(
        "v2: 48 MiB under a 16 MiB limit and 128 MiB of swap: {} MiB in swap",
        swapped / MIB
    );
    assert!(swapped >= 24 * MIB, "only {} MiB in swap", swapped / MIB);
    assert!(hog.wait().success());
    job.set_swap_limit(None).unwrap();
    assert_eq!(job.swap_limit().unwrap(), None);
}

/// Spawns a child that sleeps for a long time.
fn sleeper(job: &JobObject) -> Reap {
    Reap::new(job.spawn(&mut child("sleep:600000")).unwrap())
}

#[test]
fn with_oom_group_kill_one_allocation_over_the_limit_kills_every_process() {
    let test = "with_oom_group_kill_one_allocation_over_the_limit_kills_every_process";
    if !require_cgroups(test) {
        return;
    }
    let _serial = serial();
    let job = create_arc(&options("oom-group").notifications(true));
    if !v2_memory() {
        assert_v1_unsupported(job.set_oom_group_kill(true), "oom group kill");
        assert!(!job.oom_group_kill().unwrap());
        return;
    }
    job.set_memory_limit(Some(32 * MIB)).unwrap();
    assert!(!job.oom_group_kill().unwrap());

    // Without it, the OOM killer picks the hog alone.
    let mut bystander = sleeper(&job);
    let mut command = workload::command(&format!("hog {} 2000", 64 * MIB));
    command.stdout(Stdio::null());
    let status = job.spawn(&mut command).unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(
        bystander.running(),
        "a bystander died without OOM group kill"
    );
    job.terminate(1).unwrap();
    bystander.wait();
    wait_empty(&job, TIMEOUT);

    job.set_oom_group_kill(true).unwrap();
    assert!(job.oom_group_kill().unwrap());
    let watcher = Watcher::start(&job);
    let mut bystanders = [sleeper(&job), sleeper(&job)];
    let status = job.spawn(&mut command).unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    for bystander in &mut bystanders {
        assert_eq!(bystander.wait().signal(), Some(libc::SIGKILL));
    }
    let mut seen = Vec::new();
    while !seen.contains(&Notification::OutOfMemoryGroupKill) {
        seen.push(watcher.next(TIMEOUT).0);
    }
    assert!(
        !seen.contains(&Notification::ExternalOutOfMemoryKill),
        "the job's own limit reported as external: {seen:?}"
    );
    println!("OOM group kill: notifications {seen:?}");
}

/// A process killed because a cgroup above its job reached its limit is an
/// `ExternalOutOfMemoryKill`, not the job's own `OutOfMemoryKill`.
#[test]
fn a_kill_for_a_limit_above_the_job_is_external() {
    let test = "a_kill_for_a_limit_above_the_job_is_external";
    if !require_cgroups(test) {
        return;
    }
    let _serial = serial();
    if !v2_memory() {
        eprintln!(
            "{test}: v1 cannot tell the two apart: every kill is OutOfMemoryKill (documented)"
        );
        return;
    }
    let outer = create(&options("oom-outer"));
    outer.set_memory_limit(Some(32 * MIB)).unwrap();
    // A pure v2 host has one hierarchy: the outer job's directory, relative to its root.
    let path = outer.cgroup_paths().unwrap().remove(0);
    let relative = path.strip_prefix("/sys/fs/cgroup").unwrap().to_owned();
    // The inner job counts its memory events once the outer one gives it the controller.
    std::fs::write(path.join("cgroup.subtree_control"), "+memory").unwrap();
    let inner_options = jobobject::Options::new()
        .name(test_name("oom-inner"))
        .notifications(true)
        .cgroup_parent(CgroupParent::Path(relative));
    let inner = Arc::new(JobObject::create(&inner_options).unwrap());
    inner.set_terminate_on_last_handle_close().unwrap();
    let watcher = Watcher::start(&inner);
    let mut command = workload::command(&format!("hog {} 2000", 64 * MIB));
    command.stdout(Stdio::null());
    let status = inner.spawn(&mut command).unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let mut seen = Vec::new();
    while !seen.contains(&Notification::ExternalOutOfMemoryKill) {
        seen.push(watcher.next(TIMEOUT).0);
    }
    assert!(
        !seen.contains(&Notification::OutOfMemoryKill),
        "a kill for the outer limit reported as the job's own: {seen:?}"
    );
    drop(watcher);
    drop(inner);
    wait_job_removed(&test_name("oom-inner"), TIMEOUT);
}

#[test]
fn the_memory_peak_starts_again_from_what_is_used_now() {
    let test = "the_memory_peak_starts_again_from_what_is_used_now";
    if !require_cgroups(test) {
        return;
    }
    let _serial = serial();
    let job = create(&options("peak-reset"));
    let (mut hog, _) = start_hog(&job, 32 * MIB, 0);
    assert!(hog.wait().success());
    let peak = job.memory_stats().unwrap().peak;
    assert!(peak >= 32 * MIB, "peak {peak}");
    match job.reset_memory_peak() {
        Ok(()) => {}
        Err(err @ Error::Unsupported { .. }) => {
            // v2 before Linux 6.12 (v1 always can).
            assert!(v2_memory(), "{err}");
            assert!(err.to_string().contains("6.12"), "{err}");
            eprintln!("{test}: {err}");
            return;
        }
        Err(err) => panic!("reset_memory_peak: {err}"),
    }
    let after = job.memory_stats().unwrap();
    assert!(
        after.peak < 8 * MIB,
        "after the reset the peak is {} (in use {})",
        after.peak,
        after.current
    );
    // It counts again from there.
    let (mut hog, _) = start_hog(&job, 16 * MIB, 0);
    assert!(hog.wait().success());
    let again = job.memory_stats().unwrap().peak;
    assert!((16 * MIB..32 * MIB).contains(&again), "peak {again}");
}

#[test]
fn soft_and_swap_limits_out_of_range_are_refused() {
    if !require_cgroups("soft_and_swap_limits_out_of_range_are_refused") {
        return;
    }
    let job = create(&options("memory-range"));
    let err = job.set_memory_high(Some(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let err = job.set_swap_limit(Some(u64::MAX)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}
