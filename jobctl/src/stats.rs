//! What a job uses now, read once: for `stats`, `list` and `top`.

use std::time::Duration;

use jobobject::{JobObject, Pressure, PressureLine, PressureStats};
use serde_json::{Value, json};

use crate::units;

/// One reading of a job; `None` where the system cannot say.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub processes: usize,
    pub user: Option<Duration>,
    pub kernel: Option<Duration>,
    pub page_faults: Option<u64>,
    pub memory: Option<u64>,
    pub memory_peak: Option<u64>,
    pub memory_limit: Option<u64>,
    pub swap: Option<u64>,
    pub pressure: Option<PressureStats>,
    pub private_memory: Option<u64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub read_operations: Option<u64>,
    pub write_operations: Option<u64>,
}

impl Snapshot {
    /// Reads `job`; turns on I/O accounting for this handle where the system has it.
    pub fn read(job: &JobObject) -> Snapshot {
        let mut snapshot = Snapshot {
            processes: job.pids().map(|p| p.len()).unwrap_or(0),
            ..Snapshot::default()
        };
        if let Ok(cpu) = job.processor_stats() {
            snapshot.user = Some(cpu.user_time);
            snapshot.kernel = Some(cpu.kernel_time);
            snapshot.page_faults = Some(cpu.page_faults);
        }
        if let Ok(memory) = job.memory_stats() {
            snapshot.memory = Some(memory.current);
            snapshot.memory_peak = Some(memory.peak);
            snapshot.memory_limit = memory.limit;
            snapshot.swap = memory.swap;
        }
        snapshot.private_memory = job.private_working_set().ok();
        snapshot.pressure = job.pressure_stats().ok();
        if job.set_io_tracking().is_ok() {
            if let Ok(io) = job.storage_stats() {
                snapshot.read_bytes = Some(io.read_bytes);
                snapshot.write_bytes = Some(io.write_bytes);
                snapshot.read_operations = Some(io.read_operations);
                snapshot.write_operations = Some(io.write_operations);
            }
        }
        snapshot
    }

    /// One resource's pressure for a table: `some 12.5% full 3.0% (10 s), 4.2s stalled`.
    fn pressure_text(&self, pick: impl Fn(&PressureStats) -> Pressure) -> String {
        let Some(pressure) = self.pressure.as_ref().map(pick) else {
            return "unavailable".to_owned();
        };
        let full = pressure
            .full
            .map_or(String::new(), |f| format!(" full {:.1}%", f.avg10));
        format!(
            "some {:.1}%{full} (last 10s), {} stalled in all",
            pressure.some.avg10,
            units::duration(pressure.some.total)
        )
    }

    /// User plus kernel CPU time (`None` also if the sum overflows: a counter gone wrong).
    pub fn cpu(&self) -> Option<Duration> {
        self.user?.checked_add(self.kernel?)
    }

    /// Bytes read plus written (`None` also if the sum overflows).
    pub fn io_bytes(&self) -> Option<u64> {
        self.read_bytes?.checked_add(self.write_bytes?)
    }

    /// (what, value) rows for `jobctl stats`.
    pub fn rows(&self) -> Vec<(String, String)> {
        let na = || "unavailable".to_owned();
        let time = |t: Option<Duration>| t.map_or_else(na, units::duration);
        let size = |b: Option<u64>| b.map_or_else(na, units::bytes);
        let count = |n: Option<u64>| n.map_or_else(na, |n| n.to_string());
        let row = |k: &str, v: String| (k.to_owned(), v);
        vec![
            row("processes", self.processes.to_string()),
            row("cpu user", time(self.user)),
            row("cpu kernel", time(self.kernel)),
            row("page faults", count(self.page_faults)),
            row("memory", size(self.memory)),
            row("memory peak", size(self.memory_peak)),
            row(
                "memory limit",
                self.memory.map_or_else(na, |_| {
                    self.memory_limit.map_or("-".to_owned(), units::bytes)
                }),
            ),
            row("swap", size(self.swap)),
            row("private memory", size(self.private_memory)),
            row("cpu pressure", self.pressure_text(|p| p.cpu)),
            row("memory pressure", self.pressure_text(|p| p.memory)),
            row("io pressure", self.pressure_text(|p| p.io)),
            row(
                "io read",
                match (self.read_bytes, self.read_operations) {
                    (Some(b), Some(n)) => format!("{} ({n} ops)", units::bytes(b)),
                    _ => na(),
                },
            ),
            row(
                "io written",
                match (self.write_bytes, self.write_operations) {
                    (Some(b), Some(n)) => format!("{} ({n} ops)", units::bytes(b)),
                    _ => na(),
                },
            ),
        ]
    }

    pub fn json(&self) -> Value {
        let seconds = |t: Option<Duration>| t.map(|t| t.as_secs_f64());
        json!({
            "processes": self.processes,
            "user_seconds": seconds(self.user),
            "kernel_seconds": seconds(self.kernel),
            "page_faults": self.page_faults,
            "memory_bytes": self.memory,
            "memory_peak_bytes": self.memory_peak,
            "memory_limit_bytes": self.memory_limit,
            "swap_bytes": self.swap,
            "private_memory_bytes": self.private_memory,
            "pressure": self.pressure.map(|p| json!({
                "cpu": pressure_json(&p.cpu),
                "memory": pressure_json(&p.memory),
                "io": pressure_json(&p.io),
            })),
            "io": {
                "read_bytes": self.read_bytes,
                "read_operations": self.read_operations,
                "write_bytes": self.write_bytes,
                "write_operations": self.write_operations,
            },
        })
    }
}

/// One resource's pressure as JSON: `some` and `full` (or `null`), each with the averages in
/// percent and the total stalled time in seconds.
fn pressure_json(pressure: &Pressure) -> Value {
    let line = |l: &PressureLine| {
        json!({
            "avg10": l.avg10,
            "avg60": l.avg60,
            "avg300": l.avg300,
            "total_seconds": l.total.as_secs_f64(),
        })
    };
    json!({
        "some": line(&pressure.some),
        "full": pressure.full.as_ref().map(line),
    })
}
