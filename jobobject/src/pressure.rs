//! Pressure: how much of the time a job's processes were held up waiting for a resource, and
//! a notification when that crosses a threshold.

use std::time::Duration;

use crate::{Error, JobObject, Result};

/// A resource whose pressure is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PressureResource {
    /// Runnable processes waiting for a CPU (also for the job's CPU cap).
    Cpu,
    /// Processes waiting for memory: reclaim, swap-in, refaults of pages thrown out.
    Memory,
    /// Processes waiting for disk I/O.
    Io,
}

impl PressureResource {
    /// The resource's name as the kernel's files have it: `cpu`, `memory`, `io`.
    pub fn name(self) -> &'static str {
        match self {
            PressureResource::Cpu => "cpu",
            PressureResource::Memory => "memory",
            PressureResource::Io => "io",
        }
    }
}

/// One line of pressure: the share of wall time in which at least one process of the job
/// (`some`), or all of its non-idle processes at once (`full`), were stalled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct PressureLine {
    /// Percent of the last 10 seconds (a running average).
    pub avg10: f64,
    /// Percent of the last 60 seconds.
    pub avg60: f64,
    /// Percent of the last 300 seconds.
    pub avg300: f64,
    /// Time stalled since the job began.
    pub total: Duration,
}

/// The pressure on one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Pressure {
    /// Time in which at least one process was stalled.
    pub some: PressureLine,
    /// Time in which every non-idle process was stalled at once; `None` where the kernel
    /// does not say (CPU before Linux 5.13).
    pub full: Option<PressureLine>,
}

/// What [`JobObject::pressure_stats`] reports: the pressure on CPU, memory and I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct PressureStats {
    /// Processes waiting for a CPU.
    pub cpu: Pressure,
    /// Processes waiting for memory.
    pub memory: Pressure,
    /// Processes waiting for I/O.
    pub io: Pressure,
}

/// A threshold on pressure: the job is told (with [`Notification::Pressure`]) when its
/// processes were stalled on `resource` for at least `stall` within any `window`.
///
/// [`Notification::Pressure`]: crate::Notification::Pressure
///
/// ```
/// use std::time::Duration;
/// use jobobject::{PressureResource, PressureTrigger};
///
/// // 150 ms of memory stall within a second.
/// let trigger = PressureTrigger::new(
///     PressureResource::Memory,
///     Duration::from_millis(150),
///     Duration::from_secs(1),
/// );
/// assert!(!trigger.full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PressureTrigger {
    /// The resource.
    pub resource: PressureResource,
    /// Count the time in which every process was stalled at once, instead of at least one.
    pub full: bool,
    /// The stall time that fires it, more than zero and at most `window`.
    pub stall: Duration,
    /// The time window: 500 ms to 10 s (the kernel's bounds).
    pub window: Duration,
}

/// The kernel's bounds on a trigger's window.
const MIN_WINDOW: Duration = Duration::from_millis(500);
const MAX_WINDOW: Duration = Duration::from_secs(10);

impl PressureTrigger {
    /// A trigger on the time at least one process was stalled on `resource`.
    pub fn new(resource: PressureResource, stall: Duration, window: Duration) -> Self {
        PressureTrigger {
            resource,
            full: false,
            stall,
            window,
        }
    }

    /// The same trigger on the time every process was stalled at once.
    pub fn full(mut self) -> Self {
        self.full = true;
        self
    }

    /// Checks the values against the kernel's bounds.
    pub(crate) fn check(&self) -> Result<()> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window) {
            return Err(Error::invalid(format!(
                "a pressure trigger's window must be 500ms to 10s, got {:?}",
                self.window
            )));
        }
        if self.stall.is_zero() || self.stall > self.window {
            return Err(Error::invalid(format!(
                "a pressure trigger's stall must be more than 0 and at most its window ({:?}), \
                 got {:?}",
                self.window, self.stall
            )));
        }
        Ok(())
    }
}

impl JobObject {
    /// The pressure on the job's processes: how much of the time they were held up waiting
    /// for a CPU, for memory or for I/O (Linux's pressure stall information, PSI).
    ///
    /// Linux: the job's v2 `cpu.pressure`, `memory.pressure` and `io.pressure` (also on a
    /// hybrid host's unified mount), with PSI in the kernel (Linux 4.20+, not booted with
    /// `psi=0`); elsewhere [`Error::Unsupported`](crate::Error::Unsupported), as on a v1-only
    /// host and on Windows, which keep no such measure.
    ///
    /// ```
    /// use jobobject::{JobObject, Options};
    ///
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let job = JobObject::create(&Options::default())?;
    /// match job.pressure_stats() {
    ///     Ok(pressure) => assert!(pressure.cpu.some.avg10 >= 0.0),
    ///     Err(jobobject::Error::Unsupported { .. }) => {}
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn pressure_stats(&self) -> Result<PressureStats> {
        self.inner.pressure_stats()
    }

    /// Adds a pressure trigger: [`Notification::Pressure`] each time the job's processes
    /// were stalled on the trigger's resource for its `stall` within its `window` (at most
    /// once per window). Needs [`Options::notifications`](crate::Options::notifications),
    /// else it is [`Error::NotRegistered`](crate::Error::NotRegistered); the trigger lasts
    /// until the handle is closed (all handles of this process to the job share it). Any
    /// number of triggers may be added; the event thread serves them all.
    ///
    /// Linux: the kernel's PSI triggers on the job's pressure files (where
    /// [`pressure_stats`](Self::pressure_stats) works; a process without `CAP_SYS_RESOURCE`
    /// needs a window that is a multiple of 2 s); elsewhere
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// [`Notification::Pressure`]: crate::Notification::Pressure
    pub fn add_pressure_trigger(&self, trigger: &PressureTrigger) -> Result<()> {
        trigger.check()?;
        self.inner.add_pressure_trigger(trigger)
    }
}
