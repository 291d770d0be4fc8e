//! What works here: each feature tried on a throwaway job, and the facts that explain it.

use std::time::Duration;

use crate::{CpuLimit, JobObject, Options, PressureResource, PressureTrigger, Result, sys};

/// One feature, as [`Capabilities::probe`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capability {
    /// The feature's name: one of [`Capabilities::NAMES`].
    pub name: &'static str,
    /// It worked on the throwaway job.
    pub available: bool,
    /// How it works here, or why it does not (the library's error).
    pub detail: String,
}

/// What this process can do with jobs on this host: each feature tried on a throwaway
/// anonymous job, and facts about the system that explain the answers.
///
/// ```
/// use jobobject::{Capabilities, Options};
///
/// let found = Capabilities::probe(&Options::default());
/// for feature in &found.features {
///     println!("{:20} {} {}", feature.name, feature.available, feature.detail);
/// }
/// assert!(found.get("jobs").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Facts about the system, as (what, value): on Linux the cgroup layout, the kernel, the
    /// job parent, the controllers it offers jobs; on Windows the system.
    pub facts: Vec<(String, String)>,
    /// Every feature of [`NAMES`](Self::NAMES), in that order.
    pub features: Vec<Capability>,
}

/// How long a probe's pressure trigger may look back: 2 s, which a process without
/// privileges may use too.
const TRIGGER_WINDOW: Duration = Duration::from_secs(2);

type Probe = fn(&JobObject) -> Result<String>;

/// The features and how each is tried.
const PROBES: [(&str, Probe); 17] = [
    ("notifications", |_| {
        Ok("the job's emptying and limit events".into())
    }),
    ("terminate", |_| Ok(sys::describe_kill().into())),
    ("memory_limit", |job| {
        set_and_read(
            job,
            |j| j.set_memory_limit(Some(64 << 20)),
            JobObject::memory_limit,
        )
    }),
    ("memory_high", |job| {
        set_and_read(
            job,
            |j| j.set_memory_high(Some(64 << 20)),
            JobObject::memory_high,
        )
    }),
    ("swap_limit", |job| {
        set_and_read(
            job,
            |j| j.set_swap_limit(Some(64 << 20)),
            JobObject::swap_limit,
        )
    }),
    ("oom_group_kill", |job| {
        job.set_oom_group_kill(true)?;
        Ok(format!("reads back {}", job.oom_group_kill()?))
    }),
    ("cpu_rate", |job| {
        set_and_read(
            job,
            |j| j.set_cpu_limit(Some(CpuLimit::Rate(5_000))),
            JobObject::cpu_limit,
        )
    }),
    ("cpu_weight", |job| {
        set_and_read(
            job,
            |j| j.set_cpu_limit(Some(CpuLimit::Weight(7))),
            JobObject::cpu_limit,
        )
    }),
    ("cpu_affinity", |job| {
        set_and_read(
            job,
            |j| j.set_cpu_affinity(Some(1)),
            JobObject::cpu_affinity,
        )
    }),
    ("io_limits", |job| {
        set_and_read(
            job,
            |j| j.set_io_limit(Some(1 << 30), Some(10_000)),
            JobObject::io_max_bandwidth_limit,
        )
    }),
    ("process_limit", |job| {
        set_and_read(
            job,
            |j| j.set_max_processes(Some(100)),
            JobObject::max_processes,
        )
    }),
    ("io_statistics", |job| {
        job.set_io_tracking()?;
        job.storage_stats()?;
        Ok("bytes and operations read and written".into())
    }),
    ("memory_peak_reset", |job| {
        job.reset_memory_peak()?;
        Ok("the peak starts again from the current use".into())
    }),
    ("freeze", |job| {
        job.freeze()?;
        let frozen = job.is_frozen()?;
        job.thaw()?;
        match frozen {
            true => Ok("frozen and thawed".into()),
            false => Ok("the freeze did not show".into()),
        }
    }),
    ("pressure", |job| {
        let pressure = job.pressure_stats()?;
        Ok(format!(
            "CPU, memory and I/O (cpu some {:.1}%)",
            pressure.cpu.some.avg10
        ))
    }),
    ("pressure_triggers", |job| {
        let trigger = PressureTrigger::new(
            PressureResource::Memory,
            Duration::from_millis(100),
            TRIGGER_WINDOW,
        );
        job.add_pressure_trigger(&trigger)?;
        Ok("notifications when a stall crosses a threshold".into())
    }),
    ("spawn_into_job", |_| Ok(sys::describe_spawn().into())),
];

/// Sets a limit on the job and reads it back: available only if it holds.
fn set_and_read<T: std::fmt::Debug>(
    job: &JobObject,
    set: impl Fn(&JobObject) -> Result<()>,
    read: impl Fn(&JobObject) -> Result<Option<T>>,
) -> Result<String> {
    set(job)?;
    match read(job)? {
        Some(value) => Ok(format!("set and read back ({value:?})")),
        None => Err(crate::Error::Unsupported {
            what: "the limit was accepted but does not read back".into(),
        }),
    }
}

impl Capabilities {
    /// The names of the features, in the order [`probe`](Self::probe) lists them: `jobs`
    /// (a job can be made, with its options' parent), then each feature tried on it.
    pub const NAMES: [&'static str; 18] = [
        "jobs",
        "notifications",
        "terminate",
        "memory_limit",
        "memory_high",
        "swap_limit",
        "oom_group_kill",
        "cpu_rate",
        "cpu_weight",
        "cpu_affinity",
        "io_limits",
        "process_limit",
        "io_statistics",
        "memory_peak_reset",
        "freeze",
        "pressure",
        "pressure_triggers",
        "spawn_into_job",
    ];

    /// Tries every feature on a throwaway anonymous job made with `options` (its name is
    /// ignored; on Linux its cgroup parent decides where the job is made), which is removed
    /// before this returns; a feature is available when it worked there. Nothing else is
    /// changed. Where no job can be made at all, every feature says why.
    pub fn probe(options: &Options) -> Capabilities {
        let mut options = options.clone().notifications(true);
        options.name = None;
        let job = match JobObject::create(&options) {
            Ok(job) => job,
            Err(err) => {
                let facts = sys::facts(None);
                let features = Self::NAMES
                    .iter()
                    .map(|&name| Capability {
                        name,
                        available: false,
                        detail: err.to_string(),
                    })
                    .collect();
                return Capabilities { facts, features };
            }
        };
        let facts = sys::facts(Some(&job));
        let mut features = vec![Capability {
            name: "jobs",
            available: true,
            detail: "a job can be made here".into(),
        }];
        for (name, probe) in PROBES {
            let (available, detail) = match probe(&job) {
                Ok(detail) => (true, detail),
                Err(err) => (false, err.to_string()),
            };
            features.push(Capability {
                name,
                available,
                detail,
            });
        }
        job.close().ok();
        Capabilities { facts, features }
    }

    /// The feature named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Capability> {
        self.features.iter().find(|f| f.name == name)
    }
}
