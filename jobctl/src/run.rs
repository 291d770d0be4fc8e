//! `jobctl run`: a command tree in a new job, under limits, with signals passed on, a timeout,
//! the processes it leaves behind killed (or kept, or waited for), and a summary at the end.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use jobobject::{JobObject, Notification};

use crate::error::{CliError, CliResult, status};
use crate::limits::LimitArgs;
use crate::output;
use crate::platform::{self, Global};
use crate::signals;
use crate::summary::{Io, Summary};
use crate::supervise::{self, Event, Outcome};
use crate::units;

/// How long the processes of a killed job may take to be gone.
pub const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long the processes have after the timeout's signal, without `--kill-after`.
pub const KILL_AFTER: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Name the job (others can then see it with `jobctl stats NAME`); anonymous by default
    #[arg(long)]
    pub name: Option<String>,
    /// Run in the existing job NAME (made with `jobctl create`) instead of a new one. Limits
    /// given here change the job's, and stay; what the command leaves behind is left running,
    /// as the job may hold other processes; the job stays
    #[arg(long, value_name = "NAME", conflicts_with_all = ["name", "keep"])]
    pub job: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Kill the whole job when this runs out, and exit with status 124: 30s, 2m, 1h30m, 500ms
    /// (at most 36500d, 100 years)
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// At the --timeout, send this signal to every process of the job, then kill what is left
    /// after --kill-after: TERM (the default on Linux), INT, HUP, USR1, 15...; KILL kills at
    /// once (the only choice on Windows, which has no signals for a whole job)
    #[arg(long, short, value_name = "SIGNAL", value_parser = signals::parse, requires = "timeout")]
    pub signal: Option<i32>,
    /// How long the job's processes have after the --signal before they are killed: 10s by
    /// default
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, requires = "timeout")]
    pub kill_after: Option<Duration>,
    /// Set the variable KEY to VALUE in the command's environment (repeatable)
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,
    /// Run the command in DIR
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Run the command as this user id (Linux; needs root)
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Run the command with this group id (Linux; needs root). With --uid, the supplementary
    /// groups are dropped
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// Run the command at this niceness: 19 (least favoured) to -20 (most; needs root). On
    /// Windows a priority class: 10 and up idle, 1-9 below normal, -1 to -9 above normal, -10
    /// and below high
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub nice: Option<i32>,
    /// Leave the processes the command leaves behind running, and the job in place until
    /// `jobctl delete NAME` (also when jobctl itself is killed). Without it, what is left is
    /// killed, even when jobctl is killed (its keeper does it)
    #[arg(long, conflicts_with = "wait_all")]
    pub keep: bool,
    /// After the command exits, wait for every process it left behind to exit too
    #[arg(long)]
    pub wait_all: bool,
    /// Print no summary
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the summary to FILE instead of stderr
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
    /// Write the summary to the open file descriptor FD instead of stderr (`3>summary.json`;
    /// Unix). The command does not inherit it, so nothing of its own output lands there
    #[arg(long, value_name = "FD", conflicts_with = "summary_file")]
    pub summary_fd: Option<i32>,
    /// The command and its arguments (after `--`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// Limit hits, counted from the job's notifications.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hits {
    pub oom_kills: u64,
    pub memory_limit: u64,
    pub process_limit: u64,
}

/// Runs the command; returns jobctl's exit status.
pub fn run(global: &Global, args: &RunArgs) -> CliResult<i32> {
    // Before any thread starts, so that every thread has them blocked.
    let blocked = signals::block();
    if let Some(fd) = args.summary_fd {
        platform::keep_from_children(fd).map_err(|err| {
            CliError::usage(format!(
                "--summary-fd {fd} is not an open descriptor: {err}"
            ))
        })?;
    }
    let for_run = |e: CliError| {
        if e.status == status::FAILURE {
            e.with_status(status::RUN_FAILED)
        } else {
            e
        }
    };
    let job_name = args.job.as_deref().or(args.name.as_deref());
    let options = platform::options(global, job_name)?.notifications(true);
    let job = match &args.job {
        Some(_) => JobObject::open(&options),
        None => JobObject::create(&options),
    }
    .map_err(|e| for_run(CliError::from_job(job_name, e)))?;
    let job = Arc::new(job);
    let name = job.name().unwrap_or_default();
    let remove = |job: &JobObject, name: &str| release(job, name, args);
    // Decided now, for the case where jobctl ends without finishing (kill -9): the job's
    // keeper then kills the whole tree and removes the job, or with --keep leaves both. An
    // existing job is left as it is.
    let lifetime = match (args.job.is_some(), args.keep) {
        (true, _) => Ok(()),
        (false, true) => platform::keep_after_exit(&job),
        (false, false) => job
            .set_terminate_on_last_handle_close()
            .map_err(|e| CliError::from_job(Some(&name), e)),
    };
    if let Err(err) = lifetime {
        remove(&job, &name);
        return Err(for_run(err));
    }
    // Where the I/O controller is missing the summary says so rather than failing the run.
    let io_tracking = job.set_io_tracking().is_ok();
    if let Err(err) = args.limits.apply(&job, &name) {
        remove(&job, &name);
        return Err(for_run(err));
    }
    let Some((program, arguments)) = args.command.split_first() else {
        remove(&job, &name);
        return Err(CliError::usage(
            "no command given: jobctl run [OPTIONS] -- COMMAND [ARGS...]",
        ));
    };
    // Born in the job at the cost of a plain spawn; it starts with no signal blocked (jobctl
    // blocks the ones it forwards), as a child of std's spawn does.
    let mut command = jobobject::process::Command::new(program);
    command.args(arguments);
    for (key, value) in &args.env {
        command.env(key, value);
    }
    if let Some(dir) = &args.cwd {
        command.current_dir(dir);
    }
    if let Err(err) = platform::identity(&mut command, args.uid, args.gid)
        .and_then(|()| platform::nice(&mut command, args.nice))
    {
        remove(&job, &name);
        return Err(for_run(err));
    }
    let start = Instant::now();
    let child = match command.spawn(&job) {
        Ok(child) => child,
        Err(err) => {
            remove(&job, &name);
            return Err(spawn_error(program, err));
        }
    };

    let (tx, rx) = mpsc::channel();
    let hits = Arc::new(Mutex::new(Hits::default()));
    watch_notifications(Arc::clone(&job), Arc::clone(&hits), tx.clone());
    supervise::watch_exit(&child, tx.clone());
    let signal_tx = tx.clone();
    blocked.start(move |received| {
        signal_tx.send(Event::Signal(received)).ok();
    });

    let outcome = supervise::supervise(&job, child, rx, args, start);
    Ok(finish(
        global,
        &job,
        &name,
        args,
        outcome,
        &hits,
        io_tracking,
    ))
}

/// After the command (and with `--wait-all` everything) has exited: deals with what is
/// left, gathers the summary, removes the job, prints; returns the exit status.
fn finish(
    global: &Global,
    job: &JobObject,
    name: &str,
    args: &RunArgs,
    mut outcome: Outcome,
    hits: &Mutex<Hits>,
    io_tracking: bool,
) -> i32 {
    if outcome.killed_job {
        wait_empty(job, KILL_WAIT);
    }
    let left = job.pids().unwrap_or_default().len();
    let (mut killed, mut kept) = (0, 0);
    if args.keep || args.job.is_some() {
        kept = left;
    } else if left > 0 {
        killed = left;
        outcome.kill_estimate = outcome.kill_estimate.saturating_add(left);
        if let Err(err) = job.terminate(1) {
            output::note(&format!(
                "cannot kill what the command left behind in job {name}: {err}"
            ));
        }
        wait_empty(job, KILL_WAIT);
    }

    let cpu = job.processor_stats().ok();
    let memory = job.memory_stats().ok();
    let io = io_tracking
        .then(|| job.storage_stats().ok())
        .flatten()
        .map(|s| Io {
            read_bytes: s.read_bytes,
            read_operations: s.read_operations,
            write_bytes: s.write_bytes,
            write_operations: s.write_operations,
        });
    let hits = *hits.lock().unwrap_or_else(PoisonError::into_inner);
    // The library counts OOM kills among the terminated processes: without a kill of ours
    // that count is exact, and it does not depend on the notification having arrived yet.
    let mut oom_kills = hits.oom_kills;
    if outcome.kill_estimate == 0 {
        if let Some(cpu) = cpu {
            oom_kills = oom_kills.max(u64::from(cpu.terminated_processes));
        }
    }
    let peak = cpu.and_then(|c| c.peak_processes).unwrap_or(0);

    let (code, signal) = supervise::decode(outcome.status);
    let exit_status = if outcome.timed_out {
        status::TIMEOUT
    } else {
        match (code, signal) {
            // A signal number is at most 127 (7 bits of the wait status).
            (_, Some(signal)) => 128 + signal,
            (Some(code), None) => code,
            (None, None) => status::FAILURE,
        }
    };
    let summary = Summary {
        command: args
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        job: name.to_owned(),
        code,
        signal,
        status: exit_status,
        timed_out: args.timeout.filter(|_| outcome.timed_out),
        timeout_signal: outcome.stop_signal,
        killed_at_timeout: outcome.killed_job,
        wall: outcome.wall,
        user: cpu.map(|c| c.user_time),
        kernel: cpu.map(|c| c.kernel_time),
        memory_peak: memory.map(|m| m.peak),
        memory_limit: memory.and_then(|m| m.limit),
        io,
        processes_peak: peak.max(outcome.peak_processes as u64),
        leftovers_killed: killed,
        leftovers_kept: kept,
        oom_kills,
        memory_limit_hits: hits.memory_limit.max(u64::from(oom_kills > 0)),
        // The notification can arrive after the command has exited; the count cannot be late.
        process_limit_hits: hits
            .process_limit
            .max(cpu.and_then(|c| c.process_limit_refusals).unwrap_or(0)),
    };

    if args.keep && (args.name.is_some() || kept > 0) {
        if args.name.is_none() {
            output::note(&format!(
                "{kept} process(es) left running in job {name}; remove it when they are done: \
                 jobctl delete {name}"
            ));
        }
        job.close().ok();
    } else {
        release(job, name, args);
    }
    report(global, args, &summary);
    exit_status
}

/// Prints the summary where it was asked for.
fn report(global: &Global, args: &RunArgs, summary: &Summary) {
    let text = if global.json {
        output::json_line(&summary.json())
    } else {
        summary.human()
    };
    if let Some(fd) = args.summary_fd {
        if let Err(err) = platform::write_to_fd(fd, text.as_bytes()) {
            output::note(&format!(
                "cannot write the summary to descriptor {fd}: {err}"
            ));
        }
    } else if let Some(path) = &args.summary_file {
        if let Err(err) = std::fs::write(path, &text) {
            output::note(&format!(
                "cannot write the summary to {}: {err}",
                path.display()
            ));
        }
    } else if !args.quiet {
        output::eprint(&text);
    }
}

/// Done with the job: removes the one made for this run, closes an existing one (`--job`).
fn release(job: &JobObject, name: &str, args: &RunArgs) {
    if args.job.is_some() {
        job.close().ok();
    } else {
        remove(job, name);
    }
}

/// Removes the job, retrying while the kernel still counts a process that just exited.
pub fn remove(job: &JobObject, name: &str) {
    let mut last = None;
    for attempt in 0..50 {
        match platform::delete(job) {
            Ok(()) | Err(jobobject::Error::AlreadyClosed) => return,
            Err(err) => last = Some(err),
        }
        thread::sleep(Duration::from_millis(2 * attempt + 1));
    }
    job.close().ok();
    if let Some(err) = last {
        output::note(&format!("could not remove job {name}: {err}"));
    }
}

/// Counts limit hits, and tells the loop when the job has emptied.
fn watch_notifications(job: Arc<JobObject>, hits: Arc<Mutex<Hits>>, tx: mpsc::Sender<Event>) {
    let spawned = thread::Builder::new()
        .name("jobctl-notifications".into())
        .spawn(move || {
            loop {
                let notification = job.poll_notification();
                let mut hits = hits.lock().unwrap_or_else(PoisonError::into_inner);
                match notification {
                    Ok(Notification::AllProcessesExited) => {
                        tx.send(Event::AllExited).ok();
                    }
                    // Any OOM kill of a process of the job: for its own limit or not.
                    Ok(Notification::OutOfMemoryKill | Notification::ExternalOutOfMemoryKill) => {
                        hits.oom_kills = hits.oom_kills.saturating_add(1);
                    }
                    Ok(Notification::JobMemoryLimit) => {
                        hits.memory_limit = hits.memory_limit.saturating_add(1);
                    }
                    Ok(Notification::ActiveProcessLimit) => {
                        hits.process_limit = hits.process_limit.saturating_add(1);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    if let Err(err) = spawned {
        output::note(&format!(
            "cannot watch the job's notifications ({err}): limit hits are not counted"
        ));
    }
}

/// A failed spawn, with the shell's statuses: 127 not found, 126 not executable.
fn spawn_error(program: &OsString, err: jobobject::Error) -> CliError {
    let program = program.to_string_lossy();
    let kind = err
        .raw_os_error()
        .map(|code| std::io::Error::from_raw_os_error(code).kind());
    match kind {
        Some(std::io::ErrorKind::NotFound) => CliError::new(
            status::NOT_FOUND,
            format!("command not found: {program}: check its name, or give its full path"),
        ),
        Some(std::io::ErrorKind::PermissionDenied) => CliError::new(
            status::CANNOT_EXECUTE,
            format!("cannot execute {program}: permission denied (is it an executable file?)"),
        ),
        _ => CliError::new(status::RUN_FAILED, format!("cannot start {program}: {err}")),
    }
}

/// Waits until the job holds no process, at most `timeout`; whether it emptied (a job gone
/// meanwhile is empty).
pub fn wait_empty(job: &JobObject, timeout: Duration) -> bool {
    job.wait_empty(Some(timeout)).unwrap_or(true)
}

/// `KEY=VALUE`, split at the first `=`; the key is not empty.
fn parse_env(text: &str) -> Result<(OsString, OsString), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}
