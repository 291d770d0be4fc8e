//! Small programs the limit and statistic tests run inside jobs: this test binary, re-executed
//! with `JOBOBJECT_TEST_WORKLOAD` set, runs [`run_from_env`] from its ignored `workload` test.
//! Rust rather than python or shell, so that what they allocate and do is exact.

#![allow(dead_code)]

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// The variable that holds the workload: `hog BYTES HOLD_MS` or `spin CPU_MS`.
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
