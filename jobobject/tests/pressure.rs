//! Pressure (PSI), proven by a squeeze: two busy processes held to one CPU wait for it half
//! of the time, which the job's CPU pressure shows and a trigger reports. A host without a
//! cgroup v2 mount (legacy v1) has no per-job pressure: there the library says so.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use jobobject::os::linux::CgroupLayout;
use jobobject::{Error, JobObject, Notification, PressureResource, PressureTrigger};

#[test]
fn child_mode() {
    run_child_mode();
}

fn spin() -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", "while :; do :; done"]);
    command
}

/// Whether jobs here have pressure files: a v2 mount (unified or hybrid); on a legacy host
/// checks that the library says they have none.
fn has_pressure(job: &JobObject, test: &str) -> bool {
    if CgroupLayout::detect().unwrap() != CgroupLayout::Legacy {
        return true;
    }
    let err = job.pressure_stats().unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    eprintln!("{test}: on a v1-only host: {err}");
    false
}

/// Two busy processes held to CPU 0: one of them always waits.
fn squeeze(job: &JobObject) -> [Reap; 2] {
    job.set_cpu_affinity(Some(0b1)).unwrap();
    [
        Reap::new(job.spawn(&mut spin()).unwrap()),
        Reap::new(job.spawn(&mut spin()).unwrap()),
    ]
}

#[test]
fn two_processes_on_one_cpu_show_as_cpu_pressure() {
    let test = "two_processes_on_one_cpu_show_as_cpu_pressure";
    if !require_cgroups(test) {
        return;
    }
    let job = create(&options("pressure"));
    if !has_pressure(&job, test) {
        return;
    }
    let before = job.pressure_stats().unwrap();
    let _spinners = squeeze(&job);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let after = job.pressure_stats().unwrap();
    let waited = after.cpu.some.total - before.cpu.some.total;
    let wall = start.elapsed();
    println!(
        "two busy processes on one CPU for {wall:?}: CPU pressure some {waited:?} (avg10 {:.1}%)",
        after.cpu.some.avg10
    );
    assert!(
        waited.as_secs_f64() > 0.3 * wall.as_secs_f64(),
        "only {waited:?} of CPU pressure in {wall:?}"
    );
    assert!(after.cpu.some.avg10 > 0.0);
    job.terminate(1).unwrap();
}

#[test]
fn a_cpu_pressure_trigger_fires_under_a_squeeze() {
    let test = "a_cpu_pressure_trigger_fires_under_a_squeeze";
    if !require_cgroups(test) {
        return;
    }
    let job = create_arc(&options("pressure-trigger").notifications(true));
    // A window of 2 s: a process without CAP_SYS_RESOURCE may set no other.
    let trigger = PressureTrigger::new(
        PressureResource::Cpu,
        Duration::from_millis(100),
        Duration::from_secs(2),
    );
    if !has_pressure(&job, test) {
        let err = job.add_pressure_trigger(&trigger).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        return;
    }
    job.add_pressure_trigger(&trigger).unwrap();
    let watcher = Watcher::start(&job);
    let start = Instant::now();
    let _spinners = squeeze(&job);
    loop {
        let (message, at) = watcher.next(TIMEOUT);
        if message
            == (Notification::Pressure {
                resource: PressureResource::Cpu,
            })
        {
            println!(
                "CPU pressure trigger fired {:?} into the squeeze",
                at - start
            );
            break;
        }
    }
    job.terminate(1).unwrap();
}

#[test]
fn triggers_are_checked_and_need_notifications() {
    if !require_cgroups("triggers_are_checked_and_need_notifications") {
        return;
    }
    let job = Arc::new(create(&options("pressure-checks")));
    let valid = PressureTrigger::new(
        PressureResource::Memory,
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    for (stall, window) in [
        (Duration::ZERO, Duration::from_secs(1)),
        (Duration::from_secs(2), Duration::from_secs(1)),
        (Duration::from_millis(10), Duration::from_millis(100)),
        (Duration::from_secs(1), Duration::from_secs(11)),
    ] {
        let trigger = PressureTrigger::new(PressureResource::Io, stall, window);
        let err = job.add_pressure_trigger(&trigger).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    }
    let err = job.add_pressure_trigger(&valid).unwrap_err();
    assert!(
        matches!(err, Error::NotRegistered | Error::Unsupported { .. }),
        "{err:?}"
    );
}
