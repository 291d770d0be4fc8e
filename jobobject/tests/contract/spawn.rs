//! The library's own builder, `process::Command`, on every platform: the child is in the job,
//! its status, its pipes and environment, and a missing program.

use std::io::Write;

use jobobject::ErrorKind;
use jobobject::process::{Command, Stdio};

use crate::common::*;

/// A child started with the builder is in the job while it runs, and its exit code comes
/// back from `wait`; `try_wait` and `kill` work as std's.
#[test]
fn builder_child_is_in_the_job() {
    if !require_jobs("builder_child_is_in_the_job") {
        return;
    }
    let job = create(&anonymous_options());
    let mut child = builder_child("sleep:60000").spawn(&job).unwrap();
    assert_eq!(job.pids().unwrap(), vec![child.id()]);
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let mut child = builder_child("exit:3").spawn(&job).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    wait_empty(&job, TIMEOUT);
}

/// Piped stdin, stdout and stderr, and a variable set for the child.
#[test]
fn builder_pipes_and_environment() {
    if !require_jobs("builder_pipes_and_environment") {
        return;
    }
    let job = create(&anonymous_options());
    let mut child = builder_child("echo:JOBOBJECT_TEST_VALUE")
        .env("JOBOBJECT_TEST_VALUE", "from the builder")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn(&job)
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through the pipe")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    // The test harness prints its own header to stdout first.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.ends_with("through the pipe"), "{stdout:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "from the builder");
}

/// A program that does not exist is `ProgramNotFound`, naming it, and nothing is left in the
/// job.
#[test]
fn builder_reports_a_missing_program() {
    if !require_jobs("builder_reports_a_missing_program") {
        return;
    }
    let job = create(&anonymous_options());
    let err = Command::new("jobobject-surely-missing-program")
        .spawn(&job)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProgramNotFound, "{err}");
    assert!(err.to_string().contains("jobobject-surely-missing-program"));
    assert!(job.pids().unwrap().is_empty());
}

/// Arguments reach the child exactly, however they are spelled (on Windows the builder
/// quotes them on one command line, which the child's runtime splits again).
#[test]
fn builder_passes_arguments_exactly() {
    if !require_jobs("builder_passes_arguments_exactly") {
        return;
    }
    let job = create(&anonymous_options());
    let args = [
        "plain",
        "two words",
        "",
        "a \"quoted\" word",
        r"back\slash\",
        r"C:\dir with space\",
        "tab\tinside",
        "trailing ",
        r#"\"leading"#,
    ];
    let output = builder_child("args")
        .args(args)
        .stdout(Stdio::piped())
        .spawn(&job)
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let got: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ARG "))
        .collect();
    let expected: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    assert_eq!(got, expected, "{text}");
}
