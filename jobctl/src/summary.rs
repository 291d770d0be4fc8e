//! The resource summary `jobctl run` prints at the end: for people on stderr, or as JSON.

use std::time::Duration;

use serde_json::{Value, json};

use crate::output;
use crate::signals;
use crate::units;

/// How the command ended, and what the job used.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub command: Vec<String>,
    pub job: String,
    /// The command's exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended the command, when one did.
    pub signal: Option<i32>,
    /// jobctl's own exit status.
    pub status: i32,
    /// The `--timeout` that ran out, if it did.
    pub timed_out: Option<Duration>,
    /// The signal sent to the job at the timeout (none: it was killed at once).
    pub timeout_signal: Option<i32>,
    /// jobctl killed the job at the timeout, or after the grace period that followed.
    pub killed_at_timeout: bool,
    pub wall: Duration,
    pub user: Option<Duration>,
    pub kernel: Option<Duration>,
    pub memory_peak: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Disk I/O, `None` where it cannot be counted.
    pub io: Option<Io>,
    /// The most processes in the job at once.
    pub processes_peak: u64,
    /// Processes left behind by the command and killed at the end.
    pub leftovers_killed: usize,
    /// Processes left behind and left running (`--keep`).
    pub leftovers_kept: usize,
    pub oom_kills: u64,
    pub memory_limit_hits: u64,
    pub process_limit_hits: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Io {
    pub read_bytes: u64,
    pub read_operations: u64,
    pub write_bytes: u64,
    pub write_operations: u64,
}

impl Summary {
    /// The first line: how the command ended, when, and jobctl's status.
    fn headline(&self) -> String {
        let program = self
            .command
            .first()
            .map(String::as_str)
            .unwrap_or("command");
        let wall = units::duration(self.wall);
        let how = if let Some(timeout) = self.timed_out {
            let timeout = units::duration(timeout);
            match (self.timeout_signal, self.killed_at_timeout) {
                (None, _) => format!("timed out after {timeout}: job killed"),
                (Some(signal), true) => format!(
                    "timed out after {timeout}: sent {}, then killed what was left",
                    signals::name(signal)
                ),
                (Some(signal), false) => format!(
                    "timed out after {timeout}: sent {}, and every process ended",
                    signals::name(signal)
                ),
            }
        } else {
            match (self.code, self.signal) {
                (_, Some(signal)) => format!("killed by {} after {wall}", signals::name(signal)),
                (Some(code), None) => format!("exited with status {code} after {wall}"),
                (None, None) => format!("ended after {wall}"),
            }
        };
        format!(
            "jobctl: {} {how} (status {}, job {})",
            output::escape(program),
            self.status,
            output::escape(&self.job)
        )
    }

    /// The summary for people, several short lines.
    pub fn human(&self) -> String {
        let mut lines = vec![self.headline()];
        let time = |t: Option<Duration>| t.map_or("?".to_owned(), units::duration);
        lines.push(format!(
            "  cpu        {} user, {} kernel",
            time(self.user),
            time(self.kernel)
        ));
        let memory = match (self.memory_peak, self.memory_limit) {
            (Some(peak), Some(limit)) => {
                format!(
                    "{} peak (limit {})",
                    units::bytes(peak),
                    units::bytes(limit)
                )
            }
            (Some(peak), None) => format!("{} peak", units::bytes(peak)),
            (None, _) => "unavailable".to_owned(),
        };
        lines.push(format!("  memory     {memory}"));
        lines.push(format!(
            "  io         {}",
            match self.io {
                Some(io) => format!(
                    "read {} ({} ops), wrote {} ({} ops)",
                    units::bytes(io.read_bytes),
                    io.read_operations,
                    units::bytes(io.write_bytes),
                    io.write_operations
                ),
                None => "unavailable (no I/O accounting for this job)".to_owned(),
            }
        ));
        let mut processes = format!("{} at most at once", self.processes_peak);
        if self.leftovers_killed > 0 {
            processes += &format!(", {} left behind and killed", self.leftovers_killed);
        }
        if self.leftovers_kept > 0 {
            processes += &format!(", {} left running (--keep)", self.leftovers_kept);
        }
        lines.push(format!("  processes  {processes}"));
        let mut hits = Vec::new();
        if self.oom_kills > 0 {
            hits.push(format!(
                "{} OOM kill{}",
                self.oom_kills,
                plural(self.oom_kills)
            ));
        }
        if self.memory_limit_hits > 0 {
            hits.push("memory limit reached".to_owned());
        }
        if self.process_limit_hits > 0 {
            hits.push("process limit refused a new process".to_owned());
        }
        if let Some(timeout) = self.timed_out {
            hits.push(format!("timeout ({})", units::duration(timeout)));
        }
        if !hits.is_empty() {
            lines.push(format!("  limits hit {}", hits.join(", ")));
        }
        lines.join("\n") + "\n"
    }

    /// The summary as one JSON object.
    pub fn json(&self) -> Value {
        let seconds = |t: Option<Duration>| t.map(|t| t.as_secs_f64());
        json!({
            "command": self.command,
            "job": self.job,
            "status": self.status,
            "exit_code": self.code,
            "signal": self.signal,
            "signal_name": self.signal.map(signals::name),
            "timed_out": self.timed_out.is_some(),
            "timeout_seconds": self.timed_out.map(|t| t.as_secs_f64()),
            "timeout_signal": self.timeout_signal.map(signals::name),
            "killed_at_timeout": self.killed_at_timeout,
            "wall_seconds": self.wall.as_secs_f64(),
            "user_seconds": seconds(self.user),
            "kernel_seconds": seconds(self.kernel),
            "memory_peak_bytes": self.memory_peak,
            "memory_limit_bytes": self.memory_limit,
            "io": self.io.map(|io| json!({
                "read_bytes": io.read_bytes,
                "read_operations": io.read_operations,
                "write_bytes": io.write_bytes,
                "write_operations": io.write_operations,
            })),
            "processes": {
                "peak": self.processes_peak,
                "left_behind_killed": self.leftovers_killed,
                "left_running": self.leftovers_kept,
            },
            "limit_hits": {
                "oom_kills": self.oom_kills,
                "memory_limit": self.memory_limit_hits,
                "process_limit": self.process_limit_hits,
                "timeout": self.timed_out.is_some(),
            },
        })
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_and_json_agree() {
        let summary = Summary {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            job: "anon-1-0".into(),
            code: Some(3),
            status: 3,
            wall: Duration::from_millis(1500),
            user: Some(Duration::from_millis(20)),
            kernel: Some(Duration::from_millis(10)),
            memory_peak: Some(3 << 20),
            memory_limit: Some(64 << 20),
            processes_peak: 2,
            leftovers_killed: 1,
            oom_kills: 1,
            ..Summary::default()
        };
        let text = summary.human();
        assert!(text.starts_with("jobctl: sh exited with status 3 after 1.50s"));
        assert!(text.contains("3 MiB peak (limit 64 MiB)"));
        assert!(text.contains("1 OOM kill"));
        assert!(text.contains("io         unavailable"));
        let value = summary.json();
        assert_eq!(value["status"], 3);
        assert_eq!(value["limit_hits"]["oom_kills"], 1);
        assert_eq!(value["io"], Value::Null);
        assert_eq!(value["processes"]["left_behind_killed"], 1);
    }
}
