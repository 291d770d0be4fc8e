//! The summary's own interleaved loops, and the summary they print.

use super::*;

/// One round: `n` timed runs of each of `ops`, interleaved one by one (the order rotating
/// every time), so that a burst of load from elsewhere on the machine falls on all of them
/// alike; records each run under its key and returns each op's median in seconds (a
/// median moves less than a total under such bursts).
pub(super) fn interleaved_round<const K: usize>(
    n: usize,
    ops: [(&'static str, &mut dyn FnMut()); K],
) -> [f64; K] {
    let mut runs: [Vec<Duration>; K] = std::array::from_fn(|_| Vec::with_capacity(n));
    for i in 0..n {
        for k in 0..K {
            let op = (i + k) % K;
            let t0 = Instant::now();
            (ops[op].1)();
            let elapsed = t0.elapsed();
            record(ops[op].0, elapsed);
            runs[op].push(elapsed);
        }
    }
    runs.map(|r| Stats::of(r).map_or(0.0, |s| s.median.as_secs_f64()))
}

#[derive(Default)]
pub(super) struct Ratios {
    pub(super) job_vs_plain: Vec<f64>,
    pub(super) hook_vs_plain: Vec<f64>,
    pub(super) join_floor_vs_plain: Vec<f64>,
    pub(super) job_vs_hook: Vec<f64>,
    pub(super) builder_vs_plain: Vec<f64>,
    pub(super) big_builder_vs_plain: Vec<f64>,
    pub(super) big_job_vs_plain: Vec<f64>,
    pub(super) big_hook_vs_plain: Vec<f64>,
    pub(super) create_vs_floor: Vec<f64>,
    pub(super) lifecycle_vs_floor: Vec<f64>,
    pub(super) lifecycle_vs_rival: Vec<f64>,
    pub(super) threads_builder_vs_plain: Vec<f64>,
}

/// Where the spawn loops record their samples.
pub(super) struct SpawnKeys {
    /// Plain spawns interleaved with the builder's.
    pub(super) plain: &'static str,
    /// Plain spawns interleaved with the fork-based variants.
    pub(super) plain_forks: &'static str,
    pub(super) hook: &'static str,
    pub(super) join_floor: &'static str,
    pub(super) job: &'static str,
    pub(super) builder: &'static str,
}

/// Rounds of `n` spawns of each variant; each round's medians in seconds: plain, empty hook,
/// join floor, job (std `Command`), builder.
///
/// The builder is interleaved with plain spawns alone, and the fork-based variants with plain
/// spawns of their own: a fork leaves work behind (its child's copy of the page tables is torn
/// down at its exec), which would land on whatever spawn comes next.
pub(super) fn spawn_rounds(
    keys: &SpawnKeys,
    rounds: usize,
    n: usize,
    job: &JobObject,
    raw_join: &RawJoin,
) -> Vec<[f64; 5]> {
    (0..rounds)
        .map(|_| {
            let [plain, builder] = interleaved_round(
                n,
                [
                    (keys.plain, &mut plain_spawn),
                    (keys.builder, &mut || builder_spawn(job)),
                ],
            );
            let [plain_forks, hook, join_floor, in_job] = interleaved_round(
                n,
                [
                    (keys.plain_forks, &mut plain_spawn),
                    (keys.hook, &mut hooked_spawn),
                    (keys.join_floor, &mut || raw_join_spawn(raw_join)),
                    (keys.job, &mut || job_spawn(job)),
                ],
            );
            // The fork-based ones as ratios to their own plain spawns, on the builder's scale.
            let scale = plain / plain_forks;
            [
                plain,
                hook * scale,
                join_floor * scale,
                in_job * scale,
                builder,
            ]
        })
        .collect()
}

pub(super) fn summary_loops(sizes: &Sizes, parents: &[PathBuf]) -> Ratios {
    let mut ratios = Ratios::default();

    let job = guarded_job(&options().name(bench_name("spawn-summary")));
    let raw_join = RawJoin::new(parents, "join-floor").expect("make the join-floor cgroups");
    let keys = SpawnKeys {
        plain: "spawn/plain",
        plain_forks: "spawn/plain_forks",
        hook: "spawn/pre_exec_empty",
        join_floor: "spawn/pre_exec_join_floor",
        job: "spawn/job",
        builder: "spawn/builder",
    };
    for [plain, hook, join_floor, in_job, builder] in
        spawn_rounds(&keys, sizes.spawn_rounds, sizes.spawn_n, &job, &raw_join)
    {
        ratios.job_vs_plain.push(in_job / plain);
        ratios.hook_vs_plain.push(hook / plain);
        ratios.join_floor_vs_plain.push(join_floor / plain);
        ratios.job_vs_hook.push(in_job / hook);
        ratios.builder_vs_plain.push(builder / plain);
    }

    // The same from a parent with more memory mapped: fork copies its page tables, the
    // posix_spawn path (plain spawn) does not.
    let ballast = vec![1u8; sizes.ballast_bytes];
    black_box(&ballast);
    let keys = SpawnKeys {
        plain: "spawn_big/plain",
        plain_forks: "spawn_big/plain_forks",
        hook: "spawn_big/pre_exec_empty",
        join_floor: "spawn_big/pre_exec_join_floor",
        job: "spawn_big/job",
        builder: "spawn_big/builder",
    };
    for [plain, hook, _, in_job, builder] in spawn_rounds(
        &keys,
        sizes.big_spawn_rounds,
        sizes.big_spawn_n,
        &job,
        &raw_join,
    ) {
        ratios.big_job_vs_plain.push(in_job / plain);
        ratios.big_hook_vs_plain.push(hook / plain);
        ratios.big_builder_vs_plain.push(builder / plain);
    }
    drop(ballast);
    drop(raw_join);
    job.close().unwrap();

    let anonymous = options();
    let limit_files = floor_limit_files(parents);
    let relative = own_relative_paths();
    for _ in 0..sizes.lifecycle_rounds {
        let [job, floor, rival] = interleaved_round(
            sizes.lifecycle_n,
            [
                ("lifecycle/job", &mut || job_lifecycle(&anonymous)),
                ("lifecycle/floor", &mut || {
                    floor_lifecycle(parents, &limit_files)
                }),
                ("lifecycle/cgroups_rs", &mut || {
                    cgroups_rs_lifecycle(&relative)
                }),
            ],
        );
        ratios.lifecycle_vs_floor.push(job / floor);
        ratios.lifecycle_vs_rival.push(job / rival);
    }

    for _ in 0..sizes.create_rounds {
        let [job, floor] = interleaved_round(
            sizes.create_n,
            [
                ("create_close/job", &mut || create_close(&anonymous)),
                ("create_close/floor", &mut || floor_create_remove(parents)),
            ],
        );
        ratios.create_vs_floor.push(job / floor);
    }

    let notified = guarded_job(
        &options()
            .name(bench_name("latency-summary"))
            .notifications(true),
    );
    let raw_watch = RawWatch::new(parents).expect("make the notify-floor cgroups");
    #[cfg(feature = "tokio")]
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for _ in 0..sizes.latency_n {
        exit_to_notification(&notified, SETTLE, "latency/job");
        #[cfg(feature = "tokio")]
        exit_to_async_notification(&notified, &runtime, SETTLE);
        if let Some(raw_watch) = &raw_watch {
            exit_to_inotify(raw_watch, SETTLE);
        }
        exit_to_wait(SETTLE);
    }
    for _ in 0..sizes.latency_immediate_n {
        exit_to_notification(&notified, Duration::ZERO, "latency/job_immediate");
    }
    drop(raw_watch);
    notified.close().unwrap();

    // Last: idle threads leave their stacks mapped (glibc keeps them for reuse), which would
    // slow every fork-based variant measured after them.
    // From a process with many idle threads (fork copies every thread's mappings' page
    // tables once; a shared-memory clone copies nothing).
    let job = guarded_job(&options().name(bench_name("spawn-threads")));
    let idle = idle_threads(sizes.threads);
    for _ in 0..sizes.thread_rounds {
        let [plain, builder] = interleaved_round(
            sizes.thread_n,
            [
                ("spawn_threads/plain", &mut plain_spawn),
                ("spawn_threads/builder", &mut || builder_spawn(&job)),
            ],
        );
        ratios.threads_builder_vs_plain.push(builder / plain);
    }
    drop(idle);

    // 4 threads spawning at once while a shell forks in a loop: the tail under load.
    spawns_under_load(4, sizes.load_n, "load/plain", plain_spawn_for, &job);
    spawns_under_load(4, sizes.load_n, "load/builder", builder_spawn, &job);
    job.close().unwrap();

    ratios
}

/// The median time of one trivial system call here (an emulated guest makes them dear).
fn syscall_cost() -> Duration {
    let rounds: Vec<Duration> = (0..9)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..10_000 {
                black_box(rustix::process::getppid());
            }
            t0.elapsed() / 10_000
        })
        .collect();
    Stats::of(rounds).map_or(Duration::ZERO, |s| s.median)
}

pub(super) fn print_summary(ratios: Ratios, sizes: &Sizes) {
    let mut out = String::new();
    let mut push = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    push("\n==== jobobject lifecycle summary (this process, same run) ====".into());
    push(format!(
        "spawn + wait of {TRUE} (per op; interleaved, one ratio of medians per round):"
    ));
    push(line(
        "plain Command::spawn (beside the builder)",
        "spawn/plain",
    ));
    push(line(
        "process::Command::spawn (the builder)",
        "spawn/builder",
    ));
    push(line(
        "plain Command::spawn (beside the forks)",
        "spawn/plain_forks",
    ));
    push(line(
        "empty pre_exec hook (fork path)",
        "spawn/pre_exec_empty",
    ));
    push(line(
        "hook joining the same pre-opened cgroups (floor)",
        "spawn/pre_exec_join_floor",
    ));
    push(line("job.spawn (one long-lived job)", "spawn/job"));
    push(ratio_line("ratio builder / plain", ratios.builder_vs_plain));
    push(ratio_line("ratio job / plain", ratios.job_vs_plain));
    push(ratio_line(
        "ratio pre_exec-only / plain",
        ratios.hook_vs_plain,
    ));
    push(ratio_line(
        "ratio join floor / plain",
        ratios.join_floor_vs_plain,
    ));
    push(ratio_line("ratio job / pre_exec-only", ratios.job_vs_hook));
    push(format!(
        "the same with {} MiB more resident in this process:",
        sizes.ballast_bytes >> 20
    ));
    push(line(
        "plain Command::spawn (beside the builder)",
        "spawn_big/plain",
    ));
    push(line(
        "process::Command::spawn (the builder)",
        "spawn_big/builder",
    ));
    push(line(
        "plain Command::spawn (beside the forks)",
        "spawn_big/plain_forks",
    ));
    push(line(
        "empty pre_exec hook (fork path)",
        "spawn_big/pre_exec_empty",
    ));
    push(line("job.spawn (one long-lived job)", "spawn_big/job"));
    push(ratio_line(
        "ratio builder / plain",
        ratios.big_builder_vs_plain,
    ));
    push(ratio_line("ratio job / plain", ratios.big_job_vs_plain));
    push(ratio_line(
        "ratio pre_exec-only / plain",
        ratios.big_hook_vs_plain,
    ));
    push(format!(
        "the same from a process with {} idle threads:",
        sizes.threads
    ));
    push(line("plain Command::spawn", "spawn_threads/plain"));
    push(line(
        "process::Command::spawn (the builder)",
        "spawn_threads/builder",
    ));
    push(ratio_line(
        "ratio builder / plain",
        ratios.threads_builder_vs_plain,
    ));
    push("4 threads spawning at once while a shell forks in a loop (per spawn):".into());
    push(line("plain Command::spawn", "load/plain"));
    push(line(
        "process::Command::spawn (the builder)",
        "load/builder",
    ));
    let p99 = |key| Stats::of(samples(key)).map(|s| s.p99.as_secs_f64());
    if let (Some(builder), Some(plain)) = (p99("load/builder"), p99("load/plain")) {
        push(format!(
            "  {:<44} {:.3}x",
            "ratio of p99s builder / plain",
            builder / plain
        ));
    }
    push(
        "whole lifecycle: create, memory/CPU/process limits, spawn /bin/true, wait, close:".into(),
    );
    push(line("JobObject + process::Command", "lifecycle/job"));
    push(line(
        "the same directories and files by hand (floor)",
        "lifecycle/floor",
    ));
    push(line(
        "cgroups-rs 0.5, joining in pre_exec",
        "lifecycle/cgroups_rs",
    ));
    push(ratio_line("ratio job / floor", ratios.lifecycle_vs_floor));
    push(ratio_line(
        "ratio job / cgroups-rs",
        ratios.lifecycle_vs_rival,
    ));
    push("create + close of an empty anonymous job (per op):".into());
    push(line("JobObject::create + close", "create_close/job"));
    push(line(
        "mkdir + rmdir, one dir per hierarchy (floor)",
        "create_close/floor",
    ));
    push(ratio_line("ratio job / floor", ratios.create_vs_floor));
    push(format!(
        "  {:<44} {:.2} us",
        "for scale: one system call (getppid)",
        syscall_cost().as_secs_f64() * 1e6
    ));
    push(
        "  (beyond the floor's mkdir and rmdir, a job's create + close makes 11 calls, and 2 per \
         v1 directory: its identity, marks, holder lock, and the look at its keeper)"
            .into(),
    );
    push(format!(
        "SIGKILL of the last process ({} ms after its spawn) until it is known to be gone:",
        SETTLE.as_millis()
    ));
    push(line(
        "poll_notification -> AllProcessesExited",
        "latency/job",
    ));
    if cfg!(feature = "tokio") {
        push(line(
            "a tokio task awaiting next_notification",
            "latency/async",
        ));
    }
    push(line(
        "inotify on cgroup.events by hand (floor)",
        "latency/inotify_floor",
    ));
    push(line("plain child: wait returns (baseline)", "latency/wait"));
    let median = |key| Stats::of(samples(key)).map(|s| s.median.as_secs_f64());
    if let (Some(job), Some(floor)) = (median("latency/job"), median("latency/inotify_floor")) {
        push(format!(
            "  {:<44} {:.3}x",
            "ratio of medians job / inotify floor",
            job / floor
        ));
    }
    if let (Some(job), Some(task)) = (median("latency/job"), median("latency/async")) {
        push(format!(
            "  {:<44} {:.3}x",
            "ratio of medians async task / poll_notification",
            task / job
        ));
    }
    let latencies = samples("latency/job");
    if !latencies.is_empty() {
        let under = latencies
            .iter()
            .filter(|d| **d < Duration::from_millis(1))
            .count();
        push(format!(
            "  {:<44} {under} of {} ({:.1}%)",
            "under 1 ms",
            latencies.len(),
            100.0 * under as f64 / latencies.len() as f64
        ));
    }
    push(line(
        "killed right after spawn (kernel rate limit)",
        "latency/job_immediate",
    ));
    push(format!(
        "terminate of a job of {PROCESSES} processes (every criterion iteration):"
    ));
    push(line("terminate() returns", "terminate/returned"));
    push(line(
        "terminate() until AllProcessesExited",
        "terminate/job",
    ));
    push(line(
        "SIGKILL each + wait each (baseline)",
        "terminate/kill_each",
    ));
    print!("{out}");
}
