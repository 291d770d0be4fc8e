//! `top`: a refreshing table of the jobs and what they use now, like systemd-cgtop. CPU is a
//! percentage of all the host's CPUs, as `--cpu-rate` counts it: a job capped at 30% shows
//! at most about 30%.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::error::CliResult;
use crate::output;
use crate::platform::{self, Global};
use crate::stats::Snapshot;
use crate::terminal;
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
    /// The column to sort by, highest first (names A to Z); on a terminal the keys c, m, i,
    /// p and n sort too
    #[arg(long, value_enum, default_value_t = SortKey::Cpu)]
    pub sort: SortKey,
    /// Never redraw: print each table below the last, as `top -b` does, until --iterations
    /// or Ctrl-C
    #[arg(long, short)]
    pub batch: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Cpu,
    Memory,
    Io,
    Procs,
    Name,
}

impl SortKey {
    /// The key that chooses it on a terminal.
    fn from_key(key: u8) -> Option<Self> {
        Some(match key.to_ascii_lowercase() {
            b'c' => SortKey::Cpu,
            b'm' => SortKey::Memory,
            b'i' => SortKey::Io,
            b'p' => SortKey::Procs,
            b'n' => SortKey::Name,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Io => "io",
            SortKey::Procs => "procs",
            SortKey::Name => "name",
        }
    }
}

/// Ctrl-C, which a terminal in raw mode delivers as a key.
const CTRL_C: u8 = 3;

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
    let redraw =
        iterations.is_none() && !args.batch && !global.json && std::io::stdout().is_terminal();
    // On a terminal: q (or Ctrl-C) quits, a letter sorts; the terminal is put back on return.
    let keys = if redraw { terminal::keys() } else { None };
    let cpus = platform::host_cpus();
    let mut sort_key = args.sort;
    let mut previous = HashMap::new();
    // The first rates need a reading one delay earlier.
    sample(global, &mut previous, cpus)?;
    let mut rows = Vec::new();
    let mut done = 0u32;
    let mut next = Instant::now() + args.delay;
    while iterations.is_none_or(|n| done < n) {
        if let Some(keys) = &keys {
            let wait = next.saturating_duration_since(Instant::now());
            match keys.keys.recv_timeout(wait) {
                Ok(b'q' | b'Q' | CTRL_C) => break,
                Ok(key) => {
                    if let Some(key) = SortKey::from_key(key) {
                        sort_key = key;
                        sort(&mut rows, sort_key);
                        draw(&rows, args, sort_key);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        next = Instant::now() + args.delay;
        rows = sample(global, &mut previous, cpus)?;
        sort(&mut rows, sort_key);
        done = done.saturating_add(1);
        if global.json {
            output::json(&to_json(&rows));
        } else if redraw {
            draw(&rows, args, sort_key);
        } else {
            let separator = if done > 1 { "\n" } else { "" };
            output::print(&format!("{separator}{}", render(&rows)));
        }
    }
    Ok(())
}

/// Redraws the screen: a header, and as many rows as the terminal has room for.
fn draw(rows: &[Row], args: &TopArgs, key: SortKey) {
    let header = format!(
        "jobctl top: {} job(s), {} (every {}, sorted by {}; q quits, c m i p n sort)\n\n",
        rows.len(),
        crate::watch::utc_now(),
        units::duration(args.delay),
        key.name(),
    );
    // The header's two lines, the table's own, and one for "N more".
    let room = terminal::size().map_or(usize::MAX, |(height, _)| {
        usize::from(height).saturating_sub(4).max(1)
    });
    let shown = rows.len().min(room);
    let mut table = render(&rows[..shown]);
    if shown < rows.len() {
        table.push_str(&format!("... {} more job(s)\n", rows.len() - shown));
    }
    // Home the cursor and clear the screen, then draw.
    output::print(&format!("\x1b[H\x1b[2J{header}{table}"));
}

/// Reads every job, and its rates against the previous reading.
fn sample(
    global: &Global,
    previous: &mut HashMap<String, Previous>,
    cpus: u32,
) -> CliResult<Vec<Row>> {
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
                    // Of all the host's CPUs, as --cpu-rate counts.
                    let share = b.saturating_sub(a).as_secs_f64() / elapsed / f64::from(cpus);
                    cpu_percent = Some(share * 100.0);
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
