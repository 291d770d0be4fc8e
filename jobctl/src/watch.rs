//! `watch NAME`: one line per notification of the job, or JSON lines.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use jobobject::Notification;
use serde_json::{Value, json};

use crate::error::{CliError, CliResult};
use crate::output;
use crate::platform::{self, Global};

/// How often `watch` checks that the job still exists.
const CHECK: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The job's name
    pub name: String,
    /// Stop after this many notifications
    #[arg(long, short = 'n', value_name = "N", value_parser = crate::units::parse_count)]
    pub count: Option<u32>,
}

/// Streams the job's notifications until `--count` is reached, the job is deleted, or
/// Ctrl-C.
pub fn watch(global: &Global, args: &WatchArgs) -> CliResult<()> {
    let job = Arc::new(platform::open(global, &args.name, true)?);
    let (tx, rx) = mpsc::channel();
    let poller = Arc::clone(&job);
    std::thread::Builder::new()
        .name("jobctl-watch".into())
        .spawn(move || {
            loop {
                let result = poller.poll_notification();
                let stop = result.is_err();
                if tx.send(result).is_err() || stop {
                    return;
                }
            }
        })
        .map_err(|e| CliError::failure(format!("cannot start the watch thread: {e}")))?;
    // On stderr, also with --json: it tells a script that the watch has begun.
    output::note(&format!("watching job {} (Ctrl-C to stop)", args.name));
    let mut seen = 0u32;
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        match rx.recv_timeout(CHECK) {
            Ok(Ok(notification)) => {
                seen = seen.saturating_add(1);
                let (kind, text, mut value) = describe(notification);
                let time = utc_now();
                if global.json {
                    value["time"] = json!(time);
                    value["job"] = json!(args.name);
                    value["event"] = json!(kind);
                    output::json(&value);
                } else {
                    output::print(&format!("{time}  {text}\n"));
                }
            }
            Ok(Err(err)) => return Err(CliError::from_job(Some(&args.name), err)),
            Err(RecvTimeoutError::Timeout) => {
                if job.pids().is_err() {
                    return Err(CliError::failure(format!(
                        "job {} is gone (deleted while being watched)",
                        args.name
                    )));
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    job.close().ok();
    Ok(())
}

/// A notification as (kind, words, JSON fields).
pub fn describe(notification: Notification) -> (&'static str, String, Value) {
    use Notification as N;
    match notification {
        N::AllProcessesExited => (
            "all_processes_exited",
            "all processes exited".into(),
            json!({}),
        ),
        N::NewProcess { pid } => (
            "new_process",
            format!("process {pid} joined"),
            json!({ "pid": pid }),
        ),
        N::ProcessExited { pid, exit_code } => (
            "process_exited",
            format!("process {pid} exited with code {}", code_text(exit_code)),
            json!({ "pid": pid, "exit_code": exit_code }),
        ),
        N::AbnormalProcessExit { pid, exit_code } => (
            "abnormal_process_exit",
            format!(
                "process {pid} ended abnormally (code {})",
                code_text(exit_code)
            ),
            json!({ "pid": pid, "exit_code": exit_code }),
        ),
        N::JobMemoryLimit => (
            "job_memory_limit",
            "the job reached its memory limit".into(),
            json!({}),
        ),
        N::ProcessMemoryLimit { pid } => (
            "process_memory_limit",
            format!("process {pid} reached its memory limit"),
            json!({ "pid": pid }),
        ),
        N::OutOfMemoryKill => (
            "oom_kill",
            "a process was killed: the job ran out of memory (OOM kill)".into(),
            json!({}),
        ),
        N::ExternalOutOfMemoryKill => (
            "external_oom_kill",
            "a process was killed by an OOM kill outside the job's own limit (the host, or a \
             cgroup above the job, ran out of memory)"
                .into(),
            json!({}),
        ),
        N::OutOfMemoryGroupKill => (
            "oom_group_kill",
            "the job ran out of memory and the kernel killed all of it (OOM group kill)".into(),
            json!({}),
        ),
        N::ActiveProcessLimit => (
            "process_limit",
            "the process limit refused a new process".into(),
            json!({}),
        ),
        N::EndOfJobTime => (
            "end_of_job_time",
            "the job's CPU time ran out".into(),
            json!({}),
        ),
        N::EndOfProcessTime { pid } => (
            "end_of_process_time",
            format!("process {pid} ran out of CPU time"),
            json!({ "pid": pid }),
        ),
        _ => (
            "other",
            "a notification jobctl does not know".into(),
            json!({}),
        ),
    }
}

/// The time now as RFC 3339 UTC with milliseconds: `2024-05-01T12:34:56.789Z`.
pub fn utc_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_utc(since)
}

fn format_utc(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// An exit code, or `unknown` where it could not be read.
fn code_text(code: Option<u32>) -> String {
    code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc() {
        assert_eq!(format_utc(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_utc(Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_utc(Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59.000Z"
        );
    }
}
