use std::collections::VecDeque;

use super::*;

fn counts(total: u32, active: u32) -> Counts {
    Counts { total, active }
}

#[test]
fn a_zero_reports_an_emptying_once() {
    let mut emptying = Emptying::new(counts(0, 0));
    assert!(emptying.on_zero(counts(1, 0)));
    assert!(!emptying.on_zero(counts(1, 0)), "the same ZERO twice");
    let now = Instant::now();
    assert!(!emptying.on_check(counts(1, 0), now + GRACE * 3, true));
}

#[test]
fn a_lost_zero_is_reported_by_a_check_after_the_grace_period_with_the_port_drained() {
    let mut emptying = Emptying::new(counts(0, 0));
    let start = Instant::now();
    assert!(!emptying.on_check(counts(1, 0), start, true));
    assert_eq!(emptying.due(), Some(start + GRACE));
    // An exit message may still be on its way.
    assert!(!emptying.on_check(counts(1, 0), start + GRACE, false));
    assert!(emptying.on_check(counts(1, 0), start + GRACE, true));
    // The ZERO comes after all: not news.
    assert!(!emptying.on_zero(counts(1, 0)));
    assert!(!emptying.on_check(counts(1, 0), start + GRACE * 3, true));
}

#[test]
fn a_busy_port_defers_a_check_for_a_bounded_time() {
    let mut emptying = Emptying::new(counts(0, 0));
    let start = Instant::now();
    assert!(!emptying.on_check(counts(1, 0), start, false));
    assert!(!emptying.on_check(counts(1, 0), start + GRACE, false));
    assert!(emptying.on_check(counts(1, 0), start + MOST_DEFERRED, false));
}

#[test]
fn a_late_zero_that_finds_the_job_busy_again_is_not_news() {
    let mut emptying = Emptying::new(counts(0, 0));
    let start = Instant::now();
    emptying.on_check(counts(1, 0), start, true);
    assert!(emptying.on_check(counts(1, 0), start + GRACE, true));
    // Two processes joined and one exited, and then the first emptying's ZERO came.
    assert!(!emptying.on_zero(counts(3, 1)));
    // The second emptying's ZERO is news.
    assert!(emptying.on_zero(counts(3, 0)));
}

#[test]
fn a_zero_given_again_after_some_exits_is_not_news() {
    let mut emptying = Emptying::new(counts(0, 0));
    // Emptied, then two processes joined before the thread read the ZERO.
    assert!(emptying.on_zero(counts(3, 2)));
    // One of them exited: the job has not emptied again, whatever a repeated ZERO says.
    assert!(!emptying.on_zero(counts(3, 1)));
    assert!(emptying.on_zero(counts(3, 0)));
}

#[test]
fn a_zero_that_finds_the_job_busy_again_reports_the_emptying_it_marks() {
    let mut emptying = Emptying::new(counts(0, 0));
    // The job emptied, and a new process joined before the thread read the ZERO.
    assert!(emptying.on_zero(counts(2, 1)));
    assert!(!emptying.on_zero(counts(2, 1)), "the same ZERO twice");
    // The new process exits: another emptying, found by its ZERO or by a check.
    let mut by_check = emptying.clone();
    assert!(emptying.on_zero(counts(2, 0)));
    let start = Instant::now();
    by_check.on_check(counts(2, 0), start, true);
    assert!(by_check.on_check(counts(2, 0), start + GRACE, true));
}

#[test]
fn a_zero_without_an_exit_since_the_last_report_is_not_news() {
    let mut emptying = Emptying::new(counts(3, 1));
    assert!(!emptying.on_zero(counts(4, 2)));
    assert!(emptying.on_zero(counts(4, 0)));
}

#[test]
fn the_processes_there_before_the_watch_are_reported_when_they_go() {
    let mut emptying = Emptying::new(counts(5, 2));
    assert!(!emptying.on_check(counts(5, 1), Instant::now(), true));
    assert!(emptying.on_zero(counts(5, 0)));
    // A job empty when watched has nothing to report until a process comes and goes.
    let mut empty = Emptying::new(counts(5, 0));
    assert!(!empty.on_zero(counts(5, 0)));
    let start = Instant::now();
    assert!(!empty.on_check(counts(5, 0), start + GRACE * 2, true));
    assert_eq!(empty.due(), None);
}

#[test]
fn expected_zeros_are_given_up_once_the_port_was_drained() {
    let mut emptying = Emptying::new(counts(0, 0));
    let start = Instant::now();
    emptying.on_check(counts(1, 0), start, true);
    assert!(emptying.on_check(counts(1, 0), start + GRACE, true));
    assert_eq!(emptying.due(), Some(start + GRACE * 2));
    // The ZERO was lost: given up once the port was drained for the grace period.
    emptying.on_check(counts(1, 0), start + GRACE * 2, true);
    assert_eq!(emptying.due(), None);
    // So the next emptying, refilled before the thread looked, is still heard.
    assert!(emptying.on_zero(counts(3, 1)));
}

/// A job's message, as the port carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Message {
    NewProcess,
    Exit,
    Zero,
}

/// The faults a run injects, each in percent.
#[derive(Clone, Copy, Debug)]
struct Faults {
    drop: u64,
    duplicate: u64,
    reorder: u64,
}

const NONE: Faults = Faults {
    drop: 0,
    duplicate: 0,
    reorder: 0,
};

/// A job, the port's queue of its messages and the thread's view, driven by a seeded
/// generator.
struct Run {
    seed: u64,
    faults: Faults,
    total: u32,
    active: u32,
    emptyings: u32,
    reports: u32,
    /// The messages on their way, each with the number of times the port gives it.
    queue: VecDeque<(Message, u32)>,
    now: Instant,
    emptying: Emptying,
}

impl Run {
    fn new(seed: u64, faults: Faults) -> Self {
        Run {
            seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            faults,
            total: 0,
            active: 0,
            emptyings: 0,
            reports: 0,
            queue: VecDeque::new(),
            now: Instant::now(),
            emptying: Emptying::new(counts(0, 0)),
        }
    }

    /// xorshift64*: enough for choosing steps.
    fn next(&mut self) -> u64 {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn counts(&self) -> Counts {
        counts(self.total, self.active)
    }

    fn send(&mut self, message: Message) {
        if self.chance(self.faults.drop) {
            return;
        }
        let copies = if self.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        self.queue.push_back((message, copies));
    }

    /// The job changes: a process joins, or one exits (sending the ZERO if it was the last).
    fn job_step(&mut self) {
        if self.active == 0 || self.chance(45) {
            self.total += 1;
            self.active += 1;
            self.send(Message::NewProcess);
        } else {
            self.exit();
        }
    }

    /// A process exits, and the ZERO is sent if it was the last.
    fn exit(&mut self) {
        self.active -= 1;
        self.send(Message::Exit);
        if self.active == 0 {
            self.emptyings += 1;
            self.send(Message::Zero);
        }
    }

    /// The thread takes one message (maybe not the first, when reordering), or checks with the
    /// port drained; time passes.
    fn thread_step(&mut self) {
        let passed = Duration::from_millis(self.next() % 60);
        self.now += passed;
        let Some((message, copies)) = self.take() else {
            let report = self.emptying.on_check(self.counts(), self.now, true);
            self.record(report);
            return;
        };
        // A repeated message comes right after itself: the port keeps a job's order.
        for _ in 0..copies {
            let report = match message {
                Message::Zero => self.emptying.on_zero(self.counts()),
                // The thread's due checks run after every message, the port not drained.
                Message::NewProcess | Message::Exit => {
                    self.emptying.on_check(self.counts(), self.now, false)
                }
            };
            self.record(report);
        }
    }

    fn take(&mut self) -> Option<(Message, u32)> {
        if self.queue.len() > 1 && self.chance(self.faults.reorder) {
            let at = (self.next() % self.queue.len() as u64) as usize;
            return self.queue.remove(at);
        }
        self.queue.pop_front()
    }

    fn record(&mut self, report: bool) {
        if report {
            self.reports += 1;
        }
        assert!(
            self.reports <= self.emptyings,
            "{} reports of {} emptyings",
            self.reports,
            self.emptyings
        );
    }

    /// The job's processes exit, and the thread reads everything and checks until the grace
    /// periods are over.
    fn finish(&mut self) {
        while self.active > 0 {
            self.exit();
        }
        self.settle();
    }

    /// The thread reads every message and checks until the grace periods are over.
    fn settle(&mut self) {
        while !self.queue.is_empty() {
            self.thread_step();
        }
        self.now += GRACE;
        for _ in 0..3 {
            let report = self.emptying.on_check(self.counts(), self.now, true);
            self.record(report);
            self.now += GRACE;
        }
    }
}

/// A thread that looks after every change of the job reports every emptying once, with
/// messages lost, repeated and reordered.
#[test]
fn a_thread_that_keeps_up_reports_every_emptying_exactly_once() {
    let reordered = [
        Faults {
            reorder: 50,
            ..NONE
        },
        Faults {
            drop: 20,
            duplicate: 20,
            reorder: 30,
        },
    ];
    for faults in PORT_FAULTS.into_iter().chain(reordered) {
        for seed in 0..200 {
            let mut run = Run::new(seed, faults);
            for _ in 0..200 {
                run.job_step();
                run.settle();
            }
            run.finish();
            assert_eq!(
                run.reports, run.emptyings,
                "seed {seed}, {faults:?}: {} reports of {} emptyings",
                run.reports, run.emptyings
            );
        }
    }
}

/// The faults of a real port: messages lost, or given twice (in order). What reaches the
/// thread late is the job's counts, read ahead of the messages, which a thread that falls
/// behind always sees.
const PORT_FAULTS: [Faults; 4] = [
    NONE,
    Faults { drop: 30, ..NONE },
    Faults {
        duplicate: 30,
        ..NONE
    },
    Faults {
        drop: 20,
        duplicate: 20,
        reorder: 0,
    },
];

/// A thread that falls behind never reports an emptying twice (checked at every step), and
/// always reports the last one.
#[test]
fn a_thread_that_falls_behind_never_reports_twice_and_never_loses_the_last_emptying() {
    for faults in PORT_FAULTS {
        for seed in 0..300 {
            let mut run = Run::new(seed, faults);
            for _ in 0..400 {
                if run.chance(50) {
                    run.job_step();
                } else {
                    run.thread_step();
                }
            }
            run.finish();
            assert!(
                run.emptying.accounted == run.total && run.reports >= 1,
                "seed {seed}, {faults:?}: the last emptying was not reported ({} reports of {})",
                run.reports,
                run.emptyings
            );
        }
    }
}

/// Every ZERO that comes is news even when the job is busy again by then: a thread that reads
/// each message only once the next one was sent reports every emptying, whose ZERO it gets.
#[test]
fn a_thread_a_message_behind_reports_every_emptying() {
    for faults in [NONE, PORT_FAULTS[2]] {
        for seed in 0..300 {
            let mut run = Run::new(seed, faults);
            for _ in 0..300 {
                run.job_step();
                while run.queue.len() > 1 {
                    run.thread_step();
                }
            }
            run.finish();
            assert_eq!(
                run.reports, run.emptyings,
                "seed {seed}, {faults:?}: {} reports of {} emptyings",
                run.reports, run.emptyings
            );
        }
    }
}
