//! `jobctl`: run a command tree under limits, and manage named jobs, on top of the
//! `jobobject` library. See the README for the exit statuses.

mod doctor;
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
mod terminal;
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
  jobctl run --timeout 10m --signal INT --kill-after 30s -- ./server
  jobctl run --wait-all --json -- sh -c 'sleep 1 & echo started'

The exit status is the command's (128+N when signal N ended it); 124 when --timeout ran out;
125 when jobctl failed before the command ran; 126/127 when it could not be executed / found.
At the timeout every process of the job gets --signal (TERM), and what is left --kill-after
(10s) is killed. Every signal that would end jobctl (SIGTERM, SIGHUP, SIGUSR1, SIGALRM, the
real-time signals...) is passed on to the command, so that jobctl stays to clean up; Ctrl-C
reaches the command from the terminal as it would without jobctl, and jobctl never escalates
it.")]
    Run(Box<run::RunArgs>),
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
    #[command(
        after_help = "Examples:\n  jobctl stats build --json\n  jobctl stats build --interval 5s --json >> build-usage.jsonl"
    )]
    Stats(named::StatsArgs),
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
    /// Kill every process of a job (the job itself stays), or send them a signal
    #[command(after_help = "Examples:\n  jobctl kill build\n  jobctl kill --signal TERM build")]
    Kill(named::KillArgs),
    /// Wait until a job holds no process (at once if it holds none)
    #[command(after_help = "Examples:
  jobctl wait build
  jobctl wait --timeout 10m build || jobctl kill build

The exit status is 0 once the job is empty, 124 when --timeout ran out first.")]
    Wait(named::WaitArgs),
    /// Freeze every process of a job: they stop where they are, until `jobctl thaw`
    #[command(after_help = "Examples:
  jobctl freeze build && sleep 60 && jobctl thaw build
  jobctl kill build        # a frozen job can be killed

A process cannot be started in a frozen job (`jobctl run --job` refuses). Linux only: Windows
documents no way to freeze a job.")]
    Freeze(named::NameArg),
    /// Thaw a job frozen by `jobctl freeze`: its processes run on
    #[command(after_help = "Example:\n  jobctl thaw build")]
    Thaw(named::NameArg),
    /// Show what works here: each feature tried on a throwaway job, and why not where not
    #[command(after_help = "Examples:
  jobctl doctor
  jobctl doctor --json | jq '.features[] | select(.available | not)'

The job is made where --parent (or JOBOBJECT_CGROUP_PARENT) says, as `jobctl run` would make
it, and removed at once. The exit status is 1 when no job can be made there at all.")]
    Doctor,
    /// Print a job's notifications as they come: all processes exited, OOM kills, limit hits
    #[command(
        after_help = "Examples:\n  jobctl watch build\n  jobctl watch build --json --count 1   # wait until the job empties"
    )]
    Watch(watch::WatchArgs),
    /// Delete a job; one that still has processes only with --force (which kills them)
    #[command(after_help = "Example:\n  jobctl delete --force build")]
    Delete(named::DeleteArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell
    #[command(after_help = "Examples:
  jobctl completions bash > /etc/bash_completion.d/jobctl
  jobctl completions zsh > \"${fpath[1]}/_jobctl\"
  jobctl completions fish > ~/.config/fish/completions/jobctl.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), for man(1)
    #[command(
        after_help = "Example:\n  jobctl man > /usr/local/share/man/man1/jobctl.1 && man jobctl"
    )]
    Man,
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
        Cmd::Wait(args) => named::wait(&global, args),
        Cmd::Doctor => doctor::doctor(&global),
        Cmd::Freeze(args) => named::freeze(&global, args, true).map(|()| status::OK),
        Cmd::Thaw(args) => named::freeze(&global, args, false).map(|()| status::OK),
        Cmd::Watch(args) => watch::watch(&global, args).map(|()| status::OK),
        Cmd::Delete(args) => named::delete(&global, args).map(|()| status::OK),
        Cmd::Top(args) => top::top(&global, args).map(|()| status::OK),
        Cmd::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "jobctl", &mut std::io::stdout());
            Ok(status::OK)
        }
        Cmd::Man => manual(),
    };
    result.unwrap_or_else(|err| {
        if global.json {
            output::json_error(&err.message, err.status);
        } else {
            output::eprint(&format!("{err}\n"));
        }
        err.status
    })
}

/// A bad value gets one line naming the option, the value and the fix; other command-line
/// errors keep clap's usage text. Help and version are not errors.
fn usage_error(err: clap::Error) -> i32 {
    // Asked for JSON (the line did not parse, so only the raw arguments tell): the error too.
    let json = std::env::args_os().any(|a| a == "--json");
    let is_error = !matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if json && is_error {
        let message = match err.kind() {
            ErrorKind::ValueValidation => value_error(&err),
            // clap's own first line, without its "error: ".
            _ => {
                let text = err.to_string();
                let first = text.lines().next().unwrap_or_default();
                first.trim_start_matches("error: ").to_owned()
            }
        };
        output::json_error(&message, status::USAGE);
        return status::USAGE;
    }
    if err.kind() == ErrorKind::ValueValidation {
        output::note(&value_error(&err));
        return status::USAGE;
    }
    let code = err.exit_code();
    err.print().ok();
    code
}

/// A bad value, in one line: which option, the value, and the fix.
fn value_error(err: &clap::Error) -> String {
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split(' ').next().unwrap_or(arg).to_owned(),
        _ => "an option".to_owned(),
    };
    let why = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_else(|| err.to_string());
    format!("bad value for {arg}: {why}")
}

/// Writes the manual page, made from the same definitions as `--help`.
fn manual() -> CliResult<i32> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| error::CliError::failure(format!("cannot render the manual page: {e}")))?;
    output::print(&String::from_utf8_lossy(&page));
    Ok(status::OK)
}
