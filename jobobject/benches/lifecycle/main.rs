//! What a job costs over its lifecycle on Linux, each cost next to a baseline measured in the
//! same run (absolute times are noisy on a shared machine; the ratios are what to compare):
//!
//! 1. `spawn_true`: a spawn of `/bin/true` + wait into one long-lived job, with the library's
//!    builder (`process::Command`) and with `job.spawn` of a std `Command` (the compatibility
//!    path), against a plain `Command::spawn` (std's posix_spawn path), the same with an
//!    empty `pre_exec` hook (std's fork path, which the compatibility path forces), and the
//!    floor of joining the same cgroups by hand: a hook writing `0` to pre-opened
//!    `cgroup.procs` files.
//! 2. `create_close`: create + close of an empty anonymous job, against the floor of
//!    `mkdir` + `rmdir` of one directory in each hierarchy the library uses.
//! 3. `exit_to_notification`: from the SIGKILL of a job's only process to `poll_notification`
//!    returning `AllProcessesExited`, against the floor of the same event read by hand (an
//!    inotify watch on the `cgroup.events` of cgroups joined by hand) and against SIGKILL to
//!    `wait` returning for a plain child. The process is killed `SETTLE` after its spawn, and
//!    once more right after it: the kernel sends at most one `cgroup.events` notification per
//!    file every `DIV_ROUND_UP(HZ, 100)` jiffies (12 ms at HZ=250) and defers the ones in
//!    between, so an exit soon after the job's previous change is reported late.
//! 4. `terminate_200`: `terminate` of a job of 200 processes until `AllProcessesExited`,
//!    against SIGKILL to each of 200 plain children and reaping them all.
//!
//! The benchmarks that time only part of an iteration (3 and 4) use `iter_custom` with flat
//! sampling and one iteration per sample; criterion warns that it cannot complete the samples
//! in the (deliberately short) target time, which only means that.
//!
//! After criterion's own report, a plain summary follows, from samples taken in this process:
//! the spawn ratios come from rounds of 300 spawns of each variant, interleaved one by one so
//! that load from elsewhere falls on every variant alike, one ratio of medians per round, and
//! the median of the rounds. The builder is interleaved with plain spawns alone and the
//! fork-based variants with plain spawns of their own, since a fork leaves its page tables to
//! tear down on the next spawn's time. The spawn rounds run once more with 256 MiB of extra memory
//! touched in this process, and once from a process with 1000 idle threads, since the fork
//! path copies the parent's page tables and posix_spawn does not; and 4 threads spawn at once
//! while a shell forks in a loop, for the tail under load (p99, builder against plain). The
//! whole lifecycle (create, memory/CPU/process limits, spawn `/bin/true` with the builder,
//! wait, close) runs against the same directories and limit files made by hand with a
//! `pre_exec` join. Every other line is the median and spread of individually timed
//! operations.
//!
//! Every job lives below this process's own cgroups (`CgroupParent::Own`), and every cgroup
//! made here is removed, also on a panic (the guards kill what is left and remove it). Run
//! with `JOBOBJECT_CGROUP_PARENT=self cargo bench -p jobobject`. Under `cargo test` every
//! routine runs once and the summary loops shrink to a few iterations.
//!
//! The benchmarks are Linux-only for now; elsewhere the binary says so and exits.
//!
//! `linux/` holds them: `samples.rs` (what the summary keeps and how it prints it), `floor.rs`
//! (the baselines made by hand: cgroup directories made, joined, watched and removed),
//! `routines.rs` (one timed operation each), `summary.rs` (the interleaved loops behind the
//! ratios) and `mod.rs` (the sizes, the jobs, criterion's part and `main`).

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the lifecycle benchmarks run on Linux only, for now");
}
