//! The benchmarks (see the crate docs in `main.rs`).

mod floor;
mod rival;
mod routines;
mod samples;
mod summary;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use jobobject::os::linux::{CgroupLayout, CgroupParent, OptionsExt};
use jobobject::{JobObject, Notification, Options};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::inotify;

const TRUE: &str = "/bin/true";
const SLEEP: &str = "/bin/sleep";
/// How long a process runs before the latency benchmarks kill it: longer than two of the
/// kernel's `cgroup.events` notification intervals (12 ms at HZ=250, rounded up to a jiffy),
/// so that neither the spawn's notification nor the one before it defers the exit's.
const SETTLE: Duration = Duration::from_millis(40);
/// Memory the summary's second spawn loops keep touched in this process.
const BALLAST_BYTES: usize = 256 << 20;
/// Processes in the job that `terminate_200` kills.
const PROCESSES: usize = 200;
/// The v1 controllers the library may make a job directory for (see `made_with_a_job`).
const USED_V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids",
];

/// How the binary was started: `cargo bench`, `cargo test`, or `--list` and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bench,
    Test,
    Other,
}

fn mode() -> Mode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") || args.iter().any(|a| a.starts_with("--profile-time")) {
        Mode::Other
    } else if has("--bench") && !has("--test") {
        Mode::Bench
    } else {
        Mode::Test
    }
}

/// The sizes of the summary's own loops.
struct Sizes {
    spawn_rounds: usize,
    spawn_n: usize,
    create_rounds: usize,
    create_n: usize,
    latency_n: usize,
    latency_immediate_n: usize,
    ballast_bytes: usize,
    big_spawn_rounds: usize,
    big_spawn_n: usize,
    lifecycle_rounds: usize,
    lifecycle_n: usize,
    threads: usize,
    thread_rounds: usize,
    thread_n: usize,
    load_n: usize,
}

/// Divides the summary's loop counts (not its rounds, ballast or threads), for a slow machine
/// such as the emulated guest of `scripts/guest-test` (`JOBOBJECT_GUEST_BENCH=1`).
const SCALE_ENV: &str = "JOBOBJECT_BENCH_SCALE";

impl Sizes {
    fn for_mode(mode: Mode) -> Self {
        let sizes = Self::unscaled(mode);
        match std::env::var(SCALE_ENV).map(|s| s.parse::<usize>()) {
            Ok(Ok(scale)) if scale >= 1 => sizes.scaled_down(scale),
            Ok(_) => panic!("{SCALE_ENV}: expected a whole number from 1"),
            Err(_) => sizes,
        }
    }

    fn scaled_down(self, scale: usize) -> Self {
        let n = |count: usize| (count / scale).max(5.min(count));
        Sizes {
            spawn_n: n(self.spawn_n),
            create_n: n(self.create_n),
            latency_n: n(self.latency_n),
            latency_immediate_n: n(self.latency_immediate_n),
            big_spawn_n: n(self.big_spawn_n),
            lifecycle_n: n(self.lifecycle_n),
            thread_n: n(self.thread_n),
            load_n: n(self.load_n),
            ..self
        }
    }

    fn unscaled(mode: Mode) -> Self {
        match mode {
            Mode::Bench => Sizes {
                spawn_rounds: 9,
                spawn_n: 300,
                create_rounds: 5,
                create_n: 200,
                latency_n: 100,
                latency_immediate_n: 100,
                ballast_bytes: BALLAST_BYTES,
                big_spawn_rounds: 3,
                big_spawn_n: 50,
                lifecycle_rounds: 5,
                lifecycle_n: 200,
                threads: 1000,
                thread_rounds: 5,
                thread_n: 100,
                load_n: 250,
            },
            _ => Sizes {
                spawn_rounds: 1,
                spawn_n: 2,
                create_rounds: 1,
                create_n: 2,
                latency_n: 1,
                latency_immediate_n: 1,
                ballast_bytes: 1 << 20,
                big_spawn_rounds: 1,
                big_spawn_n: 1,
                lifecycle_rounds: 1,
                lifecycle_n: 2,
                threads: 10,
                thread_rounds: 1,
                thread_n: 2,
                load_n: 2,
            },
        }
    }
}

use floor::*;
use rival::*;
use routines::*;
use samples::*;
use summary::*;

// Jobs, always below this process's own cgroups.

fn options() -> Options {
    Options::new().cgroup_parent(CgroupParent::Own)
}

/// A job that kills what is left in it and removes itself when dropped, also on a panic.
fn guarded_job(options: &Options) -> JobObject {
    let job = JobObject::create(options).expect("create a job");
    job.set_terminate_on_last_handle_close()
        .expect("set terminate on close");
    job
}

fn bench_name(what: &str) -> String {
    format!("jobobject-bench-{}-{what}", std::process::id())
}

// Criterion's part.

fn criterion_benches(c: &mut Criterion, parents: &[PathBuf]) {
    let spawn_job = guarded_job(&options().name(bench_name("spawn")));
    let raw_join = RawJoin::new(parents, "join-floor").expect("make the join-floor cgroups");
    let mut group = c.benchmark_group("spawn_true");
    // 60 samples fit the default 5 s at about 1 ms per spawn.
    group.sample_size(60);
    group.bench_function("plain", |b| b.iter(plain_spawn));
    group.bench_function("pre_exec_empty", |b| b.iter(hooked_spawn));
    group.bench_function("pre_exec_join_floor", |b| {
        b.iter(|| raw_join_spawn(&raw_join))
    });
    group.bench_function("job", |b| b.iter(|| job_spawn(&spawn_job)));
    group.bench_function("builder", |b| b.iter(|| builder_spawn(&spawn_job)));
    group.finish();
    drop(raw_join);
    spawn_job.close().unwrap();

    let anonymous = options();
    let mut group = c.benchmark_group("create_close");
    group.bench_function("job_anonymous", |b| b.iter(|| create_close(&anonymous)));
    group.bench_function("mkdir_rmdir_floor", |b| {
        b.iter(|| floor_create_remove(black_box(parents)))
    });
    group.finish();

    let notified = guarded_job(&options().name(bench_name("latency")).notifications(true));
    let raw_watch = RawWatch::new(parents).expect("make the notify-floor cgroups");
    let mut group = c.benchmark_group("exit_to_notification");
    // Only the interval is timed, not the spawn and the settling around it: a short target
    // time keeps the run short, and flat sampling keeps the number of iterations down.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .warm_up_time(Duration::from_millis(5))
        .measurement_time(Duration::from_millis(30));
    group.bench_function("job_all_processes_exited", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| exit_to_notification(&notified, SETTLE, "latency/job"))
                .sum()
        })
    });
    if let Some(raw_watch) = &raw_watch {
        group.bench_function("inotify_floor", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| exit_to_inotify(raw_watch, SETTLE)).sum())
        });
    }
    group.bench_function("plain_wait_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| exit_to_wait(SETTLE)).sum())
    });
    group.bench_function("job_killed_right_after_spawn", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| exit_to_notification(&notified, Duration::ZERO, "latency/job_immediate"))
                .sum()
        })
    });
    group.finish();
    drop(raw_watch);
    notified.close().unwrap();

    let mut group = c.benchmark_group("terminate_200");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(10));
    group.bench_function("job_until_all_exited", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| terminate_job()).sum())
    });
    group.bench_function("kill_each_and_reap_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| kill_each_and_reap()).sum())
    });
    group.finish();
}

pub(super) fn main() {
    let mode = mode();
    let parents = own_cgroup_dirs().expect("find this process's own cgroups");
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &parents);
    criterion.final_summary();
    if mode == Mode::Other {
        return;
    }
    let sizes = Sizes::for_mode(mode);
    let ratios = summary_loops(&sizes, &parents);
    print_summary(ratios, &sizes);
}
