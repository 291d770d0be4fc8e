//! The limit options shared by `run`, `create` and `limits`, and how a job's limits are
//! shown.

use clap::Args;
use jobobject::{CpuRateControlType, Error, JobLimits, JobObject};
use serde_json::{Value, json};

use crate::error::{CliError, CliResult};
use crate::units;

/// Limits in human units.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory for the whole job: 512M, 2G, 1.5GiB (K/M/G/T/P and KiB..PiB are powers of 1024,
    /// KB..PB powers of 1000)
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub memory: Option<u64>,
    /// CPU cap, as a percentage of all the host's CPUs: 25% (0.01% steps)
    #[arg(long, value_name = "PERCENT", value_parser = units::parse_percent, conflicts_with = "cpu_weight")]
    pub cpu_rate: Option<u32>,
    /// Relative CPU weight under contention: 1 (least) to 9 (most); 5 is the default
    #[arg(long, value_name = "1-9", value_parser = units::parse_weight)]
    pub cpu_weight: Option<u32>,
    /// The CPUs the job may run on: 0,2-3
    #[arg(long, value_name = "LIST", value_parser = units::parse_cpu_list)]
    pub cpus: Option<u64>,
    /// Disk bandwidth, bytes per second on each disk: 10M
    #[arg(long, value_name = "SIZE", value_parser = units::parse_bandwidth)]
    pub io_bandwidth: Option<u64>,
    /// Disk operations per second on each disk: 500
    #[arg(long, value_name = "N", value_parser = units::parse_count)]
    pub io_iops: Option<u32>,
    /// The most processes alive in the job at once
    #[arg(long, value_name = "N", value_parser = units::parse_count)]
    pub max_processes: Option<u32>,
}

impl LimitArgs {
    /// Whether no limit was given.
    pub fn is_empty(&self) -> bool {
        self.job_limits() == JobLimits::default()
    }

    /// The library's form: zero leaves a limit as it is.
    pub fn job_limits(&self) -> JobLimits {
        JobLimits {
            cpu_limit: self.cpu_rate.unwrap_or(0),
            cpu_weight: self.cpu_weight.unwrap_or(0),
            cpu_affinity: self.cpus.unwrap_or(0),
            memory_limit_in_bytes: self.memory.unwrap_or(0),
            max_iops: i64::from(self.io_iops.unwrap_or(0)),
            max_bandwidth: self
                .io_bandwidth
                .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            max_processes: self.max_processes.unwrap_or(0),
        }
    }

    /// Applies the limits to `job` (all checked first, by the library).
    pub fn apply(&self, job: &JobObject, name: &str) -> CliResult<()> {
        if self.is_empty() {
            return Ok(());
        }
        job.set_resource_limits(&self.job_limits())
            .map_err(|e| CliError::from_job(Some(name), e))
    }
}

/// A job's limits as read back; `None` where unset, an error text where unreadable.
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub cpu_rate: Reading<u32>,
    pub cpu_weight: Reading<u32>,
    pub cpus: Reading<u64>,
    pub memory: Reading<u64>,
    pub io_bandwidth: Reading<u64>,
    pub io_iops: Reading<u64>,
    pub max_processes: Reading<u32>,
}

/// One limit read back.
#[derive(Debug, Clone, Default)]
pub enum Reading<T> {
    Set(T),
    #[default]
    Unset,
    /// The controller is missing, or the read failed.
    Unavailable,
}

impl<T: Copy> Reading<T> {
    fn from(result: Result<T, Error>, unset: impl Fn(&T) -> bool) -> Self {
        match result {
            Ok(v) if unset(&v) => Reading::Unset,
            Ok(v) => Reading::Set(v),
            Err(Error::NotSet { .. }) => Reading::Unset,
            Err(_) => Reading::Unavailable,
        }
    }

    fn json(&self, value: impl Fn(T) -> Value) -> Value {
        match self {
            Reading::Set(v) => value(*v),
            _ => Value::Null,
        }
    }

    fn text(&self, show: impl Fn(T) -> String) -> String {
        match self {
            Reading::Set(v) => show(*v),
            Reading::Unset => "-".to_owned(),
            Reading::Unavailable => "unavailable".to_owned(),
        }
    }
}

/// Reads every limit of `job`.
pub fn read(job: &JobObject) -> Current {
    let to_u64 = |r: Result<i64, Error>| r.map(|v| v.max(0) as u64);
    Current {
        cpu_rate: Reading::from(job.cpu_limit(CpuRateControlType::RateBased), |_| false),
        cpu_weight: Reading::from(job.cpu_limit(CpuRateControlType::WeightBased), |_| false),
        cpus: Reading::from(job.cpu_affinity(), |_| false),
        memory: Reading::from(job.memory_limit(), |_| false),
        io_bandwidth: Reading::from(to_u64(job.io_max_bandwidth_limit()), |v| *v == 0),
        io_iops: Reading::from(to_u64(job.io_max_iops_limit()), |v| *v == 0),
        max_processes: Reading::from(job.max_processes(), |_| false),
    }
}

impl Current {
    /// Rows of (limit, value) for a table.
    pub fn rows(&self) -> Vec<(String, String)> {
        let row = |k: &str, v: String| (k.to_owned(), v);
        vec![
            row("cpu rate", self.cpu_rate.text(units::percent)),
            row("cpu weight", self.cpu_weight.text(|w| w.to_string())),
            row("cpus", self.cpus.text(units::cpu_list)),
            row("memory", self.memory.text(units::bytes)),
            row(
                "io bandwidth",
                self.io_bandwidth.text(|b| format!("{}/s", units::bytes(b))),
            ),
            row("io iops", self.io_iops.text(|n| format!("{n}/s"))),
            row("max processes", self.max_processes.text(|n| n.to_string())),
        ]
    }

    /// The limits in a few words, for `list`: `mem 512 MiB, cpu 25%`.
    pub fn short(&self) -> String {
        let mut parts = Vec::new();
        if let Reading::Set(m) = self.memory {
            parts.push(format!("mem {}", units::bytes(m)));
        }
        if let Reading::Set(r) = self.cpu_rate {
            parts.push(format!("cpu {}", units::percent(r)));
        }
        if let Reading::Set(w) = self.cpu_weight {
            if w != 5 {
                parts.push(format!("weight {w}"));
            }
        }
        if let Reading::Set(n) = self.max_processes {
            parts.push(format!("procs {n}"));
        }
        if let Reading::Set(b) = self.io_bandwidth {
            parts.push(format!("io {}/s", units::bytes(b)));
        }
        if let Reading::Set(n) = self.io_iops {
            parts.push(format!("iops {n}"));
        }
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(", ")
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "cpu_rate": self.cpu_rate.json(|r| json!(r)),
            "cpu_rate_percent": self.cpu_rate.json(|r| json!(f64::from(r) / 100.0)),
            "cpu_weight": self.cpu_weight.json(|w| json!(w)),
            "cpus": self.cpus.json(|m| json!(units::cpu_list(m))),
            "cpu_affinity_mask": self.cpus.json(|m| json!(m)),
            "memory_bytes": self.memory.json(|m| json!(m)),
            "io_bandwidth_bytes_per_second": self.io_bandwidth.json(|b| json!(b)),
            "io_iops": self.io_iops.json(|n| json!(n)),
            "max_processes": self.max_processes.json(|n| json!(n)),
        })
    }
}
