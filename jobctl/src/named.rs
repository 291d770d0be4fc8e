//! Named jobs: `create`, `list`, `ps`, `stats`, `limits`, `assign`, `kill`, `wait`, `delete`.

use std::time::Duration;

use clap::Args;
use jobobject::JobObject;
use serde_json::{Value, json};

use crate::error::{CliError, CliResult, status};
use crate::limits::{self, LimitArgs};
use crate::output;
use crate::platform::{self, Global};
use crate::process;
use crate::run::{self, KILL_WAIT, wait_empty};
use crate::signals;
use crate::stats::Snapshot;
use crate::units;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The job's name
    pub name: String,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// The job's name
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LimitsArgs {
    /// The job's name
    pub name: String,
    /// New limits to set (leave them all out to show the current ones)
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args, Debug)]
pub struct AssignArgs {
    /// The job's name
    pub name: String,
    /// The processes to move into it (with all their threads)
    #[arg(required = true, value_name = "PID", value_parser = units::parse_pid)]
    pub pids: Vec<u32>,
    /// Move them even if one is process 1 or an ancestor of jobctl (such as its shell)
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The job's name
    pub name: String,
    /// Kill the job's processes first, instead of refusing a job that still has some
    #[arg(long, short)]
    pub force: bool,
}

/// `create NAME [limits]`: a named job that stays after jobctl exits.
pub fn create(global: &Global, args: &CreateArgs) -> CliResult<()> {
    let options = platform::options(global, Some(&args.name))?;
    let job = JobObject::create(&options).map_err(|e| CliError::from_job(Some(&args.name), e))?;
    if let Err(err) = args.limits.apply(&job, &args.name) {
        run::remove(&job, &args.name);
        return Err(err);
    }
    if let Err(err) = platform::set_persistent(&job) {
        run::remove(&job, &args.name);
        return Err(err);
    }
    let current = limits::read(&job);
    job.close().ok();
    if global.json {
        output::json(&json!({ "job": args.name, "created": true, "limits": current.json() }));
    } else {
        output::print(&format!(
            "created job {} (limits: {})\n",
            output::escape(&args.name),
            current.short()
        ));
    }
    Ok(())
}

/// `list`: every job, with what it uses.
pub fn list(global: &Global) -> CliResult<()> {
    let names = platform::list_jobs(global)?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for name in names {
        // A job removed meanwhile is simply not listed.
        let Ok(job) = platform::open(global, &name, false) else {
            continue;
        };
        let snapshot = Snapshot::read(&job);
        let current = limits::read(&job);
        let frozen = job.is_frozen().ok();
        job.close().ok();
        let processes = match frozen {
            Some(true) => format!("{} frozen", snapshot.processes),
            _ => snapshot.processes.to_string(),
        };
        rows.push(vec![
            output::escape(&name).into_owned(),
            processes,
            snapshot.cpu().map_or("-".into(), units::duration),
            snapshot.memory.map_or("-".into(), units::bytes),
            current.short(),
        ]);
        values.push(json!({
            "name": name,
            "frozen": frozen,
            "stats": snapshot.json(),
            "limits": current.json(),
        }));
    }
    if global.json {
        output::json(&Value::Array(values));
    } else if rows.is_empty() {
        output::print(&format!(
            "no jobs (in {}); make one with `jobctl create NAME` or `jobctl run --name NAME -- CMD`\n",
            output::escape(&platform::describe_parent(global))
        ));
    } else {
        output::print(&output::table(
            &["NAME", "PROCS", "CPU", "MEMORY", "LIMITS"],
            &rows,
            &[1, 2, 3],
        ));
    }
    Ok(())
}

/// `ps NAME`: the job's processes and their command lines.
pub fn ps(global: &Global, args: &NameArg) -> CliResult<()> {
    let job = platform::open(global, &args.name, false)?;
    let pids = job
        .pids()
        .map_err(|e| CliError::from_job(Some(&args.name), e))?;
    job.close().ok();
    let processes: Vec<(u32, Option<Vec<String>>)> = pids
        .into_iter()
        .map(|pid| (pid, platform::command_line(pid)))
        .collect();
    if global.json {
        let list = processes
            .iter()
            .map(|(pid, command)| json!({ "pid": pid, "command": command }))
            .collect();
        output::json(&Value::Array(list));
    } else {
        let rows: Vec<Vec<String>> = processes
            .iter()
            .map(|(pid, command)| {
                let text = command.as_ref().map_or("?".to_owned(), |c| command_text(c));
                vec![pid.to_string(), text]
            })
            .collect();
        output::print(&output::table(&["PID", "COMMAND"], &rows, &[0]));
    }
    Ok(())
}

/// A command line for people: its arguments escaped, joined by spaces (as `ps` shows them).
fn command_text(arguments: &[String]) -> String {
    arguments
        .iter()
        .map(|a| output::escape(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `stats NAME`: what the job uses.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The job's name
    pub name: String,
    /// Print a sample every DURATION until the job is gone (or --count): with --json one JSON
    /// line each, with its time
    #[arg(long, short, value_name = "DURATION", value_parser = units::parse_duration)]
    pub interval: Option<Duration>,
    /// With --interval, stop after N samples
    #[arg(long, short = 'n', value_name = "N", value_parser = units::parse_count, requires = "interval")]
    pub count: Option<u32>,
}

/// `stats NAME`: what the job uses, once or every `--interval`.
pub fn stats(global: &Global, args: &StatsArgs) -> CliResult<()> {
    let job = platform::open(global, &args.name, false)?;
    let mut printed = 0u32;
    loop {
        let snapshot = Snapshot::read(&job);
        // A job deleted meanwhile: the stream ends (a single reading reports the error).
        if let Err(err) = job.pids() {
            if printed > 0 {
                return Ok(());
            }
            return Err(CliError::from_job(Some(&args.name), err));
        }
        if global.json {
            let mut value = snapshot.json();
            value["job"] = json!(args.name);
            if args.interval.is_some() {
                value["time"] = json!(crate::watch::utc_now());
            }
            output::json(&value);
        } else {
            let separator = if printed > 0 { "\n" } else { "" };
            let time = match args.interval {
                Some(_) => format!("{}\n", crate::watch::utc_now()),
                None => String::new(),
            };
            output::print(&format!(
                "{separator}{time}{}",
                output::pairs(&snapshot.rows())
            ));
        }
        printed = printed.saturating_add(1);
        let Some(interval) = args.interval else {
            break;
        };
        if args.count.is_some_and(|n| printed >= n) {
            break;
        }
        std::thread::sleep(interval);
    }
    job.close().ok();
    Ok(())
}

/// `limits NAME [new limits]`: shows the limits, after changing those given.
pub fn limits(global: &Global, args: &LimitsArgs) -> CliResult<()> {
    let job = platform::open(global, &args.name, false)?;
    args.limits.apply(&job, &args.name)?;
    let current = limits::read(&job);
    job.close().ok();
    if global.json {
        let mut value = current.json();
        value["job"] = json!(args.name);
        output::json(&value);
    } else {
        output::print(&output::pairs(&current.rows()));
    }
    Ok(())
}

/// `assign NAME PID...`: moves running processes into the job. Process 1 and jobctl's
/// ancestors only with `--force`: all are checked before any is moved.
pub fn assign(global: &Global, args: &AssignArgs) -> CliResult<()> {
    if !args.force {
        if let Some(why) = args.pids.iter().find_map(|&pid| process::danger(pid)) {
            return Err(CliError::usage(format!(
                "not moving anything into job {}: {why}; pass --force if you really mean it",
                args.name
            )));
        }
    }
    let job = platform::open(global, &args.name, false)?;
    for &pid in &args.pids {
        job.assign(pid)
            .map_err(|e| CliError::from_job(Some(&args.name), e))?;
    }
    job.close().ok();
    if global.json {
        output::json(&json!({ "job": args.name, "assigned": args.pids }));
    } else {
        let pids: Vec<String> = args.pids.iter().map(u32::to_string).collect();
        output::print(&format!(
            "moved process {} into job {}\n",
            pids.join(", "),
            output::escape(&args.name)
        ));
    }
    Ok(())
}

/// `kill NAME`: kills every process of the job, and waits until they are gone.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// The job's name
    pub name: String,
    /// Send this signal to every process instead of killing them: TERM, INT, HUP, USR1, 15...
    /// (Linux; Windows has only KILL). Without it, or with KILL, the processes are killed and
    /// waited for
    #[arg(long, short, value_name = "SIGNAL", value_parser = signals::parse)]
    pub signal: Option<i32>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// The job's name
    pub name: String,
    /// Give up after this long, with status 124: 30s, 2m, 1h30m
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
}

/// Blocks until the job holds no process; status 0, or 124 when `--timeout` ran out first.
pub fn wait(global: &Global, args: &WaitArgs) -> CliResult<i32> {
    let job = platform::open(global, &args.name, false)?;
    let empty = job
        .wait_empty(args.timeout)
        .map_err(|e| CliError::from_job(Some(&args.name), e))?;
    job.close().ok();
    if global.json {
        output::json(&json!({ "job": args.name, "empty": empty }));
    } else if !empty {
        output::eprint(&format!(
            "jobctl: job {} still has processes after the timeout\n",
            output::escape(&args.name)
        ));
    }
    Ok(if empty { status::OK } else { status::TIMEOUT })
}

pub fn kill(global: &Global, args: &KillArgs) -> CliResult<()> {
    let job = platform::open(global, &args.name, false)?;
    if let Some(signal) = args.signal.filter(|&s| s != signals::KILL) {
        let count = job
            .pids()
            .map_err(|e| CliError::from_job(Some(&args.name), e))?
            .len();
        platform::signal(&job, signal).map_err(|e| CliError::from_job(Some(&args.name), e))?;
        job.close().ok();
        let signal = signals::name(signal);
        if global.json {
            output::json(&json!({ "job": args.name, "signalled": count, "signal": signal }));
        } else {
            output::print(&format!(
                "sent {signal} to {count} process(es) in job {}\n",
                output::escape(&args.name)
            ));
        }
        return Ok(());
    }
    let count = kill_all(&job, &args.name)?;
    job.close().ok();
    if global.json {
        output::json(&json!({ "job": args.name, "killed": count }));
    } else {
        output::print(&format!(
            "killed {count} process(es) in job {}\n",
            output::escape(&args.name)
        ));
    }
    Ok(())
}

/// Kills the job's processes and waits for them to be gone; how many there were.
fn kill_all(job: &JobObject, name: &str) -> CliResult<usize> {
    let map = |e| CliError::from_job(Some(name), e);
    let count = job.pids().map_err(map)?.len();
    if count > 0 {
        job.terminate(1).map_err(map)?;
        if !wait_empty(job, KILL_WAIT) {
            return Err(CliError::failure(format!(
                "the processes of job {name} are still there {}s after they were killed: see \
                 `jobctl ps {name}`",
                KILL_WAIT.as_secs()
            )));
        }
    }
    Ok(count)
}

/// `freeze NAME` and `thaw NAME`: freezes or thaws every process of the job.
pub fn freeze(global: &Global, args: &NameArg, frozen: bool) -> CliResult<()> {
    let name = &args.name;
    let job = platform::open(global, name, false)?;
    let map = |e| CliError::from_job(Some(name), e);
    if frozen {
        job.freeze().map_err(map)?;
    } else {
        job.thaw().map_err(map)?;
    }
    let count = job.pids().map_err(map)?.len();
    job.close().ok();
    if global.json {
        output::json(&json!({ "job": name, "frozen": frozen, "processes": count }));
    } else {
        let done = if frozen { "froze" } else { "thawed" };
        output::print(&format!(
            "{done} {count} process(es) in job {}\n",
            output::escape(name)
        ));
    }
    Ok(())
}

/// `delete NAME [--force]`: removes the job; one with processes only with `--force`.
pub fn delete(global: &Global, args: &DeleteArgs) -> CliResult<()> {
    let name = &args.name;
    let job = platform::open(global, name, false)?;
    let count = job
        .pids()
        .map_err(|e| CliError::from_job(Some(name), e))?
        .len();
    if count > 0 && !args.force {
        return Err(CliError::failure(format!(
            "job {name} still has {count} process(es): kill them first with `jobctl kill \
             {name}`, or use `jobctl delete --force {name}`"
        )));
    }
    let killed = if args.force { kill_all(&job, name)? } else { 0 };
    delete_now(&job, name)?;
    let shown = output::escape(name);
    if global.json {
        output::json(&json!({ "job": name, "deleted": true, "killed": killed }));
    } else if killed > 0 {
        output::print(&format!(
            "deleted job {shown} (killed {killed} process(es))\n"
        ));
    } else {
        output::print(&format!("deleted job {shown}\n"));
    }
    Ok(())
}

/// Deletes an empty job, retrying while the kernel still counts a process that just exited.
fn delete_now(job: &JobObject, name: &str) -> CliResult<()> {
    let mut attempt = 0;
    loop {
        match platform::delete(job) {
            Ok(()) => return Ok(()),
            Err(err) if attempt < 50 && !matches!(err, jobobject::Error::Busy { .. }) => {
                // EBUSY from rmdir just after the last exit.
                if err.raw_os_error().is_none() {
                    return Err(CliError::from_job(Some(name), err));
                }
            }
            Err(err) => return Err(CliError::from_job(Some(name), err)),
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(2 * attempt + 1));
    }
}
