//! `jobctl`: the command-line tool of the `jobobject` project.
//!
//! For now it only reports its version; `run` and the named-job commands follow.

use clap::Parser;

/// Run a command tree under limits and manage named jobs.
#[derive(Parser, Debug)]
#[command(name = "jobctl", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!("jobctl {}", env!("CARGO_PKG_VERSION"));
}
