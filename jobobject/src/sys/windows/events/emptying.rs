//! When a job emptied, decided from its accounting rather than from its messages alone.
//!
//! Windows does not guarantee that a job's messages reach the port. So every report of
//! `AllProcessesExited` is backed by the job's own counts (`TotalProcesses`, which only grows,
//! and `ActiveProcesses`), read when a ZERO comes and on the thread's own checks:
//!
//! - **The count says so.** With no process active and more processes counted than had exited
//!   at the last report, every one of them has exited since: an emptying not yet reported.
//!   Reported at once when an ACTIVE_PROCESS_ZERO brings it. When a check finds it (its ZERO
//!   was lost), it is reported once the port is drained, so that the job's pending exit
//!   messages come first; a ZERO still on its way is then expected, and not news.
//! - **The ZERO says so.** A ZERO that finds the job busy again marks an emptying that a new
//!   process followed before the thread looked. It is news if no report waits for its ZERO,
//!   and every process counted at the last report has exited since (as they had at that
//!   emptying).
//!
//! The port keeps a job's messages in order and sends each once; what it may do is lose them,
//! and the counts are always ahead of the messages. Under those conditions no emptying is
//! reported twice, the last one is always reported, and so is every one the thread looks at
//! before the next begins, or that its ZERO brings. Emptyings are merged (one report) only when
//! one ended and a new process came before the thread looked, and its ZERO was lost, or came
//! while the lost ZERO of an earlier report was still expected.
//!
//! Kept free of system calls (the counts are passed in), so that its tests can replay any
//! order of messages and counts; they run on every platform.

use std::time::{Duration, Instant};

/// How long a job must stay without processes, its emptying not yet reported, before a check
/// reports it: its ZERO, or an exit message still on its way, comes first.
pub(super) const GRACE: Duration = Duration::from_millis(100);
/// How long a check waits for the port to be drained before it reports anyway (a port that
/// other jobs keep busy).
const MOST_DEFERRED: Duration = Duration::from_secs(2);

/// A job's process counts, read together from its accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counts {
    /// Processes ever in the job.
    pub(super) total: u32,
    /// Processes in the job now.
    pub(super) active: u32,
}

impl Counts {
    /// Processes that were in the job and have exited.
    fn exited(self) -> u32 {
        self.total.saturating_sub(self.active)
    }
}

/// What the thread knows of a job's emptyings.
#[derive(Debug, Clone)]
pub(super) struct Emptying {
    /// Processes accounted for: those that had exited at the last report (or when the job
    /// began to be watched).
    accounted: u32,
    /// Processes counted at the last report: all of them are gone at the next emptying.
    counted: u32,
    /// ZEROs of emptyings that checks reported, which may still come.
    late_zeros: u32,
    /// When the last of those was reported: a ZERO not come by `GRACE` after it was lost.
    late_since: Option<Instant>,
    /// When a check first found the job empty with an emptying not yet reported.
    empty_since: Option<Instant>,
}

impl Emptying {
    /// Starts from the job's counts when it began to be watched: the processes already gone
    /// are not news, those still there will be.
    pub(super) fn new(counts: Counts) -> Self {
        Emptying {
            accounted: counts.exited(),
            counted: counts.total,
            late_zeros: 0,
            late_since: None,
            empty_since: None,
        }
    }

    /// An ACTIVE_PROCESS_ZERO came, and the counts were read after it: whether it reports an
    /// emptying.
    pub(super) fn on_zero(&mut self, counts: Counts) -> bool {
        if counts.active == 0 {
            if self.unaccounted(counts) {
                self.report(counts);
                return true;
            }
            // The ZERO of an emptying already reported.
            self.late_zeros = self.late_zeros.saturating_sub(1);
            return false;
        }
        if self.late_zeros > 0 {
            self.late_zeros -= 1;
            return false;
        }
        let exited = counts.exited();
        if exited <= self.accounted || exited < self.counted {
            return false;
        }
        // Emptied, then a new process came before the thread looked.
        self.report(counts);
        true
    }

    /// A check of the counts, at `now`, with the port drained (`idle`) or not: whether it
    /// reports an emptying.
    pub(super) fn on_check(&mut self, counts: Counts, now: Instant, idle: bool) -> bool {
        if self
            .late_since
            .is_some_and(|since| idle && now >= since + GRACE)
        {
            // Every message sent by then has come: the expected ZEROs were lost.
            self.late_zeros = 0;
            self.late_since = None;
        }
        if !self.unaccounted(counts) {
            self.empty_since = None;
            return false;
        }
        let since = *self.empty_since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if (idle && waited >= GRACE) || waited >= MOST_DEFERRED {
            self.report(counts);
            self.late_zeros += 1;
            self.late_since = Some(now);
            return true;
        }
        false
    }

    /// When a check is due for what this knows: an emptying waiting for its grace period, or
    /// expected ZEROs that are lost if not come by then.
    pub(super) fn due(&self) -> Option<Instant> {
        let waiting = self.empty_since.map(|since| since + GRACE);
        let late = self.late_since.map(|since| since + GRACE);
        waiting.into_iter().chain(late).min()
    }

    /// Processes have come and all gone since the last report.
    fn unaccounted(&self, counts: Counts) -> bool {
        counts.active == 0 && counts.total > self.accounted
    }

    fn report(&mut self, counts: Counts) {
        self.accounted = counts.exited();
        self.counted = counts.total;
        self.empty_since = None;
    }
}

#[cfg(test)]
mod tests;
