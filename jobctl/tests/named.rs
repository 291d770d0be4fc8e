//! Named jobs end to end: create, list, ps, stats, limits, assign, kill, watch, delete, top.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, jobctl, require_cgroups, run};

/// A `sleep 100` child of the test, reaped and killed when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        let child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep");
        Sleeper(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn a_named_job_from_create_to_delete() {
    if !require_cgroups("a_named_job_from_create_to_delete") {
        return;
    }
    let guard = Guard::new("lifecycle");
    let name = guard.name();

    let out = run(&["create", name, "--memory", "256M", "--cpu-weight", "7"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("created job"), "{out:?}");
    let again = run(&["create", name]);
    assert_eq!(again.code(), 1, "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");

    // It stays after jobctl has exited, and shows in the list.
    let list = run(&["list"]);
    assert_eq!(list.code(), 0, "{list:?}");
    assert!(list.stdout.starts_with("NAME"), "{list:?}");
    assert!(list.stdout.contains(name), "{list:?}");
    let list = run(&["list", "--json"]);
    let jobs = list.json();
    let entry = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {list:?}"));
    assert_eq!(entry["limits"]["memory_bytes"], 256 << 20);
    assert_eq!(entry["limits"]["cpu_weight"], 7);

    // A process moved in shows in ps and stats.
    let mut sleeper = Sleeper::start();
    let pid = sleeper.pid().to_string();
    let out = run(&["assign", name, &pid]);
    assert_eq!(out.code(), 0, "{out:?}");
    let ps = run(&["ps", name]);
    assert_eq!(ps.code(), 0, "{ps:?}");
    assert!(ps.stdout.trim_start().starts_with("PID"), "{ps:?}");
    assert!(ps.stdout.contains(&format!("{pid}  sleep 100")), "{ps:?}");
    let ps = run(&["ps", "--json", name]);
    assert_eq!(ps.json()[0]["command"][0], "sleep", "{ps:?}");
    let stats = run(&["stats", name]);
    assert_eq!(stats.code(), 0, "{stats:?}");
    assert!(stats.stdout.contains("processes"), "{stats:?}");
    let stats = run(&["stats", "--json", name]).json();
    assert_eq!(stats["processes"], 1, "{stats}");
    assert_eq!(stats["memory_limit_bytes"], 256 << 20, "{stats}");

    // Limits: shown, then changed.
    let limits = run(&["limits", name]);
    assert_eq!(limits.code(), 0, "{limits:?}");
    assert!(limits.stdout.contains("256 MiB"), "{limits:?}");
    let limits = run(&[
        "limits",
        name,
        "--memory",
        "64M",
        "--cpu-rate",
        "12.5%",
        "--json",
    ]);
    assert_eq!(limits.code(), 0, "{limits:?}");
    let value = limits.json();
    assert_eq!(value["memory_bytes"], 64 << 20, "{value}");
    assert_eq!(value["cpu_rate"], 1250, "{value}");
    assert_eq!(value["cpu_weight"], serde_json::Value::Null, "{value}");

    // A job with processes is not deleted without --force.
    let refused = run(&["delete", name]);
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(refused.stderr.contains("--force"), "{refused:?}");

    let killed = run(&["kill", "--json", name]);
    assert_eq!(killed.code(), 0, "{killed:?}");
    assert_eq!(killed.json()["killed"], 1);
    let status = sleeper.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    let deleted = run(&["delete", name]);
    assert_eq!(deleted.code(), 0, "{deleted:?}");
    let list = run(&["list"]);
    assert!(!list.stdout.contains(name), "{list:?}");
    let stats = run(&["stats", name]);
    assert_eq!(stats.code(), 1, "{stats:?}");
}

#[test]
fn delete_force_kills_first() {
    if !require_cgroups("delete_force_kills_first") {
        return;
    }
    let guard = Guard::new("force");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    let mut sleeper = Sleeper::start();
    let out = run(&["assign", guard.name(), &sleeper.pid().to_string()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(&["delete", "--force", "--json", guard.name()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.json()["killed"], 1);
    assert_eq!(sleeper.0.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(run(&["ps", guard.name()]).code(), 1);
}

#[test]
fn assign_of_a_missing_process_fails() {
    if !require_cgroups("assign_of_a_missing_process_fails") {
        return;
    }
    let guard = Guard::new("assign-missing");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    // Pids above the kernel's maximum (4194304) never exist.
    let out = run(&["assign", guard.name(), "4194305"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.starts_with("jobctl: "), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn watch_prints_each_notification() {
    if !require_cgroups("watch_prints_each_notification") {
        return;
    }
    for json in [false, true] {
        let guard = Guard::new(if json { "watch-json" } else { "watch" });
        assert_eq!(run(&["create", guard.name()]).code(), 0);
        let mut sleeper = Sleeper::start();
        let pid = sleeper.pid().to_string();
        assert_eq!(run(&["assign", guard.name(), &pid]).code(), 0);

        let mut command = jobctl();
        command.args(["watch", guard.name(), "--count", "1"]);
        if json {
            command.arg("--json");
        }
        let start = Instant::now();
        let mut watcher = common::spawn(&mut command);
        // The watch has begun once it says so on stderr.
        let mut stderr = BufReader::new(watcher.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("watching job"), "{line:?}");

        assert_eq!(run(&["kill", guard.name()]).code(), 0);
        sleeper.0.wait().ok();
        let out = common::finish(watcher, start);
        assert_eq!(out.code(), 0, "{out:?}");
        if json {
            let value = out.json();
            assert_eq!(value["event"], "all_processes_exited", "{out:?}");
            assert_eq!(value["job"], guard.name());
            assert!(value["time"].as_str().unwrap().ends_with('Z'));
        } else {
            assert!(out.stdout.contains("all processes exited"), "{out:?}");
        }
    }
}

#[test]
fn top_shows_the_jobs() {
    if !require_cgroups("top_shows_the_jobs") {
        return;
    }
    let guard = Guard::new("top");
    assert_eq!(run(&["create", guard.name(), "--memory", "100M"]).code(), 0);

    let out = run(&["top", "--once", "--delay", "100ms", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let value = out.json();
    let job = value["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == guard.name())
        .unwrap_or_else(|| panic!("not in top: {out:?}"));
    assert_eq!(job["processes"], 0);
    assert_eq!(job["memory_limit_bytes"], 100 << 20);
    assert!(job["cpu_percent"].is_number(), "{job}");

    let out = run(&["top", "--iterations", "2", "--delay", "100ms"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.matches("JOB").count(), 2, "{out:?}");
    assert!(out.stdout.contains(guard.name()), "{out:?}");
    assert!(out.stdout.contains("CPU%"), "{out:?}");
}

/// `top` counts CPU as `--cpu-rate` does, a share of all the host's CPUs: a busy job capped
/// at 30% shows about 30% (not 30% times the number of CPUs); `--batch` prints tables one
/// below the other; on a terminal `q` quits and a letter sorts.
#[test]
fn top_speaks_in_shares_of_the_host() {
    if !require_cgroups("top_speaks_in_shares_of_the_host") {
        return;
    }
    let guard = Guard::new("top-cpu");
    let mut busy = jobctl();
    busy.args([
        "run",
        "--quiet",
        "--name",
        guard.name(),
        "--cpu-rate",
        "30%",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let mut busy = common::spawn(&mut busy);
    // In top's first reading too, or it has no rate for the job.
    assert!(common::eventually(|| {
        let stats = run(&["stats", guard.name(), "--json"]);
        stats.code() == 0 && stats.json()["processes"] == 1
    }));
    let out = run(&["top", "--once", "--delay", "2s", "--json"]);
    let value = out.json();
    let job = value["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == guard.name())
        .unwrap_or_else(|| panic!("not in top: {out:?}"))
        .clone();
    let share = job["cpu_percent"].as_f64().unwrap();
    // Below the cap when the host is busy; never the cap times the CPUs.
    assert!((3.0..=36.0).contains(&share), "a 30% job at {share}%");

    let out = run(&["top", "--batch", "--iterations", "2", "--delay", "100ms"]);
    assert_eq!(out.stdout.matches("JOB").count(), 2, "{out:?}");

    let mut top = jobctl();
    top.args(["top", "--delay", "200ms"]);
    if let Some(mut terminal) = common::Terminal::spawn(&mut top) {
        terminal.wait_for("sorted by cpu");
        terminal.type_keys(b"n");
        terminal.wait_for("sorted by name");
        terminal.type_keys(b"q");
        assert!(
            terminal.child.wait().unwrap().success(),
            "{:?}",
            terminal.seen
        );
    }
    assert_eq!(run(&["kill", guard.name()]).code(), 0);
    busy.wait().unwrap();
}

/// `stats --interval` streams samples, JSON lines with their time, `--count` of them.
#[test]
fn stats_streams_samples() {
    if !require_cgroups("stats_streams_samples") {
        return;
    }
    let guard = Guard::new("stats-interval");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    let out = run(&[
        "stats",
        guard.name(),
        "--interval",
        "100ms",
        "--count",
        "3",
        "--json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["time"].is_string() && l["job"] == guard.name())
    );
    assert_eq!(run(&["delete", guard.name()]).code(), 0);
}

#[test]
fn parent_self_on_the_command_line_works_without_the_environment() {
    if !require_cgroups("parent_self_on_the_command_line_works_without_the_environment") {
        return;
    }
    let guard = Guard::new("parent");
    let with_parent = |args: &[&str]| {
        let mut command = jobctl();
        command
            .env_remove("JOBOBJECT_CGROUP_PARENT")
            .arg("--parent")
            .arg("self");
        command.args(args);
        common::finish(common::spawn(&mut command), Instant::now())
    };
    let out = with_parent(&["create", guard.name()]);
    assert_eq!(out.code(), 0, "{out:?}");
    // The same place as JOBOBJECT_CGROUP_PARENT=self.
    let list = run(&["list"]);
    assert!(list.stdout.contains(guard.name()), "{list:?}");
    let out = with_parent(&["delete", guard.name()]);
    assert_eq!(out.code(), 0, "{out:?}");
}

/// What a workload may put in its command line or a job name to take over the terminal of
/// whoever looks at it: retitle (OSC 0), clear (CSI 2J), an 8-bit CSI, DEL, a bidi override.
const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m\x7f\u{202e}";

/// The same, escaped as jobctl shows it to people.
const EVIL_SHOWN: &str = r"\x1b]0;pwned\x07\x1b[2J\u{9b}31m\x7f\u{202e}";

/// Whether `text` holds a byte or character that a terminal would act on.
fn has_raw_control(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control() && c != '\n' || ('\u{2066}'..='\u{2069}').contains(&c) || c == '\u{202e}'
    })
}

/// A shell of the test's own whose argv holds [`EVIL`]; it waits on its stdin without
/// forking, and ends when dropped.
struct EvilShell(Child);

impl EvilShell {
    fn start() -> Self {
        let child = Command::new("sh")
            .args(["-c", "read line", EVIL])
            .stdin(Stdio::piped())
            .spawn()
            .expect("start sh");
        EvilShell(child)
    }
}

impl Drop for EvilShell {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            stdin.write_all(b"\n").ok();
        }
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn ps_escapes_control_characters_in_command_lines() {
    if !require_cgroups("ps_escapes_control_characters_in_command_lines") {
        return;
    }
    let guard = Guard::new("ps-escape");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    let shell = EvilShell::start();
    let pid = shell.0.id();
    let out = run(&["assign", guard.name(), &pid.to_string()]);
    assert_eq!(out.code(), 0, "{out:?}");

    let ps = run(&["ps", guard.name()]);
    assert_eq!(ps.code(), 0, "{ps:?}");
    assert!(
        !has_raw_control(&ps.stdout),
        "raw control characters: {ps:?}"
    );
    assert!(
        ps.stdout
            .contains(&format!("{pid}  sh -c read line {EVIL_SHOWN}\n")),
        "{ps:?}"
    );

    let ps = run(&["ps", "--json", guard.name()]);
    assert_eq!(ps.code(), 0, "{ps:?}");
    assert!(
        !has_raw_control(&ps.stdout),
        "raw control characters: {ps:?}"
    );
    assert!(
        ps.stdout
            .contains(r#""\u001b]0;pwned\u0007\u001b[2J\u009b31m\u007f\u202e""#),
        "{ps:?}"
    );
    // Escaped, and still the exact argv once parsed.
    assert_eq!(ps.json()[0]["command"][3], EVIL, "{ps:?}");
    drop(shell);
}

#[test]
fn job_names_are_escaped_in_human_output() {
    if !require_cgroups("job_names_are_escaped_in_human_output") {
        return;
    }
    let guard = Guard(common::name(&format!("name{EVIL}")));
    let name = guard.name();
    let shown = common::name(&format!("name{EVIL_SHOWN}"));
    let out = run(&["create", name]);
    assert!(!has_raw_control(&out.stdout), "{out:?}");
    assert!(!has_raw_control(&out.stderr), "{out:?}");
    if out.code() == 2 {
        // The library may refuse such a name; the refusal must not print it raw either.
        return;
    }
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(&shown), "{out:?}");
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["top", "--once", "--delay", "10ms"],
        vec!["top", "--once", "--delay", "10ms", "--json"],
        vec!["kill", name],
        vec!["delete", name],
    ] {
        let out = run(&args);
        assert_eq!(out.code(), 0, "{args:?}: {out:?}");
        assert!(!has_raw_control(&out.stdout), "{args:?}: {out:?}");
        assert!(!has_raw_control(&out.stderr), "{args:?}: {out:?}");
        if !args.contains(&"--json") {
            assert!(out.stdout.contains(&shown), "{args:?}: {out:?}");
        }
    }
    // Errors that name it escape it too.
    let out = run(&["stats", name]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(!has_raw_control(&out.stderr), "{out:?}");
}

/// The pids in job `name`, from `jobctl ps --json`.
fn pids_in(name: &str) -> Vec<u64> {
    let ps = run(&["ps", "--json", name]);
    assert_eq!(ps.code(), 0, "{ps:?}");
    pids_of(&ps)
}

/// The pids that `jobctl ps --json` printed.
fn pids_of(ps: &common::Outcome) -> Vec<u64> {
    ps.json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["pid"].as_u64())
        .collect()
}

/// Process 1 is refused. Tried only where process 1 is a shell of the test's own: the first
/// process of a new pid namespace (pids written to a cgroup are read in the writer's
/// namespace, so even a jobctl that moved it would move nothing else).
#[test]
fn assign_refuses_process_1() {
    if !require_cgroups("assign_refuses_process_1") {
        return;
    }
    let guard = Guard::new("assign-init");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    // The shell checks that it is process 1 before anything else; jobctl is not the last
    // command, so the shell does not exec it (it would be process 1 itself then).
    let script = r#"[ "$$" = 1 ] || exit 99; "$0" assign "$1" 1; exit $?"#;
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", script])
        .arg(env!("CARGO_BIN_EXE_jobctl"))
        .arg(guard.name())
        .env("JOBOBJECT_CGROUP_PARENT", "self")
        .stdin(Stdio::null());
    let out = common::finish(common::spawn(&mut command), Instant::now());
    if out.code() == 99 || out.stderr.contains("unshare failed") {
        let reason = format!("no pid namespace with a shell as process 1: {out:?}");
        common::skip("assign_refuses_process_1", &reason);
        return;
    }
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("process 1 (sh)"), "{out:?}");
    assert!(out.stderr.contains("--force"), "{out:?}");
    assert_eq!(
        pids_in(guard.name()),
        Vec::<u64>::new(),
        "something was moved"
    );
}

/// jobctl's own ancestors (here a shell of the test's, and that one's parent shell) are
/// refused, and moved with --force.
#[test]
fn assign_refuses_an_ancestor_of_jobctl() {
    if !require_cgroups("assign_refuses_an_ancestor_of_jobctl") {
        return;
    }
    let guard = Guard::new("assign-ancestor");
    assert_eq!(run(&["create", guard.name()]).code(), 0);
    let jobctl_path = env!("CARGO_BIN_EXE_jobctl");
    let sh = |script: &str| {
        let mut command = Command::new("sh");
        command
            .args(["-c", script, jobctl_path, guard.name()])
            .env("JOBOBJECT_CGROUP_PARENT", "self")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.spawn().expect("start sh")
    };

    // The parent, then the grandparent, of jobctl.
    for script in [
        r#""$0" assign "$1" $$; echo "status $?""#,
        r#"sh -c '"$0" assign "$1" '$$'; echo "status $?"' "$0" "$1"; echo done"#,
    ] {
        let out = common::finish(sh(script), Instant::now());
        assert!(out.stdout.contains("status 2"), "{script}: {out:?}");
        assert!(out.stderr.contains("an ancestor of jobctl"), "{out:?}");
        assert!(out.stderr.contains("(sh)"), "{out:?}");
        assert!(out.stderr.contains("--force"), "{out:?}");
        assert_eq!(pids_in(guard.name()), Vec::<u64>::new(), "{script}: moved");
    }

    // With --force it is moved; the shell waits on its stdin until the test has looked.
    let mut shell = sh(r#""$0" assign --force "$1" $$; echo "status $?"; read line"#);
    let mut stdout = BufReader::new(shell.stdout.take().unwrap());
    common::read_until(&mut stdout, "status 0");
    assert_eq!(pids_in(guard.name()), vec![u64::from(shell.id())]);
    shell.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(shell.wait().unwrap().success());
}

/// Commands never change a job's lifetime as a side effect: a job nobody holds any more (its
/// `jobctl run --keep` was killed) and that is empty stays through `kill`, `list`, `ps`,
/// `stats`, `limits` and `top`, until `delete`.
#[test]
fn reading_a_job_never_removes_it() {
    if !require_cgroups("reading_a_job_never_removes_it") {
        return;
    }
    let guard = Guard::new("orphaned");
    let name = guard.name();
    let mut runner =
        common::spawn(jobctl().args(["run", "--keep", "--name", name, "--", "sleep", "100"]));
    assert!(
        common::eventually(|| pids_in_quietly(name).len() == 1),
        "the command never showed up in job {name}"
    );
    // SIGKILL: jobctl cannot clean up; with --keep its job stays, held by nobody.
    common::signal(runner.id(), libc::SIGKILL);
    runner.wait().unwrap();
    assert_eq!(run(&["kill", name]).code(), 0);
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["ps", name],
        vec!["stats", name],
        vec!["limits", name],
        vec!["top", "--once", "--delay", "100ms"],
    ] {
        let out = run(&args);
        assert_eq!(out.code(), 0, "{args:?}: {out:?}");
        assert_eq!(
            run(&["ps", name]).code(),
            0,
            "`jobctl {}` removed the job",
            args.join(" ")
        );
    }
    assert!(run(&["list"]).stdout.contains(name));
    assert_eq!(run(&["delete", name]).code(), 0);
    assert_ne!(run(&["ps", name]).code(), 0);
}

/// The pids in job `name`, or none when it cannot be read yet.
fn pids_in_quietly(name: &str) -> Vec<u64> {
    let ps = run(&["ps", "--json", name]);
    if ps.code() != 0 {
        return Vec::new();
    }
    pids_of(&ps)
}

/// `none` removes a limit; a limit left out is kept.
#[test]
fn none_removes_a_limit() {
    if !require_cgroups("none_removes_a_limit") {
        return;
    }
    let guard = Guard::new("clear");
    let name = guard.name();
    let created = run(&["create", name, "--memory", "64M", "--max-processes", "9"]);
    assert_eq!(created.code(), 0, "{created:?}");
    let cleared = run(&["limits", "--json", name, "--memory", "none"]);
    assert_eq!(cleared.code(), 0, "{cleared:?}");
    let limits = cleared.json();
    assert_eq!(limits["memory_bytes"], serde_json::Value::Null, "{limits}");
    assert_eq!(limits["max_processes"], 9, "{limits}");
}

/// `kill -9` of `jobctl run` kills the command's whole tree, a daemon that left its session
/// included, and removes the job (its keeper does it); with `--keep` both stay, and `jobctl
/// list` shows the job. Anonymous jobs are named after jobctl's pid.
#[test]
fn killing_jobctl_run_kills_its_tree_unless_kept() {
    if !require_cgroups("killing_jobctl_run_kills_its_tree_unless_kept") {
        return;
    }
    let script = "setsid sleep 100000 & echo $!; exec sleep 100000";
    for (keep, named) in [(false, true), (false, false), (true, true)] {
        let guard = Guard::new(&format!("killed-run-{keep}"));
        let mut args = vec!["run"];
        if keep {
            args.push("--keep");
        }
        if named {
            args.extend(["--name", guard.name()]);
        }
        args.extend(["--", "sh", "-c", script]);
        let mut runner = common::spawn(jobctl().args(&args).stdout(Stdio::piped()));
        let name = match named {
            true => guard.name().to_owned(),
            false => format!("anon-{}-0", runner.id()),
        };
        let mut stdout = BufReader::new(runner.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let daemon: u64 = line.trim().parse().expect("the daemon's pid");
        assert!(
            common::eventually(|| pids_in_quietly(&name).len() == 2),
            "the command and its daemon never showed up in job {name}"
        );
        let pids = pids_in_quietly(&name);
        assert!(pids.contains(&daemon));

        common::signal(runner.id(), libc::SIGKILL);
        runner.wait().unwrap();
        if keep {
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                pids.iter().all(|&p| !common::gone(p as u32)),
                "--keep: killed"
            );
            assert!(run(&["list"]).stdout.contains(&name), "--keep: not listed");
            assert_eq!(run(&["delete", "--force", &name]).code(), 0);
            continue;
        }
        assert!(
            common::eventually(|| pids.iter().all(|&p| common::gone(p as u32))),
            "processes of job {name} outlived jobctl: {pids:?}"
        );
        assert!(
            common::eventually(|| run(&["ps", &name]).code() != 0),
            "job {name} outlived jobctl"
        );
        assert!(
            !run(&["list"]).stdout.contains(&name),
            "job {name} is still listed"
        );
    }
}

/// `jobctl wait`: at once on an empty job, when the last process exits, 124 on --timeout;
/// `jobctl kill --signal` sends a signal to every process and leaves the job.
#[test]
fn wait_and_signal_a_named_job() {
    if !require_cgroups("wait_and_signal_a_named_job") {
        return;
    }
    let guard = Guard::new("wait");
    let name = guard.name();
    assert_eq!(common::run(&["create", name]).code(), 0);
    let out = common::run(&["wait", name, "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.json()["empty"], true);

    let mut sleeper = std::process::Command::new("sh")
        .args([
            "-c",
            "trap 'exit 3' USR1; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its trap is set before it is signalled.
    let mut stdout = std::io::BufReader::new(sleeper.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    let pid = sleeper.id().to_string();
    assert_eq!(common::run(&["assign", name, &pid]).code(), 0);
    let out = common::run(&["wait", name, "--timeout", "200ms"]);
    assert_eq!(out.code(), 124, "{out:?}");

    let out = common::run(&["kill", name, "--signal", "USR1", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.json()["signal"], "SIGUSR1");
    assert_eq!(sleeper.wait().unwrap().code(), Some(3));
    let out = common::run(&["wait", name, "--timeout", "60s"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(common::run(&["delete", name]).code(), 0);
}

/// `jobctl run --job NAME`: the command runs in the existing job (its cgroup says so), with
/// the job's limits; what it leaves behind keeps running there, and the job stays. A job that
/// does not exist is an error before anything runs.
#[test]
fn run_in_an_existing_job() {
    if !require_cgroups("run_in_an_existing_job") {
        return;
    }
    let guard = Guard::new("run-in");
    let name = guard.name();
    assert_eq!(
        common::run(&["create", name, "--max-processes", "50"]).code(),
        0
    );
    let out = common::run(&[
        "run",
        "--job",
        name,
        "--quiet",
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup; sleep 100 >/dev/null 2>&1 & echo started",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(&format!("/{name}")), "{out:?}");
    let left = pids_in(name);
    assert_eq!(
        left.len(),
        1,
        "the sleep keeps running in the job: {left:?}"
    );
    let limits = common::run(&["limits", name, "--json"]);
    assert_eq!(limits.json()["max_processes"], 50, "{limits:?}");
    assert_eq!(common::run(&["delete", "--force", name]).code(), 0);

    let out = common::run(&["run", "--job", name, "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("no job named"), "{}", out.stderr);
}

/// `jobctl freeze` stops a job's processes where they are (a counting loop counts no more),
/// `list` shows it frozen, `run --job` refuses to start a command that could not run, `thaw`
/// lets it count on, and `kill` kills a frozen job.
#[test]
fn freeze_and_thaw_a_named_job() {
    if !require_cgroups("freeze_and_thaw_a_named_job") {
        return;
    }
    let guard = Guard::new("freeze");
    let name = guard.name();
    assert_eq!(common::run(&["create", name]).code(), 0);
    let dir = std::env::temp_dir().join(format!("jobctl-freeze-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let counter = dir.join("count");
    let script = format!(
        "echo ready; i=0; while :; do i=$((i+1)); echo $i > {}.new; mv {0}.new {0}; sleep 0.01; done",
        counter.display()
    );
    let mut counting = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(counting.stdout.take().unwrap());
    common::read_until(&mut stdout, "ready");
    let pid = counting.id().to_string();
    assert_eq!(common::run(&["assign", name, &pid]).code(), 0);
    let count = || -> u64 {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0)
    };
    let advances = |what: &str| {
        let start = count();
        let deadline = Instant::now() + Duration::from_secs(60);
        while count() < start + 3 {
            assert!(Instant::now() < deadline, "{what}: the loop does not count");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    advances("before the freeze");

    let out = common::run(&["freeze", name, "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.json()["frozen"], true);
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen_at, "a frozen loop counted on");
    let list = common::run(&["list", "--json"]);
    let listed = list.json();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == *name)
        .unwrap_or_else(|| panic!("{name} not listed: {list:?}"))
        .clone();
    assert_eq!(entry["frozen"], true, "{entry}");
    let out = common::run(&["run", "--job", name, "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("frozen"), "{}", out.stderr);

    let out = common::run(&["thaw", name]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("thawed "), "{out:?}");
    advances("after the thaw");

    assert_eq!(common::run(&["freeze", name]).code(), 0);
    let out = common::run(&["kill", name]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(counting.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(common::run(&["delete", name]).code(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// `stats` reports swap and pressure: numbers where the kernel keeps them (pressure needs a
/// cgroup v2 mount, which a v1-only host lacks), `null` otherwise.
#[test]
fn stats_show_swap_and_pressure() {
    if !require_cgroups("stats_show_swap_and_pressure") {
        return;
    }
    let guard = Guard::new("pressure");
    let name = guard.name();
    assert_eq!(common::run(&["create", name]).code(), 0);
    let out = common::run(&["stats", name, "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let json = out.json();
    let v1_only = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    if v1_only {
        assert!(json["pressure"].is_null(), "{json}");
    } else {
        for resource in ["cpu", "memory", "io"] {
            let some = &json["pressure"][resource]["some"];
            assert!(some["avg10"].is_number(), "{resource}: {json}");
            assert!(some["total_seconds"].is_number(), "{resource}: {json}");
        }
    }
    assert!(json.get("swap_bytes").is_some(), "{json}");
    let text = common::run(&["stats", name]);
    assert!(text.stdout.contains("cpu pressure"), "{text:?}");
    assert_eq!(common::run(&["delete", name]).code(), 0);
}

/// `jobctl doctor` tries every feature on a throwaway job where jobs would go, says which
/// work and why the others do not, and leaves nothing behind.
#[test]
fn doctor_says_what_works_here() {
    if !require_cgroups("doctor_says_what_works_here") {
        return;
    }
    let out = common::run(&["doctor", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let json = out.json();
    let features = json["features"].as_array().unwrap();
    let names: Vec<&str> = features.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, jobobject::Capabilities::NAMES, "{json}");
    for feature in features {
        assert!(feature["available"].is_boolean(), "{feature}");
        assert!(
            feature["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{feature}"
        );
    }
    assert!(json["facts"]["cgroup layout"].is_string(), "{json}");
    let text = common::run(&["doctor"]);
    assert_eq!(text.code(), 0, "{text:?}");
    assert!(
        text.stdout.contains("FEATURE") && text.stdout.contains("freeze"),
        "{text:?}"
    );
    // Where no job can be made, it says why and exits 1.
    let out = common::run(&["doctor", "--parent", "no/such/parent"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.contains("no"), "{out:?}");
}
