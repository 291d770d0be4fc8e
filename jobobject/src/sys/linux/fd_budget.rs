//! The descriptors this crate holds for its own speed (pidfds, open counter files), counted
//! against a share of the caller's open-file limit: a process's open files are a budget its
//! caller shares (often 1024). Whatever does not fit falls back to a slower way that holds
//! nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One kind of held descriptor and how many of them may be held at once.
#[derive(Debug)]
pub(crate) struct FdBudget {
    held: AtomicUsize,
    /// The most held at once, whatever the limit.
    max: usize,
    /// At most 1/`share_of_limit` of the open-file limit (as it is at each reservation).
    share_of_limit: u64,
}

/// Descriptors counted against a budget until it drops.
#[derive(Debug)]
pub(crate) struct Reserved {
    budget: &'static FdBudget,
    count: usize,
}

impl FdBudget {
    pub(crate) const fn new(max: usize, share_of_limit: u64) -> Self {
        FdBudget {
            held: AtomicUsize::new(0),
            max,
            share_of_limit,
        }
    }

    /// Counts `count` descriptors, if they fit.
    pub(crate) fn reserve(&'static self, count: usize) -> Option<Reserved> {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let budget = usize::try_from(limit / self.share_of_limit)
            .unwrap_or(usize::MAX)
            .min(self.max);
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(count).filter(|&total| total <= budget)
            })
            .ok()
            .map(|_| Reserved {
                budget: self,
                count,
            })
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_return_on_drop() {
        static BUDGET: FdBudget = FdBudget::new(5, 1);
        let three = BUDGET.reserve(3).expect("3 of 5");
        assert!(BUDGET.reserve(3).is_none(), "6 of 5");
        let two = BUDGET.reserve(2).expect("5 of 5");
        assert!(BUDGET.reserve(1).is_none());
        drop(three);
        assert!(BUDGET.reserve(3).is_some());
        drop(two);
        assert_eq!(BUDGET.held.load(Ordering::Relaxed), 0);
    }
}
