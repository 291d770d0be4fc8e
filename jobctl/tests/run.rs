//! `jobctl run`, end to end: statuses, leftovers, limits, timeout, signals, the summary.
#![cfg(target_os = "linux")]

mod common;

use std::io::BufReader;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Guard, eventually, gone, jobctl, require_cgroups};

/// `jobctl run --name NAME ARGS... -- sh -c SCRIPT`.
fn run_sh(guard: &Guard, options: &[&str], script: &str) -> common::Outcome {
    let mut args = vec!["run", "--name", guard.name()];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    common::run(&args)
}

#[test]
fn exit_status_passes_through() {
    if !require_cgroups("exit_status_passes_through") {
        return;
    }
    let guard = Guard::new("status");
    let out = run_sh(&guard, &[], "echo hello; exit 3");
    assert_eq!(out.code(), 3, "{out:?}");
    assert_eq!(out.stdout, "hello\n");
    assert!(
        out.stderr.contains("sh exited with status 3"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cpu"), "{}", out.stderr);
    assert!(out.stderr.contains("memory"), "{}", out.stderr);
}

#[test]
fn a_signal_gives_128_plus_its_number() {
    if !require_cgroups("a_signal_gives_128_plus_its_number") {
        return;
    }
    let guard = Guard::new("segv");
    let out = run_sh(&guard, &["--json"], "kill -SEGV $$");
    assert_eq!(out.code(), 139, "{out:?}");
    let summary = out.summary();
    assert_eq!(summary["signal"], 11);
    assert_eq!(summary["signal_name"], "SIGSEGV");
    assert_eq!(summary["status"], 139);
}

#[test]
fn quiet_prints_no_summary() {
    if !require_cgroups("quiet_prints_no_summary") {
        return;
    }
    let guard = Guard::new("quiet");
    let out = run_sh(&guard, &["--quiet"], "exit 0");
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stderr, "");
}

#[test]
fn a_process_left_behind_is_killed() {
    if !require_cgroups("a_process_left_behind_is_killed") {
        return;
    }
    let guard = Guard::new("leftover");
    let out = run_sh(&guard, &["--json"], "sleep 100 & echo $!");
    assert_eq!(out.code(), 0, "{out:?}");
    let pid: u32 = out.stdout.trim().parse().expect("the pid of the sleep");
    assert!(eventually(|| gone(pid)), "sleep {pid} is still there");
    let summary = out.summary();
    assert_eq!(summary["processes"]["left_behind_killed"], 1, "{summary}");
    assert!(out.elapsed < Duration::from_secs(60));
}

#[test]
fn wait_all_waits_for_what_is_left_behind() {
    if !require_cgroups("wait_all_waits_for_what_is_left_behind") {
        return;
    }
    let guard = Guard::new("wait-all");
    let out = run_sh(&guard, &["--wait-all", "--json"], "sleep 1 & echo $!");
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.elapsed >= Duration::from_millis(900), "{out:?}");
    let pid: u32 = out.stdout.trim().parse().expect("the pid of the sleep");
    assert!(eventually(|| gone(pid)));
    let summary = out.summary();
    assert_eq!(summary["processes"]["left_behind_killed"], 0, "{summary}");
    assert!(
        summary["wall_seconds"].as_f64().unwrap() >= 0.9,
        "{summary}"
    );
}

#[test]
fn keep_leaves_them_running_in_the_named_job() {
    if !require_cgroups("keep_leaves_them_running_in_the_named_job") {
        return;
    }
    let guard = Guard::new("keep");
    let out = run_sh(&guard, &["--keep"], "sleep 100 >/dev/null 2>&1 & echo $!");
    assert_eq!(out.code(), 0, "{out:?}");
    let pid: u32 = out.stdout.trim().parse().expect("the pid of the sleep");
    assert!(!gone(pid), "--keep killed the sleep");
    let ps = common::run(&["ps", "--json", guard.name()]);
    assert_eq!(ps.code(), 0, "{ps:?}");
    assert_eq!(ps.json()[0]["pid"], pid, "{ps:?}");
    let deleted = common::run(&["delete", "--force", guard.name()]);
    assert_eq!(deleted.code(), 0, "{deleted:?}");
    assert!(eventually(|| gone(pid)));
}

#[test]
fn an_oom_kill_shows_in_the_summary() {
    if !require_cgroups("an_oom_kill_shows_in_the_summary") {
        return;
    }
    // `tail` keeps its last line, 200 MiB without a newline, in memory.
    let hog = "head -c 200M /dev/zero | tail";
    let guard = Guard::new("oom-json");
    let out = run_sh(&guard, &["--memory", "32M", "--json"], hog);
    assert_eq!(out.code(), 137, "{out:?}");
    let summary = out.summary();
    assert!(
        summary["limit_hits"]["oom_kills"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert_eq!(summary["memory_limit_bytes"], 32 << 20, "{summary}");

    let guard = Guard::new("oom-text");
    let out = run_sh(&guard, &["--memory", "32M"], hog);
    assert_eq!(out.code(), 137, "{out:?}");
    assert!(out.stderr.contains("OOM kill"), "{}", out.stderr);
    assert!(out.stderr.contains("limit 32 MiB"), "{}", out.stderr);
}

#[test]
fn the_process_limit_shows_in_the_summary() {
    if !require_cgroups("the_process_limit_shows_in_the_summary") {
        return;
    }
    let guard = Guard::new("pids");
    let script = "for i in 1 2 3 4 5; do sleep 1 & done 2>/dev/null; wait";
    let out = run_sh(&guard, &["--max-processes", "3", "--json"], script);
    let summary = out.summary();
    assert!(
        summary["limit_hits"]["process_limit"].as_u64().unwrap() >= 1,
        "{out:?}"
    );
    assert!(
        summary["processes"]["peak"].as_u64().unwrap() <= 3,
        "{summary}"
    );
}

#[test]
fn timeout_ends_the_job_with_status_124() {
    if !require_cgroups("timeout_ends_the_job_with_status_124") {
        return;
    }
    let guard = Guard::new("timeout");
    let out = common::run(&[
        "run",
        "--name",
        guard.name(),
        "--timeout",
        "1s",
        "--json",
        "--",
        "sleep",
        "100",
    ]);
    assert_eq!(out.code(), 124, "{out:?}");
    assert!(out.elapsed < Duration::from_secs(30), "{out:?}");
    let summary = out.summary();
    assert_eq!(summary["timed_out"], true);
    assert_eq!(summary["limit_hits"]["timeout"], true);

    let guard = Guard::new("timeout-text");
    let out = run_sh(&guard, &["--timeout", "500ms"], "sleep 100");
    assert_eq!(out.code(), 124, "{out:?}");
    assert!(
        out.stderr.contains("timed out after 500ms"),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_reaches_the_command() {
    if !require_cgroups("sigterm_reaches_the_command") {
        return;
    }
    let guard = Guard::new("sigterm");
    let script = "trap 'echo got-term; exit 42' TERM; sleep 100 & echo ready; wait";
    let mut command = jobctl();
    command.args(["run", "--name", guard.name(), "--", "sh", "-c", script]);
    let start = Instant::now();
    let mut child = common::spawn(&mut command);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    common::signal(child.id(), libc::SIGTERM);
    let rest = common::read_until(&mut stdout, "got-term");
    assert_eq!(rest, ["got-term"]);
    let out = common::finish(child, start);
    assert_eq!(out.code(), 42, "{out:?}");
    assert!(out.elapsed < Duration::from_secs(60), "{out:?}");
    assert!(
        out.stderr.contains("1 left behind and killed"),
        "{}",
        out.stderr
    );
}

/// The pids of the `sleep`s in the job of `jobctl run` `child`, once there are `count` of
/// them; none if jobctl ended meanwhile.
fn wait_for_sleeps(child: &mut Child, name: &str, count: usize) -> Vec<u32> {
    let mut pids = Vec::new();
    let found = eventually(|| {
        if !matches!(child.try_wait(), Ok(None)) {
            pids.clear();
            return true;
        }
        let ps = common::run(&["ps", "--json", name]);
        if ps.code() != 0 {
            return false;
        }
        pids = ps
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["command"][0] == "sleep")
            .filter_map(|p| p["pid"].as_u64().and_then(|pid| u32::try_from(pid).ok()))
            .collect();
        pids.len() == count
    });
    assert!(found, "job {name} never had {count} sleeps: {pids:?}");
    pids
}

/// Sends `signal` to a `jobctl run` whose shell has a second sleep in the background: the
/// signal reaches the command, which dies of it, jobctl exits with 128 + N, kills the sleep
/// left behind and removes the job.
fn a_signal_ends_the_run_without_orphans(signal: i32) {
    let guard = Guard::new(&format!("signal-{signal}"));
    let mut command = jobctl();
    // No core files from the signals whose default action dumps one.
    let script = "ulimit -c 0; sleep 300 & echo ready; sleep 300";
    command.args(["run", "--name", guard.name(), "--", "sh", "-c", script]);
    let start = Instant::now();
    let mut child = common::spawn(&mut command);
    // The job holds the shell once it has printed a line.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    let sleeps = wait_for_sleeps(&mut child, guard.name(), 2);
    if sleeps.is_empty() {
        let out = common::finish(child, start);
        panic!("signal {signal}: jobctl ended before its command was ready: {out:?}");
    }
    common::signal(child.id(), signal);
    let out = common::finish(child, start);
    assert_eq!(out.code(), 128 + signal, "signal {signal}: {out:?}");
    assert!(out.stderr.contains("killed by SIG"), "{out:?}");
    // Both sleeps, or the background one where the shell ran the last as itself (exec).
    assert!(out.stderr.contains("left behind and killed"), "{out:?}");
    for pid in sleeps {
        assert!(
            eventually(|| gone(pid)),
            "signal {signal}: sleep {pid} is an orphan"
        );
    }
    let stats = common::run(&["stats", guard.name()]);
    assert_eq!(
        stats.code(),
        1,
        "signal {signal}: the job is still there: {stats:?}"
    );
    assert!(stats.stderr.contains("no job named"), "{stats:?}");
}

#[test]
fn every_signal_that_would_end_jobctl_reaches_the_command() {
    if !require_cgroups("every_signal_that_would_end_jobctl_reaches_the_command") {
        return;
    }
    for signal in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPROF,
        libc::SIGVTALRM,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSYS,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGSEGV,
        libc::SIGRTMIN(),
        libc::SIGRTMIN() + 5,
        libc::SIGRTMAX(),
    ] {
        a_signal_ends_the_run_without_orphans(signal);
    }
}

/// The command starts with the signal mask jobctl was started with, not with the signals
/// jobctl blocks to forward them.
#[test]
fn the_command_does_not_inherit_the_blocked_signals() {
    if !require_cgroups("the_command_does_not_inherit_the_blocked_signals") {
        return;
    }
    let mask = |status: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigBlk:"))
            .map(|mask| mask.trim().to_owned())
    };
    // jobctl inherits the mask of the thread that starts it: this one.
    let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let guard = Guard::new("mask");
    // Not through a shell: dash clears its mask when it starts.
    let out = common::run(&[
        "run",
        "--quiet",
        "--name",
        guard.name(),
        "--",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(mask(&out.stdout), mask(&own), "{out:?}");
}

/// A shell that survives two SIGINTs (its trap counts them) and exits with status 5 at the
/// third; it says `ready` once the trap is set, and `got-int-N` at each.
const THREE_INTERRUPTS: &str = "n=0; trap 'n=$((n+1)); echo got-int-$n; [ $n -ge 3 ] && exit 5' \
                                INT; echo ready; while :; do sleep 0.1; done";

/// Interrupts are passed on, each of them, and never escalated: a shell that traps SIGINT
/// survives two, and ends when it chooses, with its own status.
#[test]
fn interrupts_are_passed_on_never_escalated() {
    if !require_cgroups("interrupts_are_passed_on_never_escalated") {
        return;
    }
    let guard = Guard::new("sigint");
    let script = THREE_INTERRUPTS;
    let mut command = jobctl();
    command.args([
        "run",
        "--json",
        "--name",
        guard.name(),
        "--",
        "sh",
        "-c",
        script,
    ]);
    let start = Instant::now();
    let mut child = common::spawn(&mut command);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    for n in 1..=3 {
        // Once the shell has left its trap (see the terminal test below).
        std::thread::sleep(Duration::from_millis(300));
        common::signal(child.id(), libc::SIGINT);
        common::read_until(&mut stdout, &format!("got-int-{n}"));
    }
    let out = common::finish(child, start);
    assert_eq!(out.code(), 5, "{out:?}");
    assert_eq!(out.summary()["killed_at_timeout"], false);
}

/// At the timeout the job gets SIGTERM: a command that cleans up on it ends in the grace
/// period (its trap runs, nothing is killed); one that ignores it is killed when
/// `--kill-after` ends; `--signal KILL` kills at once. The status is 124 each time.
#[test]
fn timeout_signals_then_kills() {
    if !require_cgroups("timeout_signals_then_kills") {
        return;
    }
    let guard = Guard::new("timeout-term");
    let out = run_sh(
        &guard,
        &["--timeout", "2s", "--json"],
        "trap 'echo cleaned; exit 0' TERM; sleep 100 & wait",
    );
    assert_eq!(out.code(), 124, "{out:?}");
    assert!(out.stdout.contains("cleaned"), "{out:?}");
    let summary = out.summary();
    assert_eq!(summary["timeout_signal"], "SIGTERM", "{summary}");
    assert_eq!(summary["killed_at_timeout"], false, "{summary}");

    let guard = Guard::new("timeout-deaf");
    let out = run_sh(
        &guard,
        &["--timeout", "2s", "--kill-after", "1s"],
        "trap '' TERM; sleep 100 & wait",
    );
    assert_eq!(out.code(), 124, "{out:?}");
    assert!(out.elapsed >= Duration::from_secs(3), "{out:?}");
    assert!(
        out.stderr
            .contains("timed out after 2.00s: sent SIGTERM, then killed what was left"),
        "{}",
        out.stderr
    );

    let guard = Guard::new("timeout-kill");
    let out = run_sh(
        &guard,
        &["--timeout", "2s", "--signal", "KILL", "--json"],
        "trap 'echo cleaned; exit 0' TERM; sleep 100 & wait",
    );
    assert_eq!(out.code(), 124, "{out:?}");
    assert!(!out.stdout.contains("cleaned"), "{out:?}");
    assert_eq!(out.summary()["timeout_signal"], serde_json::Value::Null);

    let out = common::run(&[
        "run",
        "--signal",
        "TERMINATE",
        "--timeout",
        "1s",
        "--",
        "true",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("not a signal name"), "{}", out.stderr);
}

#[test]
fn limits_are_in_force_while_it_runs() {
    if !require_cgroups("limits_are_in_force_while_it_runs") {
        return;
    }
    let guard = Guard::new("limits");
    let mut command = jobctl();
    command.args([
        "run",
        "--quiet",
        "--name",
        guard.name(),
        "--memory",
        "64M",
        "--cpu-rate",
        "25%",
        "--cpus",
        "0",
        "--max-processes",
        "20",
        "--io-bandwidth",
        "10M",
        "--io-iops",
        "500",
        "--",
        "sh",
        "-c",
        "echo ready; sleep 100",
    ]);
    let start = Instant::now();
    let mut child = common::spawn(&mut command);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    let limits = common::run(&["limits", "--json", guard.name()]);
    let kill = common::run(&["kill", guard.name()]);
    let out = common::finish(child, start);
    assert_eq!(limits.code(), 0, "{limits:?}");
    let value = limits.json();
    assert_eq!(value["memory_bytes"], 64 << 20, "{value}");
    assert_eq!(value["cpu_rate"], 2500, "{value}");
    assert_eq!(value["cpus"], "0", "{value}");
    assert_eq!(value["max_processes"], 20, "{value}");
    assert_eq!(value["io_bandwidth_bytes_per_second"], 10 << 20, "{value}");
    assert_eq!(value["io_iops"], 500, "{value}");
    assert_eq!(kill.code(), 0, "{kill:?}");
    assert_eq!(out.code(), 137, "{out:?}");
}

#[test]
fn a_missing_command_is_127() {
    if !require_cgroups("a_missing_command_is_127") {
        return;
    }
    let guard = Guard::new("missing");
    let out = common::run(&[
        "run",
        "--name",
        guard.name(),
        "--",
        "/nonexistent/jobobject-test-command",
    ]);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(
        out.stderr.starts_with("jobctl: command not found"),
        "{}",
        out.stderr
    );
    // Nothing is left: the job was removed.
    let stats = common::run(&["stats", guard.name()]);
    assert_eq!(stats.code(), 1, "{stats:?}");
}

#[test]
fn the_summary_can_go_to_a_file() {
    if !require_cgroups("the_summary_can_go_to_a_file") {
        return;
    }
    let guard = Guard::new("summary-file");
    let path = std::env::temp_dir().join(format!("{}.json", guard.name()));
    let file = path.to_str().unwrap();
    let out = run_sh(&guard, &["--json", "--summary-file", file], "exit 5");
    let text = std::fs::read_to_string(&path).expect("the summary file");
    std::fs::remove_file(&path).ok();
    assert_eq!(out.code(), 5, "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    let summary: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(summary["exit_code"], 5);
    assert_eq!(summary["job"], guard.name());
}

/// `--env`, `--cwd`, `--nice`, `--uid` and `--gid` reach the command; a malformed `--env` is
/// a usage error.
#[test]
fn run_options_set_the_commands_environment() {
    if !require_cgroups("run_options_set_the_commands_environment") {
        return;
    }
    let guard = Guard::new("run-options");
    let out = run_sh(
        &guard,
        &[
            "--quiet",
            "--env",
            "GREETING=hello there",
            "-e",
            "EMPTY=",
            "--cwd",
            "/",
            "--nice",
            "7",
        ],
        "echo \"$GREETING|${EMPTY-unset}|$(pwd)|$(cut -d' ' -f19 /proc/self/stat)\"",
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "hello there||/|7\n", "{out:?}");

    if is_root() {
        let guard = Guard::new("run-uid");
        let out = run_sh(
            &guard,
            &["--quiet", "--uid", "65534", "--gid", "65534"],
            "echo $(id -u) $(id -g) $(id -G)",
        );
        assert_eq!(out.code(), 0, "{out:?}");
        assert_eq!(out.stdout, "65534 65534 65534\n", "{out:?}");
    }

    let out = common::run(&["run", "--env", "=x", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("is not KEY=VALUE"), "{}", out.stderr);
    let out = common::run(&["run", "--nice", "40", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `--summary-fd 3`: the summary goes to descriptor 3 alone, which the command does not
/// inherit; a descriptor that is not open is a usage error before anything runs.
#[test]
fn the_summary_goes_to_a_descriptor_of_its_own() {
    if !require_cgroups("the_summary_goes_to_a_descriptor_of_its_own") {
        return;
    }
    let guard = Guard::new("summary-fd");
    let file = std::env::temp_dir().join(format!("{}.json", guard.name()));
    let script = format!(
        "exec {jobctl} run --json --name {name} --summary-fd 3 -- \
         sh -c 'echo out; echo err >&2; [ -e /proc/self/fd/3 ] && echo fd3 || echo no-fd3' \
         3>{file}",
        jobctl = env!("CARGO_BIN_EXE_jobctl"),
        name = guard.name(),
        file = file.display(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("JOBOBJECT_CGROUP_PARENT", "self")
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).ok();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nno-fd3\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let summary: serde_json::Value = serde_json::from_str(summary.trim()).unwrap();
    assert_eq!(summary["exit_code"], 0, "{summary}");

    let out = common::run(&["run", "--summary-fd", "97", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("not an open descriptor"),
        "{}",
        out.stderr
    );
}

/// Ctrl-C typed at a terminal: jobctl runs as the session's foreground job on a
/// pseudo-terminal, and each `^C` written to it reaches the command (a shell that traps
/// SIGINT) as it would without jobctl; jobctl never escalates, and the exit status is the
/// command's.
#[test]
fn ctrl_c_at_a_terminal_reaches_the_command_only() {
    if !require_cgroups("ctrl_c_at_a_terminal_reaches_the_command_only") {
        return;
    }
    let guard = Guard::new("ctrl-c");
    let script = THREE_INTERRUPTS;
    let mut command = jobctl();
    command.args([
        "run",
        "--quiet",
        "--name",
        guard.name(),
        "--",
        "sh",
        "-c",
        script,
    ]);
    let Some(mut terminal) = common::Terminal::spawn(&mut command) else {
        return;
    };
    terminal.wait_for("ready");
    for n in 1..=3 {
        // Once the shell has left its trap: a shell may lose a signal that lands in it
        // (busybox's ash did, in the emulated guest).
        std::thread::sleep(Duration::from_millis(300));
        terminal.type_keys(b"\x03");
        terminal.wait_for(&format!("got-int-{n}"));
    }
    let status = terminal.child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{:?}", terminal.seen);
}
