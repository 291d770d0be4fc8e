//! `top`: a refreshing table of the jobs and what they use now, like systemd-cgtop.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::error::CliResult;
use crate::output;
use crate::platform::{self, Global};
use crate::stats::Snapshot;
use crate::units;

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Time between refreshes: 1s, 500ms (at most 36500d)
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    pub delay: Duration,
    /// Stop after N refreshes, printing each table below the last instead of redrawing
    #[arg(long, short = 'n', value_name = "N", value_parser = units::parse_count)]
    pub iterations: Option<u32>,
    /// Print one table (rates over one --delay) and exit; the same as --iterations 1
    #[arg(long, conflicts_with = "iterations")]
    pub once: bool,
    /// The column to sort by, highest first (names A to Z)
    #[arg(long, value_enum, default_value_t = SortKey::Cpu)]
    pub sort: SortKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Cpu,
    Memory,
    Io,
    Procs,
    Name,
}

/// One job's row: what it uses now and its rates since the last refresh.
struct Row {
    name: String,
    snapshot: Snapshot,
    cpu_percent: Option<f64>,
    io_rate: Option<f64>,
}

/// The previous reading of a job, for rates.
struct Previous {
    at: Instant,
    cpu: Option<Duration>,
    io: Option<u64>,
}

pub fn top(global: &Global, args: &TopArgs) -> CliResult<()> {
    let iterations = if args.once { Some(1) } else { args.iterations };
    let redraw = iterations.is_none() && !global.json && std::io::stdout().is_terminal();
    let mut previous = HashMap::new();
    // The first rates need a reading one delay earlier.
    sample(global, &mut previous)?;
    let mut done = 0u32;
    while iterations.is_none_or(|n| done < n) {
        std::thread::sleep(args.delay);
        let mut rows = sample(global, &mut previous)?;
        sort(&mut rows, args.sort);
        done = done.saturating_add(1);
        if global.json {
            output::json(&to_json(&rows));
            continue;
        }
        let table = render(&rows);
        if redraw {
            let header = format!(
                "jobctl top: {} job(s), {} (refresh every {}, Ctrl-C to quit)\n\n",
                rows.len(),
                crate::watch::utc_now(),
                units::duration(args.delay)
            );
            // Home the cursor and clear the screen, then draw.
            output::print(&format!("\x1b[H\x1b[2J{header}{table}"));
        } else {
            let separator = if done > 1 { "\n" } else { "" };
            output::print(&format!("{separator}{table}"));
        }
    }
    Ok(())
}

/// Reads every job, and its rates against the previous reading.
fn sample(global: &Global, previous: &mut HashMap<String, Previous>) -> CliResult<Vec<Row>> {
    let mut rows = Vec::new();
    let mut seen = HashMap::new();
    for name in platform::list_jobs(global)? {
        // Opened only for the reading: a handle held across refreshes would keep a
        // finished job in place.
        let Ok(job) = platform::open(global, &name, false) else {
            continue;
        };
        let snapshot = Snapshot::read(&job);
        job.close().ok();
        let now = Instant::now();
        let (mut cpu_percent, mut io_rate) = (None, None);
        if let Some(before) = previous.get(&name) {
            let elapsed = now.duration_since(before.at).as_secs_f64();
            if elapsed > 0.0 {
                if let (Some(a), Some(b)) = (before.cpu, snapshot.cpu()) {
                    cpu_percent = Some(b.saturating_sub(a).as_secs_f64() / elapsed * 100.0);
                }
                if let (Some(a), Some(b)) = (before.io, snapshot.io_bytes()) {
                    io_rate = Some(b.saturating_sub(a) as f64 / elapsed);
                }
            }
        }
        seen.insert(
            name.clone(),
            Previous {
                at: now,
                cpu: snapshot.cpu(),
                io: snapshot.io_bytes(),
            },
        );
        rows.push(Row {
            name,
            snapshot,
            cpu_percent,
            io_rate,
        });
    }
    *previous = seen;
    Ok(rows)
}

fn sort(rows: &mut [Row], key: SortKey) {
    let number = |v: Option<f64>| v.unwrap_or(-1.0);
    match key {
        SortKey::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
        SortKey::Cpu => {
            rows.sort_by(|a, b| number(b.cpu_percent).total_cmp(&number(a.cpu_percent)))
        }
        SortKey::Io => rows.sort_by(|a, b| number(b.io_rate).total_cmp(&number(a.io_rate))),
        SortKey::Memory => rows.sort_by_key(|r| std::cmp::Reverse(r.snapshot.memory)),
        SortKey::Procs => rows.sort_by_key(|r| std::cmp::Reverse(r.snapshot.processes)),
    }
}

fn render(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                output::escape(&r.name).into_owned(),
                r.snapshot.processes.to_string(),
                r.cpu_percent.map_or("-".into(), |p| format!("{p:.1}%")),
                r.snapshot.memory.map_or("-".into(), units::bytes),
                r.snapshot.memory_limit.map_or("-".into(), units::bytes),
                r.io_rate
                    .map_or("-".into(), |b| format!("{}/s", units::bytes(b as u64))),
            ]
        })
        .collect();
    output::table(
        &["JOB", "PROCS", "CPU%", "MEMORY", "MEM LIMIT", "IO"],
        &cells,
        &[1, 2, 3, 4, 5],
    )
}

fn to_json(rows: &[Row]) -> Value {
    let jobs: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "processes": r.snapshot.processes,
                "cpu_percent": r.cpu_percent,
                "memory_bytes": r.snapshot.memory,
                "memory_limit_bytes": r.snapshot.memory_limit,
                "io_bytes_per_second": r.io_rate,
            })
        })
        .collect();
    json!({ "time": crate::watch::utc_now(), "jobs": jobs })
}
