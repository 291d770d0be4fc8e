//! When a job has emptied, and so when `AllProcessesExited` is due: the decisions alone, made
//! on what was read of the job, with no I/O. [`Shared`](super::Shared) reads the job
//! (`cgroup.events`, or the process list where nothing signals) and broadcasts what
//! [`Emptying`] says to.
//!
//! Three readers look at the job, each at moments of its own:
//! - the event thread, whenever inotify, a pidfd or a poll says the job may have changed
//!   ([`Emptying::changed`]), and when it finds the job deleted ([`Emptying::deleted`]);
//! - a spawn or assign, before its process enters ([`Emptying::arm`]);
//! - the same spawn or assign once it is done ([`Emptying::settle`]), or failed
//!   ([`Emptying::cancel`]).
//!
//! None of them sees every change: the kernel sends `cgroup.events` notifications late and at
//! most every 10 ms (one event may stand for a process's entry and its exit), and a read shows
//! the job as it is, not what it went through. So:
//! - An emptying is reported only while *armed*, that is when a process was seen in the job
//!   since the last report: however many readers see one emptying, it is reported once.
//! - `arm` reports an emptying that the event thread has not read yet: once the new process is
//!   in, the thread would read the job populated, and that emptying would be lost.
//! - While spawns or assigns are in flight, the event thread does not arm on their account: a
//!   spawn that fails after its child joined (exec failed) started nothing and reports
//!   nothing. `settle` arms instead, or reports its process's exit if the process has already
//!   left and nobody armed or reported since `arm` (the *generation*, bumped at every change
//!   of `armed`, tells). A `settle` that cannot read the job arms on the same condition: the
//!   event thread's next read then reports the exit, should it have happened.
//!
//! What no reader can tell:
//! - The order of an event thread's read against a process's entry that nobody saw: when an
//!   emptying is reported while a spawn is in flight, and its process has come and gone by
//!   `settle`, that one report stands for both. Reporting again could report one emptying
//!   twice (the process may have left before the read). So emptyings that overlap a spawn or
//!   assign may be merged into one report, which always comes after the spawn or assign
//!   began.
//! - Whose processes make the job populated when `settle` reads it: its own process's
//!   children, or the child of another spawn in flight whose exec is about to fail. `settle`
//!   arms on them, as it must for the children (their exit is an emptying); should they be a
//!   failing child, its exit is reported as an emptying. That takes two spawns into one job
//!   at once, one failing to exec, the other's process gone before its `spawn` returned.
//!
//! Short of those, one emptying is never reported twice, and every emptying is reported.

/// The emptying state of one watched job.
#[derive(Debug, Default)]
pub(crate) struct Emptying {
    /// A process was seen in the job since the last `AllProcessesExited`.
    armed: bool,
    /// Bumped at every change of `armed`.
    generation: u64,
    /// Spawns and assigns between [`Emptying::arm`] and their settling.
    entering: usize,
}

/// A spawn or assign in flight: made by [`Emptying::arm`], consumed by [`Emptying::settle`] or
/// [`Emptying::cancel`].
#[derive(Debug)]
#[must_use = "an entry that is never settled keeps the event thread from arming the job"]
pub(crate) struct Entry {
    /// The generation when it began.
    generation: u64,
}

impl Emptying {
    /// The job's watch starts (or starts again), and the job reads `populated`.
    ///
    /// Not a change `settle` needs to know of (no new generation): a spawn in flight whose
    /// process has come and gone unseen still reports it.
    pub(crate) fn watch(&mut self, populated: bool) {
        self.armed = populated;
    }

    /// A process is about to enter the job. `populated` reads the job (`None`: not watched, or
    /// unreadable); it is called only when an emptying may be pending, which spares the common
    /// spawn a read.
    ///
    /// Returns the entry, for `settle` or `cancel`, and whether to report an emptying now (the
    /// job emptied since the last report, and the event thread has not read it yet).
    pub(crate) fn arm(&mut self, populated: impl FnOnce() -> Option<bool>) -> (Entry, bool) {
        self.entering += 1;
        let emptied = self.armed && populated() == Some(false) && self.report();
        let entry = Entry {
            generation: self.generation,
        };
        (entry, emptied)
    }

    /// A spawn or assign succeeded: its process is in the job, or has been and left.
    /// `populated` is what the job reads now (`None`: unreadable; or not watched, when nothing
    /// here matters until [`Emptying::watch`]). Returns whether to report an emptying.
    pub(crate) fn settle(&mut self, entry: Entry, populated: Option<bool>) -> bool {
        self.entering -= 1;
        match populated {
            None => {
                // Whether its process is still in is unknown: unless someone armed or reported
                // since `arm`, arm, so that the event thread's next read reports its exit (at
                // once where the process's pidfd could be had, else at the job's next change).
                if self.generation == entry.generation {
                    self.seen_populated();
                }
                false
            }
            Some(true) => {
                self.seen_populated();
                false
            }
            Some(false) => {
                // Its process has come and gone. Unless someone armed or reported since `arm`
                // (they saw it, or reported an emptying that may stand for it), nobody saw it.
                if self.generation == entry.generation {
                    self.armed = true;
                }
                self.report()
            }
        }
    }

    /// A spawn or assign failed: it put no process of its own in the job (a child whose exec
    /// failed was in it for a moment, and is no process to report).
    pub(crate) fn cancel(&mut self, entry: Entry) {
        let Entry { .. } = entry;
        self.entering -= 1;
    }

    /// The event thread read the job: `populated` or not. Returns whether to report an
    /// emptying.
    pub(crate) fn changed(&mut self, populated: bool) -> bool {
        if !populated {
            return self.report();
        }
        // While a process is entering, `settle` decides: it may be a child whose exec fails.
        if self.entering == 0 {
            self.seen_populated();
        }
        false
    }

    /// The event thread found the job deleted. A deleted job reads as empty (the kernel removes
    /// only empty cgroups): returns whether to report its last emptying, which comes before the
    /// end of the job's notifications.
    pub(crate) fn deleted(&mut self) -> bool {
        self.report()
    }

    /// Arms, if not armed yet.
    fn seen_populated(&mut self) {
        if !self.armed {
            self.armed = true;
            self.generation += 1;
        }
    }

    /// Disarms; returns whether there was an emptying to report.
    fn report(&mut self) -> bool {
        if !self.armed {
            return false;
        }
        self.armed = false;
        self.generation += 1;
        true
    }
}

#[cfg(test)]
mod tests;
