//! Small programs the limit and statistic tests run inside jobs: this test binary, re-executed
//! with `JOBOBJECT_TEST_WORKLOAD` set, runs [`run_from_env`] from its ignored `workload` test.
//! Rust rather than python or shell, so that what they allocate and do is exact.

#![allow(dead_code)]

use jobobject::os::linux::OptionsExt;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// The variable that holds the workload: `hog BYTES HOLD_MS`, `spin CPU_MS`, `fork LIFE_MS`,
/// `assign NAME PID` or `orphan NAME`.
pub const ENV: &str = "JOBOBJECT_TEST_WORKLOAD";

/// A command that runs `spec` as a workload.
pub fn command(spec: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args([
            "--exact",
            "workload",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(ENV, spec);
    command
}

/// Runs the workload named in the environment, if any.
pub fn run_from_env() {
    let Ok(spec) = std::env::var(ENV) else { return };
    let words: Vec<&str> = spec.split_whitespace().collect();
    match words.as_slice() {
        ["hog", bytes, hold_ms] => hog(bytes.parse().unwrap(), hold_ms.parse().unwrap()),
        ["spin", cpu_ms] => spin(Duration::from_millis(cpu_ms.parse().unwrap())),
        ["fork", life_ms] => fork_forever(life_ms.parse().unwrap()),
        ["assign", name, pid] => assign(name, pid.parse().unwrap()),
        ["orphan", name] => orphan(name),
        _ => panic!("unknown workload {spec:?}"),
    }
}

/// Allocates and touches `bytes`, says so on stdout, then holds them for `hold_ms`.
fn hog(bytes: usize, hold_ms: u64) {
    let start = Instant::now();
    let memory = vec![1u8; bytes];
    println!(
        "WORKLOAD ready {} bytes in {:?}",
        memory.len(),
        start.elapsed()
    );
    std::io::stdout().flush().ok();
    std::thread::sleep(Duration::from_millis(hold_ms));
    std::hint::black_box(&memory);
}

/// Runs on the CPU until this process has used `cpu` of CPU time, however long that takes on
/// a loaded machine.
fn spin(cpu: Duration) {
    let used = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    // Check the clock rarely: where it is a system call (emulated guests), checking often
    // would turn user time into kernel time.
    while used() < cpu {
        for _ in 0..1000 {
            std::hint::black_box((0..1000u64).sum::<u64>());
        }
    }
}

/// Whether the workload printed that it is ready.
pub fn ready(stdout: &str) -> bool {
    stdout
        .lines()
        .any(|line| line.starts_with("WORKLOAD ready"))
}

/// Forks in a tight loop until killed, each child living `life_ms` (children are reaped as
/// they go, so as many live at once as the process limit lets); says it is ready first.
fn fork_forever(life_ms: u64) {
    println!("WORKLOAD ready forking");
    std::io::stdout().flush().ok();
    let life = libc::timespec {
        tv_sec: (life_ms / 1000) as _,
        tv_nsec: ((life_ms % 1000) * 1_000_000) as _,
    };
    loop {
        // SAFETY: the child calls only nanosleep and _exit, which are async-signal-safe.
        match unsafe { libc::fork() } {
            0 => unsafe {
                libc::nanosleep(&life, std::ptr::null_mut());
                libc::_exit(0)
            },
            // Refused by the process limit: try again soon, not at once.
            -1 => std::thread::sleep(Duration::from_micros(100)),
            _ => {}
        }
        // Reap what has exited.
        // SAFETY: waitpid on our own children; no memory is passed.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
}

/// Opens the job `name` (below this process's own cgroups) and assigns `pid` to it; prints
/// `WORKLOAD assign ok` or `WORKLOAD assign error <Debug>`.
fn assign(name: &str, pid: u32) {
    let options = jobobject::Options::new()
        .name(name)
        .cgroup_parent(jobobject::os::linux::CgroupParent::Own);
    let job = jobobject::JobObject::open(&options).expect("open the job");
    match job.assign(pid) {
        Ok(()) => println!("WORKLOAD assign ok"),
        Err(err) => println!("WORKLOAD assign error {err:?}"),
    }
}

/// Creates the job `name` (below this process's own cgroups) and exits without closing it,
/// leaving it empty and held by no one.
fn orphan(name: &str) {
    let options = jobobject::Options::new()
        .name(name)
        .cgroup_parent(jobobject::os::linux::CgroupParent::Own);
    let job = jobobject::JobObject::create(&options).expect("create the job");
    println!("WORKLOAD ready orphaned");
    std::io::stdout().flush().ok();
    std::mem::forget(job);
    std::process::exit(0);
}
