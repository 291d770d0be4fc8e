//! The `tokio` feature: notifications as futures and a stream, the async `wait_empty`, the
//! async wait of a child, tokio's `Command` in a job; on the current-thread and the
//! multi-thread runtime, on Linux and Windows (under Wine).

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use jobobject::{Error, JobObject, Notification};
use tokio_stream::StreamExt;

#[test]
fn child_mode() {
    run_child_mode();
}

/// Runs `test` to the end on a current-thread runtime, then on a multi-thread one.
fn on_both_runtimes<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { tokio::spawn(test()).await.unwrap() });
}

/// A job with notifications. Anonymous, as are all of this file's jobs: a test runs twice
/// (once per runtime), and a Windows job object outlives its handles while a handle on one of
/// its processes is open.
fn notifying() -> Arc<JobObject> {
    create_arc(&anonymous_options().notifications(true))
}

fn plain() -> Arc<JobObject> {
    create_arc(&anonymous_options())
}

/// Waits for the next notification that is `wanted`, skipping others (Windows also reports
/// each process's start and exit), within [`TIMEOUT`].
async fn next_such(job: &JobObject, wanted: Notification) {
    let wait = async { while job.next_notification().await.unwrap() != wanted {} };
    tokio::time::timeout(TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {wanted:?} within {TIMEOUT:?}"));
}

#[test]
fn an_emptying_wakes_the_awaiting_task() {
    if !require_jobs("an_emptying_wakes_the_awaiting_task") {
        return;
    }
    on_both_runtimes(|| async {
        let job = notifying();
        let mut child = builder_child("sleep:50").spawn(&job).unwrap();
        next_such(&job, Notification::AllProcessesExited).await;
        assert!(child.wait_async().await.unwrap().success());
    });
}

/// Pending `next_notification`s dropped at random moments (timeouts of 0-2 ms) lose nothing:
/// each of 50 emptyings is received exactly once.
#[test]
fn dropped_waits_lose_no_notification() {
    if !require_jobs("dropped_waits_lose_no_notification") {
        return;
    }
    on_both_runtimes(|| async {
        let job = notifying();
        let (mut received, mut dropped) = (0, 0);
        for round in 0..50u64 {
            let mut child = builder_child("exit:0").spawn(&job).unwrap();
            let give_up = Instant::now() + TIMEOUT;
            loop {
                let patience = Duration::from_micros((round * 37) % 2000);
                match tokio::time::timeout(patience, job.next_notification()).await {
                    Ok(Ok(Notification::AllProcessesExited)) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => panic!("{err}"),
                    Err(_) => dropped += 1,
                }
                assert!(Instant::now() < give_up, "round {round}: no emptying");
            }
            received += 1;
            child.wait_async().await.unwrap();
        }
        assert_eq!(received, 50);
        assert!(
            dropped > 0,
            "no wait was ever dropped: the test proved nothing"
        );
        // Nothing left over: no emptying was queued twice.
        let job2 = Arc::clone(&job);
        let extra = tokio::task::spawn_blocking(move || {
            std::iter::from_fn(|| job2.poll_notification_timeout(QUIET).unwrap())
                .filter(|n| *n == Notification::AllProcessesExited)
                .count()
        });
        assert_eq!(extra.await.unwrap(), 0);
    });
}

/// Every emptying through the stream, and `close` ends it.
#[test]
fn the_stream_gives_every_notification_and_ends_at_close() {
    if !require_jobs("the_stream_gives_every_notification_and_ends_at_close") {
        return;
    }
    on_both_runtimes(|| async {
        let job = notifying();
        let mut stream = job.notifications();
        for _ in 0..3 {
            let mut child = builder_child("exit:0").spawn(&job).unwrap();
            child.wait_async().await.unwrap();
            let emptied = async {
                loop {
                    match stream.next().await {
                        Some(Ok(Notification::AllProcessesExited)) => break,
                        Some(Ok(_)) => {}
                        other => panic!("the stream gave {other:?}"),
                    }
                }
            };
            tokio::time::timeout(TIMEOUT, emptied)
                .await
                .expect("an emptying through the stream");
        }
        let closer = Arc::clone(&job);
        tokio::spawn(async move { closer.close().unwrap() });
        let ended = async {
            while let Some(item) = stream.next().await {
                item.expect("only notifications before the end");
            }
        };
        tokio::time::timeout(TIMEOUT, ended)
            .await
            .expect("close ends the stream");
        // A stream of a closed handle is over at once.
        assert!(job.notifications().next().await.is_none());
    });
}

#[test]
fn without_notifications_the_stream_says_so_once() {
    on_both_runtimes(|| async {
        let job = plain();
        assert!(matches!(
            job.next_notification().await,
            Err(Error::NotRegistered)
        ));
        let mut stream = job.notifications();
        assert!(matches!(
            stream.next().await,
            Some(Err(Error::NotRegistered))
        ));
        assert!(stream.next().await.is_none());
    });
}

/// `wait_empty_async`: at once on an empty job, at the emptying of a busy one, whoever
/// empties it (the child's exit, `terminate`).
#[test]
fn wait_empty_async_resolves_when_the_job_empties() {
    if !require_jobs("wait_empty_async_resolves_when_the_job_empties") {
        return;
    }
    on_both_runtimes(|| async {
        let job = plain();
        tokio::time::timeout(Duration::from_secs(5), job.wait_empty_async())
            .await
            .expect("an empty job is empty at once")
            .unwrap();

        let mut child = builder_child("sleep:100").spawn(&job).unwrap();
        let started = Instant::now();
        tokio::time::timeout(TIMEOUT, job.wait_empty_async())
            .await
            .expect("the job empties")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(90));
        assert!(job.pids().unwrap().is_empty());
        child.wait_async().await.unwrap();

        let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
        let over = tokio::time::timeout(Duration::from_millis(50), job.wait_empty_async());
        assert!(over.await.is_err(), "a busy job read as empty");
        job.terminate(1).unwrap();
        tokio::time::timeout(TIMEOUT, job.wait_empty_async())
            .await
            .expect("the terminated job empties")
            .unwrap();
        child.wait_async().await.unwrap();
    });
}

/// `close` ends every pending wait of the handle with `AlreadyClosed`, at once.
#[test]
fn close_ends_pending_waits() {
    if !require_jobs("close_ends_pending_waits") {
        return;
    }
    on_both_runtimes(|| async {
        let job = notifying();
        let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
        let empty = tokio::spawn(job.wait_empty_async());
        let watcher = Arc::clone(&job);
        let next = tokio::spawn(async move {
            loop {
                // Skips Windows' NewProcess.
                match watcher.next_notification().await {
                    Ok(Notification::NewProcess { .. }) => {}
                    other => return other,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!empty.is_finished() && !next.is_finished());
        let closing = Instant::now();
        job.close().unwrap();
        let empty = tokio::time::timeout(TIMEOUT, empty).await.unwrap().unwrap();
        assert!(matches!(empty, Err(Error::AlreadyClosed)), "{empty:?}");
        let next = tokio::time::timeout(TIMEOUT, next).await.unwrap().unwrap();
        assert!(matches!(next, Err(Error::AlreadyClosed)), "{next:?}");
        assert!(closing.elapsed() < Duration::from_secs(5));
        // The close killed the job (the tests' jobs are kill-on-close).
        tokio::time::timeout(TIMEOUT, child.wait_async())
            .await
            .expect("the child dies with the job")
            .unwrap();
    });
}

/// A runtime dropped while tasks await a busy job's notifications, its emptying and a child
/// shuts down at once: nothing of this crate blocks it (before, a blocked
/// `poll_notification` kept a program alive for seconds after `main` returned).
#[test]
fn a_runtime_shuts_down_promptly_with_waits_pending() {
    if !require_jobs("a_runtime_shuts_down_promptly_with_waits_pending") {
        return;
    }
    for multi_thread in [false, true] {
        let job = notifying();
        let child = Arc::new(tokio::sync::Mutex::new(
            builder_child("sleep:100000").spawn(&job).unwrap(),
        ));
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let (started, mut pending) = tokio::sync::mpsc::channel::<()>(3);
        for what in 0..3 {
            let (job, child, started) = (Arc::clone(&job), Arc::clone(&child), started.clone());
            runtime.spawn(async move {
                started.send(()).await.unwrap();
                match what {
                    0 => loop {
                        job.next_notification().await.unwrap();
                    },
                    1 => job.wait_empty_async().await.unwrap(),
                    _ => drop(child.lock().await.wait_async().await),
                }
            });
        }
        runtime.block_on(async {
            for _ in 0..3 {
                pending.recv().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        let dropping = Instant::now();
        drop(runtime);
        let took = dropping.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "multi-thread {multi_thread}: the runtime took {took:?} to shut down"
        );
        // Everything still works after: the child is waited for (it was not reaped).
        let mut child = Arc::try_unwrap(child)
            .expect("the tasks are gone")
            .into_inner();
        job.terminate(1).unwrap();
        child.wait().unwrap();
        assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    }
}

/// A child's async wait dropped before the exit leaves it unreaped, to be waited for again;
/// the status is the exit code.
#[test]
fn a_dropped_child_wait_reaps_nothing() {
    if !require_jobs("a_dropped_child_wait_reaps_nothing") {
        return;
    }
    on_both_runtimes(|| async {
        let job = plain();
        let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
        for _ in 0..3 {
            let early = tokio::time::timeout(Duration::from_millis(10), child.wait_async());
            assert!(early.await.is_err(), "a running child's wait returned");
        }
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let status = tokio::time::timeout(TIMEOUT, child.wait_async())
            .await
            .expect("the killed child is waited for")
            .unwrap();
        assert!(!status.success());
        // Waited for once, the status stays.
        assert_eq!(child.wait_async().await.unwrap(), status);

        let mut child = builder_child("exit:7").spawn(&job).unwrap();
        assert_eq!(child.wait_async().await.unwrap().code(), Some(7));
    });
}

/// tokio's `Command` in a job: the child and its grandchild are in it, tokio waits for the
/// child, and the job's kill reaches the grandchild.
#[test]
fn a_tokio_command_runs_in_the_job() {
    if !require_jobs("a_tokio_command_runs_in_the_job") {
        return;
    }
    on_both_runtimes(|| async {
        let job = plain();
        let mut command = tokio::process::Command::from(child("grandchild:100000"));
        command.stdout(std::process::Stdio::piped());
        let mut spawned = job.spawn_tokio(&mut command).unwrap();
        let pid = spawned.id().unwrap();
        let stdout = spawned.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let grandchild: u32 = loop {
            let line = lines.next_line().await.unwrap().expect("a GRANDCHILD line");
            if let Some(pid) = line.strip_prefix("GRANDCHILD ") {
                break pid.trim().parse().unwrap();
            }
        };
        let pids = job.pids().unwrap();
        assert!(
            pids.contains(&pid) && pids.contains(&grandchild),
            "{pids:?}"
        );
        job.terminate(1).unwrap();
        tokio::time::timeout(TIMEOUT, spawned.wait())
            .await
            .expect("tokio waits for the killed child")
            .unwrap();
        tokio::time::timeout(TIMEOUT, job.wait_empty_async())
            .await
            .expect("the grandchild dies too")
            .unwrap();
    });
}

/// A spawn error leaves the command as it was, with its hook disarmed.
#[test]
fn a_tokio_command_that_cannot_start_is_an_error() {
    if !require_jobs("a_tokio_command_that_cannot_start_is_an_error") {
        return;
    }
    on_both_runtimes(|| async {
        let job = plain();
        let mut command = tokio::process::Command::new("jobobject-no-such-program");
        let err = job.spawn_tokio(&mut command).unwrap_err();
        assert_eq!(err.kind(), jobobject::ErrorKind::ProgramNotFound, "{err}");
        assert!(job.pids().unwrap().is_empty());
    });
}

/// 1000 jobs awaited at once on one runtime: every emptying arrives, and one event thread
/// serves them all (Linux counts the threads by name). 100 where spawns are slow: in the
/// emulated guests (`JOBOBJECT_GUEST`) and under Wine; `JOBOBJECT_ASYNC_JOBS` says otherwise.
#[test]
fn a_thousand_jobs_awaited_at_once() {
    if !require_jobs("a_thousand_jobs_awaited_at_once") {
        return;
    }
    let count: usize = std::env::var("JOBOBJECT_ASYNC_JOBS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if slow_spawns() { 100 } else { 1000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let mut waits = tokio::task::JoinSet::new();
        for _ in 0..count {
            let job = notifying();
            let mut child = builder_child("exit:0").spawn(&job).unwrap();
            waits.spawn(async move {
                next_such(&job, Notification::AllProcessesExited).await;
                child.wait_async().await.unwrap();
            });
        }
        let spawned = started.elapsed();
        #[cfg(target_os = "linux")]
        assert_eq!(named_threads("jobobject-event"), 1, "one event thread");
        let mut done = 0;
        while let Some(result) = waits.join_next().await {
            result.unwrap();
            done += 1;
        }
        assert_eq!(done, count);
        println!(
            "{count} jobs: spawned in {:.1} s, every emptying awaited after {:.1} s",
            spawned.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    });
}

/// How many threads of this process have a name that starts with `prefix` (the kernel keeps
/// 15 bytes of a name).
#[cfg(target_os = "linux")]
fn named_threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
}

/// The README's runner: a command under a time limit, its tree killed when it runs over. In
/// a tokio program the sync API needs a blocking thread for the wait; the async one needs
/// none (Linux counts the runtime's threads by their name).
#[test]
fn the_async_runner_needs_no_thread() {
    if !require_jobs("the_async_runner_needs_no_thread") {
        return;
    }
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_current_thread()
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    };
    let limit = Duration::from_millis(100);

    let job = plain();
    let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
    runtime("t-async-runner").block_on(async {
        if tokio::time::timeout(limit, job.wait_empty_async())
            .await
            .is_err()
        {
            job.terminate(1).unwrap();
            job.wait_empty_async().await.unwrap();
        }
        assert!(!child.wait_async().await.unwrap().success());
        #[cfg(target_os = "linux")]
        assert_eq!(named_threads("t-async-runner"), 0, "a thread was started");
    });

    let job = plain();
    let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
    runtime("t-sync-runner").block_on(async {
        let waiter = Arc::clone(&job);
        let waited = tokio::task::spawn_blocking(move || waiter.wait_empty(Some(limit)).unwrap());
        if !waited.await.unwrap() {
            job.terminate(1).unwrap();
            let waiter = Arc::clone(&job);
            tokio::task::spawn_blocking(move || waiter.wait_empty(None).unwrap())
                .await
                .unwrap();
        }
        #[cfg(target_os = "linux")]
        // One, or two when the second wait came before the first's thread was idle again.
        assert!(
            named_threads("t-sync-runner") >= 1,
            "the blocking wait's thread"
        );
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap());
        assert!(!status.await.unwrap().success());
    });
}

/// Whether spawning is slow here: an emulated guest, or Wine.
fn slow_spawns() -> bool {
    #[cfg(windows)]
    if wine().is_some() {
        return true;
    }
    std::env::var_os("JOBOBJECT_GUEST").is_some()
}

/// `stop_async`: as `stop` (see the contract's `stop_ends_the_job`), awaited.
#[test]
fn stop_async_ends_the_job() {
    if !require_jobs("stop_async_ends_the_job") {
        return;
    }
    on_both_runtimes(|| async {
        let job = plain();
        let stopped = job.stop_async(Duration::from_secs(5)).await.unwrap();
        assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");
        let mut child = builder_child("sleep:100000").spawn(&job).unwrap();
        while job.pids().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let stopped = job.stop_async(TIMEOUT).await.unwrap();
        if cfg!(windows) {
            assert!(!stopped.in_time && stopped.killed == 1, "{stopped:?}");
        } else {
            assert!(stopped.in_time && stopped.killed == 0, "{stopped:?}");
        }
        child.wait_async().await.unwrap();
    });
}
