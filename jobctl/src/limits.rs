//! The limit options shared by `run`, `create` and `limits`, and how a job's limits are
//! shown.

use clap::Args;
use jobobject::{CpuLimit, CpuSet, Error, JobLimits, JobObject, Limit};
use serde_json::{Value, json};

use crate::error::{CliError, CliResult};
use crate::units;

/// Limits in human units. Each takes `none` too, which removes that limit.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory for the whole job: 512M, 2G, 1.5GiB (K/M/G/T/P and KiB..PiB are powers of 1024,
    /// KB..PB powers of 1000), or none
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| units::limit(s, units::parse_memory))]
    pub memory: Option<Limit<u64>>,
    /// Soft memory limit: above it the job is slowed and reclaimed, not killed (Linux cgroup
    /// v2): 256M, or none
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| units::limit(s, units::parse_memory))]
    pub memory_high: Option<Limit<u64>>,
    /// Swap the job may use (Linux cgroup v2): 1G, 0 for none at all, or none for no limit
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| units::limit(s, units::parse_swap))]
    pub swap: Option<Limit<u64>>,
    /// When the job runs out of memory, kill all of it, not one process (Linux cgroup v2):
    /// on (the default when given without a value) or off
    #[arg(long, value_name = "on|off", num_args = 0..=1, require_equals = true, default_missing_value = "on", value_parser = units::parse_on_off)]
    pub oom_group: Option<bool>,
    /// CPU cap, as a percentage of all the host's CPUs: 25% (0.01% steps), or none
    #[arg(long, value_name = "PERCENT", value_parser = |s: &str| units::limit(s, units::parse_percent), conflicts_with = "cpu_weight")]
    pub cpu_rate: Option<Limit<u32>>,
    /// Relative CPU weight under contention: 1 (least) to 9 (most), 5 being the default; or
    /// none
    #[arg(long, value_name = "1-9", value_parser = |s: &str| units::limit(s, units::parse_weight))]
    pub cpu_weight: Option<Limit<u32>>,
    /// The CPUs the job may run on: 0,2-3 (any CPU number), or none
    #[arg(long, value_name = "LIST", value_parser = |s: &str| units::limit(s, units::parse_cpu_set))]
    pub cpus: Option<Limit<CpuSet>>,
    /// Disk bandwidth, bytes per second on each disk: 10M, or none
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| units::limit(s, units::parse_bandwidth))]
    pub io_bandwidth: Option<Limit<u64>>,
    /// Disk operations per second on each disk: 500, or none
    #[arg(long, value_name = "N", value_parser = |s: &str| units::limit(s, units::parse_count))]
    pub io_iops: Option<Limit<u32>>,
    /// The most processes alive in the job at once, or none
    #[arg(long, value_name = "N", value_parser = |s: &str| units::limit(s, units::parse_count))]
    pub max_processes: Option<Limit<u32>>,
}

impl LimitArgs {
    /// Whether no limit was given.
    pub fn is_empty(&self) -> bool {
        self.job_limits() == JobLimits::default() && self.oom_group.is_none() && self.cpus.is_none()
    }

    /// The library's form: a limit not given is kept.
    pub fn job_limits(&self) -> JobLimits {
        let cpu = match (self.cpu_rate, self.cpu_weight) {
            (Some(rate), _) => rate.map(CpuLimit::Rate),
            (None, Some(weight)) => weight.map(CpuLimit::Weight),
            (None, None) => Limit::Keep,
        };
        let mut limits = JobLimits::new();
        limits.cpu = cpu;
        // A set beyond the first 64 CPUs is set on its own (see `apply`).
        limits.cpu_affinity = match &self.cpus {
            Some(Limit::Set(set)) => set.mask().map_or(Limit::Keep, Limit::Set),
            Some(Limit::Clear) => Limit::Clear,
            Some(Limit::Keep) | None => Limit::Keep,
        };
        limits.memory = self.memory.unwrap_or_default();
        limits.memory_high = self.memory_high.unwrap_or_default();
        limits.swap = self.swap.unwrap_or_default();
        limits.io_bandwidth = self.io_bandwidth.unwrap_or_default();
        limits.io_iops = self.io_iops.unwrap_or_default().map(u64::from);
        limits.max_processes = self.max_processes.unwrap_or_default();
        limits
    }

    /// Applies the limits to `job` (all checked first, by the library).
    pub fn apply(&self, job: &JobObject, name: &str) -> CliResult<()> {
        if self.is_empty() {
            return Ok(());
        }
        job.set_resource_limits(&self.job_limits())
            .map_err(|e| CliError::from_job(Some(name), e))?;
        if let Some(Limit::Set(set)) = &self.cpus {
            if set.mask().is_none() {
                job.set_cpu_set(Some(set))
                    .map_err(|e| CliError::from_job(Some(name), e))?;
            }
        }
        if let Some(all) = self.oom_group {
            job.set_oom_group_kill(all)
                .map_err(|e| CliError::from_job(Some(name), e))?;
        }
        Ok(())
    }
}

/// A job's limits as read back; `None` where unset, an error text where unreadable.
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub cpu_rate: Reading<u32>,
    pub cpu_weight: Reading<u32>,
    pub cpus: Reading<CpuSet>,
    pub memory: Reading<u64>,
    pub memory_high: Reading<u64>,
    pub swap: Reading<u64>,
    pub oom_group: Reading<bool>,
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

impl<T: Clone> Reading<T> {
    fn from(result: Result<Option<T>, Error>) -> Self {
        match result {
            Ok(Some(v)) => Reading::Set(v),
            Ok(None) => Reading::Unset,
            Err(_) => Reading::Unavailable,
        }
    }

    fn json(&self, value: impl Fn(T) -> Value) -> Value {
        match self {
            Reading::Set(v) => value(v.clone()),
            _ => Value::Null,
        }
    }

    fn text(&self, show: impl Fn(T) -> String) -> String {
        match self {
            Reading::Set(v) => show(v.clone()),
            Reading::Unset => "-".to_owned(),
            Reading::Unavailable => "unavailable".to_owned(),
        }
    }
}

/// Reads every limit of `job`.
pub fn read(job: &JobObject) -> Current {
    let cpu = job.cpu_limit();
    let kind = |pick: fn(CpuLimit) -> Option<u32>| match &cpu {
        Ok(limit) => Reading::from(Ok(limit.and_then(pick))),
        Err(_) => Reading::Unavailable,
    };
    Current {
        cpu_rate: kind(|l| match l {
            CpuLimit::Rate(rate) => Some(rate),
            CpuLimit::Weight(_) => None,
        }),
        cpu_weight: kind(|l| match l {
            CpuLimit::Weight(weight) => Some(weight),
            CpuLimit::Rate(_) => None,
        }),
        cpus: Reading::from(job.cpu_set()),
        memory: Reading::from(job.memory_limit()),
        memory_high: Reading::from(job.memory_high()),
        swap: Reading::from(job.swap_limit()),
        oom_group: Reading::from(job.oom_group_kill().map(Some)),
        io_bandwidth: Reading::from(job.io_max_bandwidth_limit()),
        io_iops: Reading::from(job.io_max_iops_limit()),
        max_processes: Reading::from(job.max_processes()),
    }
}

impl Current {
    /// Rows of (limit, value) for a table.
    pub fn rows(&self) -> Vec<(String, String)> {
        let row = |k: &str, v: String| (k.to_owned(), v);
        vec![
            row("cpu rate", self.cpu_rate.text(units::percent)),
            row("cpu weight", self.cpu_weight.text(|w| w.to_string())),
            row("cpus", self.cpus.text(|set| set.to_string())),
            row("memory", self.memory.text(units::bytes)),
            row("memory high", self.memory_high.text(units::bytes)),
            row("swap", self.swap.text(units::bytes)),
            row(
                "oom group kill",
                self.oom_group
                    .text(|on| if on { "on" } else { "off" }.to_owned()),
            ),
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
        if let Reading::Set(m) = self.memory_high {
            parts.push(format!("high {}", units::bytes(m)));
        }
        if let Reading::Set(m) = self.swap {
            parts.push(format!("swap {}", units::bytes(m)));
        }
        if let Reading::Set(true) = self.oom_group {
            parts.push("oom-group".to_owned());
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
            "cpus": self.cpus.json(|set| json!(set.to_string())),
            "cpu_affinity_mask": self.cpus.json(|set| json!(set.mask())),
            "memory_bytes": self.memory.json(|m| json!(m)),
            "memory_high_bytes": self.memory_high.json(|m| json!(m)),
            "swap_bytes": self.swap.json(|m| json!(m)),
            "oom_group_kill": self.oom_group.json(|on| json!(on)),
            "io_bandwidth_bytes_per_second": self.io_bandwidth.json(|b| json!(b)),
            "io_iops": self.io_iops.json(|n| json!(n)),
            "max_processes": self.max_processes.json(|n| json!(n)),
        })
    }
}
