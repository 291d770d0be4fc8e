//! `jobctl`: run a command tree under limits, and manage named jobs, on top of the
//! `jobobject` library. See the README for the exit statuses.

mod error;
mod limits;
mod named;
mod output;
mod platform;
mod process;
mod run;
mod signals;
mod stats;
mod summary;
mod supervise;
mod top;
mod units;
mod watch;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

use error::{CliResult, status};
use platform::Global;

const AFTER_HELP: &str = "\
Examples:
  jobctl run --memory 256M --cpu-rate 50% --timeout 60s -- make -j4
  jobctl create build --memory 2G --max-processes 200
  jobctl list
  jobctl top

Exit status: 0 success, 1 failure, 2 bad command line; `run` exits with the command's status
(128+N when signal N ended it), 124 on --timeout, 125 if jobctl itself failed, 126 if the
command could not be executed, 127 if it was not found.";

/// Run a command tree under limits, and manage named jobs (groups of processes controlled
/// as one unit: cgroups on Linux, Job Objects on Windows).
#[derive(Parser, Debug)]
#[command(name = "jobctl", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// Where jobs live (Linux): `self` (below jobctl's own cgroups), `shared` (/jobobject at
    /// the top of each cgroup hierarchy) or a path in each hierarchy. Default:
    /// $JOBOBJECT_CGROUP_PARENT, else shared
    #[arg(long, global = true, value_name = "self|shared|PATH")]
    parent: Option<String>,
    /// Print JSON (one line) instead of tables; `run` prints its summary as JSON
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command in a new job with limits; kill what it leaves behind; print a summary
    #[command(after_help = "Examples:
  jobctl run --memory 512M --cpu-rate 25% -- sh -c 'make -j4'
  jobctl run --timeout 30s --name nightly -- ./backup.sh
  jobctl run --wait-all --json -- sh -c 'sleep 1 & echo started'

The exit status is the command's (128+N when signal N ended it); 124 when --timeout ran out;
125 when jobctl failed before the command ran; 126/127 when it could not be executed / found.
Every signal that would end jobctl (SIGTERM, SIGHUP, SIGUSR1, SIGALRM, the real-time
signals...) is passed on to the command, so that jobctl stays to clean up; a second Ctrl-C
kills the whole job.")]
    Run(run::RunArgs),
    /// Create a named job that stays until `jobctl delete`
    #[command(
        after_help = "Example:\n  jobctl create build --memory 2G --cpu-rate 50% --max-processes 200"
    )]
    Create(named::CreateArgs),
    /// List the jobs, with their processes, CPU time, memory and limits
    #[command(after_help = "Example:\n  jobctl list --json")]
    List,
    /// Show the processes of a job (pid and command line)
    #[command(after_help = "Example:\n  jobctl ps build")]
    Ps(named::NameArg),
    /// Show what a job uses: CPU time, memory, I/O, processes
    #[command(after_help = "Example:\n  jobctl stats build --json")]
    Stats(named::NameArg),
    /// Show a job's limits, or change them
    #[command(
        after_help = "Examples:\n  jobctl limits build\n  jobctl limits build --memory 4G --cpus 0-3"
    )]
    Limits(named::LimitsArgs),
    /// Move running processes into a job (their later children follow)
    #[command(after_help = "Example:\n  jobctl assign build $(pgrep -f 'make -j4')

Process 1 and jobctl's own ancestors (such as the shell that runs it) are refused unless
--force: a `jobctl kill` of the job would kill them.")]
    Assign(named::AssignArgs),
    /// Kill every process of a job (the job itself stays)
    #[command(after_help = "Example:\n  jobctl kill build")]
    Kill(named::NameArg),
    /// Print a job's notifications as they come: all processes exited, OOM kills, limit hits
    #[command(
        after_help = "Examples:\n  jobctl watch build\n  jobctl watch build --json --count 1   # wait until the job empties"
    )]
    Watch(watch::WatchArgs),
    /// Delete a job; one that still has processes only with --force (which kills them)
    #[command(after_help = "Example:\n  jobctl delete --force build")]
    Delete(named::DeleteArgs),
    /// A live table of the jobs: CPU %, memory, I/O rate, processes
    #[command(after_help = "Examples:\n  jobctl top\n  jobctl top --once --delay 2s --json")]
    Top(top::TopArgs),
}

fn main() {
    let status = match Cli::try_parse() {
        Ok(cli) => execute(cli),
        Err(err) => usage_error(err),
    };
    std::process::exit(status);
}

/// Runs the subcommand; everything it holds is dropped before the exit.
fn execute(cli: Cli) -> i32 {
    let global = Global {
        parent: cli.parent,
        json: cli.json,
    };
    let result: CliResult<i32> = match &cli.command {
        Cmd::Run(args) => run::run(&global, args),
        Cmd::Create(args) => named::create(&global, args).map(|()| status::OK),
        Cmd::List => named::list(&global).map(|()| status::OK),
        Cmd::Ps(args) => named::ps(&global, args).map(|()| status::OK),
        Cmd::Stats(args) => named::stats(&global, args).map(|()| status::OK),
        Cmd::Limits(args) => named::limits(&global, args).map(|()| status::OK),
        Cmd::Assign(args) => named::assign(&global, args).map(|()| status::OK),
        Cmd::Kill(args) => named::kill(&global, args).map(|()| status::OK),
        Cmd::Watch(args) => watch::watch(&global, args).map(|()| status::OK),
        Cmd::Delete(args) => named::delete(&global, args).map(|()| status::OK),
        Cmd::Top(args) => top::top(&global, args).map(|()| status::OK),
    };
    result.unwrap_or_else(|err| {
        output::eprint(&format!("{err}\n"));
        err.status
    })
}

/// A bad value gets one line naming the option, the value and the fix; other command-line
/// errors keep clap's usage text. Help and version are not errors.
fn usage_error(err: clap::Error) -> i32 {
    if err.kind() == ErrorKind::ValueValidation {
        let arg = match err.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => arg.split(' ').next().unwrap_or(arg).to_owned(),
            _ => "an option".to_owned(),
        };
        let why = std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_else(|| err.to_string());
        output::note(&format!("bad value for {arg}: {why}"));
        return status::USAGE;
    }
    let code = err.exit_code();
    err.print().ok();
    code
}
