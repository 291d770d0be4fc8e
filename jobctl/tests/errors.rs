//! Bad input gets one line that names the problem and the fix, and a non-zero status; every
//! subcommand's help has an example.
#![cfg(target_os = "linux")]

mod common;

use common::{Guard, require_cgroups, run};

/// Asserts a one-line `jobctl: ...` message containing every one of `words`.
fn assert_one_line(out: &common::Outcome, status: i32, words: &[&str]) {
    assert_eq!(out.code(), status, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "not one line: {out:?}");
    assert!(out.stderr.starts_with("jobctl: "), "{out:?}");
    for word in words {
        assert!(out.stderr.contains(word), "{word:?} missing: {out:?}");
    }
}

#[test]
fn a_bad_size_is_a_usage_error() {
    let out = run(&["run", "--memory", "12Q", "--", "true"]);
    assert_one_line(&out, 2, &["--memory", "\"Q\"", "512M"]);
    // A bare number is almost always a forgotten unit; bits are not bytes.
    let out = run(&["run", "--memory", "1", "--", "true"]);
    assert_one_line(&out, 2, &["--memory", "no unit", "1G"]);
    let out = run(&["run", "--io-bandwidth", "10Mb/s", "--", "true"]);
    assert_one_line(&out, 2, &["--io-bandwidth", "bits", "MB"]);
    let out = run(&["create", "x", "--io-bandwidth", "lots"]);
    assert_one_line(&out, 2, &["--io-bandwidth", "lots"]);
}

#[test]
fn a_bad_percentage_is_a_usage_error() {
    let out = run(&["run", "--cpu-rate", "0%", "--", "true"]);
    assert_one_line(&out, 2, &["--cpu-rate", "0%", "0.01% to 100%"]);
    let out = run(&["run", "--cpu-rate", "50", "--", "true"]);
    assert_one_line(&out, 2, &["--cpu-rate", "no %", "50%"]);
    let out = run(&["run", "--cpu-rate", "12.345%", "--", "true"]);
    assert_one_line(&out, 2, &["--cpu-rate", "0.01%"]);
}

#[test]
fn other_bad_values_are_usage_errors() {
    for (option, value, hint) in [
        ("--timeout", "10x", "30s"),
        ("--cpu-weight", "10", "1 (least) to 9"),
        ("--cpus", "3-1", "0,2-3"),
        ("--max-processes", "0", "at least 1"),
        ("--io-iops", "many", "whole number"),
    ] {
        let out = run(&["run", option, value, "--", "true"]);
        assert_one_line(&out, 2, &[option, hint]);
    }
}

/// A timeout beyond the range (once a panic after the command had started, orphaning it) is
/// refused before anything starts: no job, no command.
#[test]
fn a_timeout_out_of_range_is_refused_before_anything_starts() {
    let marker = std::env::temp_dir().join(common::name("timeout-marker"));
    let script = format!("touch '{}'", marker.display());
    for timeout in ["1e19", "9223372036854775807s", "36501d", "inf", "nan"] {
        let guard = Guard::new("timeout-range");
        let args = [
            "run",
            "--name",
            guard.name(),
            "--timeout",
            timeout,
            "--",
            "sh",
            "-c",
            &script,
        ];
        let out = run(&args);
        assert_one_line(
            &out,
            2,
            &["--timeout", timeout, "at most 36500d (100 years)"],
        );
        assert!(!marker.exists(), "--timeout {timeout}: the command ran");
        // Also as `jobctl run --timeout X -- true`, the plain form.
        let out = run(&["run", "--timeout", timeout, "--", "true"]);
        assert_one_line(&out, 2, &["--timeout", "at most 36500d"]);
    }
    let out = run(&["top", "--delay", "1e19", "--once"]);
    assert_one_line(&out, 2, &["--delay", "at most 36500d"]);
}

#[test]
fn a_bad_pid_is_a_usage_error() {
    for pid in ["0", "-5", "2147483648", "x"] {
        let out = run(&["assign", "some-job", "--", pid]);
        assert_one_line(&out, 2, &["not a process id"]);
    }
}

#[test]
fn rate_and_weight_exclude_each_other() {
    let out = run(&["run", "--cpu-rate", "5%", "--cpu-weight", "3", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

#[test]
fn an_unknown_job_says_how_to_find_one() {
    if !require_cgroups("an_unknown_job_says_how_to_find_one") {
        return;
    }
    let name = common::name("unknown");
    for command in ["ps", "stats", "limits", "kill", "delete", "watch"] {
        let out = run(&[command, &name]);
        assert_one_line(&out, 1, &["no job named", &name, "jobctl list"]);
    }
    // Pids above the kernel's maximum (4194304) never exist.
    let out = run(&["assign", &name, "4194305"]);
    assert_one_line(&out, 1, &["no job named"]);
}

#[test]
fn a_bad_job_name_is_refused() {
    if !require_cgroups("a_bad_job_name_is_refused") {
        return;
    }
    let out = run(&["create", "a/b"]);
    assert_one_line(&out, 2, &["/"]);
}

#[test]
fn limits_the_host_cannot_have_fail_the_run_before_it_starts() {
    if !require_cgroups("limits_the_host_cannot_have_fail_the_run_before_it_starts") {
        return;
    }
    let guard = Guard::new("no-such-cpu");
    // CPU 63 is beyond this machine's CPUs.
    let out = run(&["run", "--name", guard.name(), "--cpus", "63", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.starts_with("jobctl: "), "{out:?}");
    // In CPU lists, as the option takes them.
    assert!(
        out.stderr.contains("CPUs 63") && out.stderr.contains("it has 0"),
        "{out:?}"
    );
    // The job was removed again.
    assert_eq!(run(&["stats", guard.name()]).code(), 1);
}

#[test]
fn a_memory_limit_under_a_page_fails_the_run_before_it_starts() {
    if !require_cgroups("a_memory_limit_under_a_page_fails_the_run_before_it_starts") {
        return;
    }
    let guard = Guard::new("under-a-page");
    // The kernel would hold 4095 bytes as 0 pages, and kill the command at its first
    // allocation: the library refuses it, and the command never runs (it would print).
    let out = run(&[
        "run",
        "--name",
        guard.name(),
        "--memory",
        "4095B",
        "--",
        "echo",
        "ran",
    ]);
    assert_one_line(&out, 2, &["memory limit", "4095", "whole pages"]);
    // The job was removed again.
    assert_eq!(run(&["stats", guard.name()]).code(), 1);
}

#[test]
fn every_subcommand_has_an_example_in_its_help() {
    for command in [
        "run", "create", "list", "ps", "stats", "limits", "assign", "kill", "watch", "delete",
        "top",
    ] {
        let out = run(&[command, "--help"]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(
            out.stdout.contains(&format!("jobctl {command}")),
            "no example in `{command} --help`: {}",
            out.stdout
        );
    }
    let out = run(&["--help"]);
    assert!(out.stdout.contains("Exit status"), "{}", out.stdout);
    let out = run(&["--version"]);
    assert!(out.stdout.starts_with("jobctl "), "{out:?}");
}

#[test]
fn run_needs_a_command() {
    let out = run(&["run", "--memory", "1G"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

/// Under `--json` errors are JSON too: one line on stderr, `{"error": ..., "status": ...}`,
/// for bad values, unknown subcommands and failures alike.
#[test]
fn errors_are_json_under_json() {
    for (args, status, words) in [
        (
            vec!["--json", "run", "--memory", "1", "--", "true"],
            2,
            "no unit",
        ),
        (vec!["--json", "frobnicate"], 2, "frobnicate"),
        (
            vec!["stats", "--json", "jobobject-no-such-job"],
            1,
            "no job named",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.code(), status, "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        let error: serde_json::Value = serde_json::from_str(&out.stderr).unwrap();
        assert_eq!(error["status"], status, "{error}");
        assert!(error["error"].as_str().unwrap().contains(words), "{error}");
    }
}

/// The cgroup v2 memory options: applied where the job's memory controller is v2, refused
/// before anything runs where it is v1 (hybrid and legacy hosts), with a message that says so.
#[test]
fn v2_memory_options_are_applied_or_refused() {
    if !common::require_cgroups("v2_memory_options_are_applied_or_refused") {
        return;
    }
    let v2 = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/cgroup") && l.contains("cgroup2"));
    let guard = common::Guard::new("v2-memory");
    let name = guard.name();
    let out = common::run(&[
        "create",
        name,
        "--memory",
        "64M",
        "--memory-high",
        "32M",
        "--swap",
        "0",
        "--oom-group",
    ]);
    if !v2 {
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(out.stderr.contains("cgroup v2"), "{}", out.stderr);
        let out = common::run(&["run", "--memory-high", "32M", "--", "true"]);
        assert_eq!(out.code(), 125, "{out:?}");
        assert!(out.stderr.contains("cgroup v2"), "{}", out.stderr);
        return;
    }
    assert_eq!(out.code(), 0, "{out:?}");
    let limits = common::run(&["limits", name, "--json"]);
    let json = limits.json();
    assert_eq!(json["memory_high_bytes"], 32 << 20, "{limits:?}");
    assert_eq!(json["swap_bytes"], 0, "{limits:?}");
    assert_eq!(json["oom_group_kill"], true, "{limits:?}");
    let out = common::run(&[
        "limits",
        name,
        "--memory-high",
        "none",
        "--swap",
        "none",
        "--oom-group=off",
        "--json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let json = out.json();
    assert_eq!(
        json["memory_high_bytes"],
        serde_json::Value::Null,
        "{out:?}"
    );
    assert_eq!(json["swap_bytes"], serde_json::Value::Null, "{out:?}");
    assert_eq!(json["oom_group_kill"], false, "{out:?}");
    assert_eq!(common::run(&["delete", name]).code(), 0);
}

/// `--cpus` takes any CPU number; CPUs the host lacks are refused naming them, before
/// anything runs, and a list within the host holds the command to it.
#[test]
fn cpus_beyond_64_are_taken_and_checked() {
    if !require_cgroups("cpus_beyond_64_are_taken_and_checked") {
        return;
    }
    let out = run(&["run", "--cpus", "0-4095", "--", "true"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("does not have"), "{}", out.stderr);
    assert!(out.stderr.contains("-4095"), "{}", out.stderr);
    let out = run(&[
        "run",
        "--cpus",
        "0",
        "--quiet",
        "--",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.trim_end().ends_with("\t0"), "{out:?}");
}
