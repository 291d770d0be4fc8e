//! cgroup v2: a job's limits and statistics in its one directory ([`V2`], the
//! [`Controllers`] of a unified host), and the core files every v2 cgroup has, on a hybrid
//! host's unified mount too: `cgroup.events`, `cgroup.kill`, `cgroup.freeze`, and enabling
//! controllers for children.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::time::Duration;

use super::controllers::{
    Controllers, CounterFile, CpuMax, Device, IoMax, IoRule, IoUsage, Knobs, MemoryUsage,
    ProcessCounts, V2Memory, malformed, max_or_number, nonblank, process_counts, required,
};
use super::{dir, parse, wait_until};

/// Reads `cgroup.events`.
pub(crate) fn events(cgroup: BorrowedFd<'_>) -> io::Result<parse::CgroupEvents> {
    Ok(parse::cgroup_events(&dir::read(cgroup, "cgroup.events")?)?)
}

/// Kills every process in the cgroup and its descendants with `cgroup.kill` (Linux 5.14+),
/// which the kernel makes race-free against forks. Returns `false` where the file is missing.
pub(crate) fn kill(cgroup: BorrowedFd<'_>) -> io::Result<bool> {
    if !dir::exists(cgroup, "cgroup.kill") {
        return Ok(false);
    }
    dir::write(cgroup, "cgroup.kill", b"1")?;
    Ok(true)
}

/// Freezes (`true`) or thaws the cgroup and waits, up to a second, for the kernel to report
/// it done. Returns `false` where `cgroup.freeze` is missing (before Linux 5.2).
pub(crate) fn freeze(cgroup: BorrowedFd<'_>, frozen: bool) -> io::Result<bool> {
    if !dir::exists(cgroup, "cgroup.freeze") {
        return Ok(false);
    }
    dir::write(cgroup, "cgroup.freeze", if frozen { b"1" } else { b"0" })?;
    wait_until(Duration::from_secs(1), || {
        Ok(events(cgroup)?.frozen.unwrap_or(frozen) == frozen)
    })?;
    Ok(true)
}

/// Enables in `cgroup.subtree_control` every controller the cgroup has, so that its children
/// (jobs) can be limited. Best effort: a cgroup that holds processes itself refuses.
pub(crate) fn enable_controllers(cgroup: BorrowedFd<'_>) {
    let (Ok(available), Ok(enabled)) = (
        dir::read(cgroup, "cgroup.controllers"),
        dir::read(cgroup, "cgroup.subtree_control"),
    ) else {
        return;
    };
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for controller in available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
    {
        dir::write(
            cgroup,
            "cgroup.subtree_control",
            format!("+{controller}").as_bytes(),
        )
        .ok();
    }
}

/// A job's v2 cgroup, for limits and statistics.
pub(crate) struct V2<'a> {
    pub(crate) dir: BorrowedFd<'a>,
    /// The job's `memory.peak` open for reading and writing once its peak was reset here:
    /// the kernel keeps a reset peak per open file (Linux 6.12+).
    peak: Option<&'a OnceLock<OwnedFd>>,
}

impl<'a> V2<'a> {
    pub(crate) fn new(dir: BorrowedFd<'a>) -> Self {
        V2 { dir, peak: None }
    }

    /// The job's cgroup, reading its memory peak through `peak` once that is open.
    pub(crate) fn with_peak(dir: BorrowedFd<'a>, peak: &'a OnceLock<OwnedFd>) -> Self {
        V2 {
            dir,
            peak: Some(peak),
        }
    }

    fn memory_peak(&self) -> io::Result<u64> {
        let text = match self.peak.and_then(OnceLock::get) {
            Some(fd) => dir::reread_record(fd.as_fd(), "memory.peak")?,
            None => self.read("memory.peak")?,
        };
        text.trim()
            .parse()
            .map_err(|_| malformed("memory.peak", &text))
    }
}

/// The kernel's default `cpu.weight`.
const DEFAULT_WEIGHT: u64 = 100;

impl V2<'_> {
    fn read(&self, file: &str) -> io::Result<String> {
        dir::read(self.dir, file)
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        dir::write(self.dir, file, value.as_bytes())
    }

    fn number(&self, file: &str) -> io::Result<u64> {
        let text = self.read(file)?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{file}: {text:?}")))
    }

    fn keyed(&self, file: &str, key: &str) -> io::Result<u64> {
        required(&self.read(file)?, file, key)
    }
}

fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "max".to_owned(), |v| v.to_string())
}

/// Parses a line of `io.max`: `MAJ:MIN rbps=.. wbps=.. riops=.. wiops=..`, each a number or
/// `max`.
fn io_max_line(line: &str) -> io::Result<(Device, IoRule)> {
    let bad = || malformed("io.max", line);
    let mut words = line.split_whitespace();
    let device = words.next().and_then(Device::parse).ok_or_else(bad)?;
    let mut rule = IoRule::default();
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(bad)?;
        let field = match key {
            "rbps" => &mut rule.rbps,
            "wbps" => &mut rule.wbps,
            "riops" => &mut rule.riops,
            "wiops" => &mut rule.wiops,
            _ => continue,
        };
        *field = max_or_number(value)?;
    }
    Ok((device, rule))
}

/// Adds a line of `io.stat` (`MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ...`) to `usage`;
/// `None` where it is malformed. Other keys are skipped: io.cost's and io.latency's share the
/// line, and not all of their values are integers.
fn add_io_stat_line(line: &str, usage: &mut IoUsage) -> Option<()> {
    let mut words = line.split_whitespace();
    Device::parse(words.next()?)?;
    for word in words {
        let (key, value) = word.split_once('=')?;
        let total = match key {
            "rbytes" => &mut usage.read_bytes,
            "wbytes" => &mut usage.write_bytes,
            "rios" => &mut usage.read_ios,
            "wios" => &mut usage.write_ios,
            _ => continue,
        };
        *total = total.saturating_add(value.parse().ok()?);
    }
    Some(())
}

impl Knobs for V2<'_> {
    fn default_cpu_weight(&self) -> u64 {
        DEFAULT_WEIGHT
    }

    fn cpu_weight(&self) -> io::Result<u64> {
        self.number("cpu.weight")
    }

    fn set_cpu_weight(&self, weight: u64) -> io::Result<()> {
        self.write("cpu.weight", &weight.to_string())
    }

    fn cpu_max(&self) -> io::Result<CpuMax> {
        let text = self.read("cpu.max")?;
        let mut words = text.split_whitespace();
        let (Some(quota), Some(period)) = (words.next(), words.next()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cpu.max: {text:?}"),
            ));
        };
        let period = period.parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("cpu.max: {text:?}"))
        })?;
        Ok(CpuMax {
            quota: max_or_number(quota)?,
            period,
        })
    }

    fn set_cpu_max(&self, max: CpuMax) -> io::Result<()> {
        // One write sets both, so no intermediate state is ever refused.
        self.write("cpu.max", &format!("{} {}", limit(max.quota), max.period))
    }

    fn cpus(&self) -> io::Result<String> {
        Ok(self.read("cpuset.cpus")?.trim().to_owned())
    }

    fn set_cpus(&self, list: &str) -> io::Result<()> {
        // An empty list (the parent's CPUs) is written as a bare newline.
        self.write("cpuset.cpus", if list.is_empty() { "\n" } else { list })
    }

    fn unrestricted_cpus(&self) -> io::Result<String> {
        Ok(String::new())
    }

    fn parent_cpus(&self) -> io::Result<String> {
        Ok(self.read("../cpuset.cpus.effective")?.trim().to_owned())
    }

    fn memory_max(&self) -> io::Result<Option<u64>> {
        max_or_number(&self.read("memory.max")?)
    }

    fn set_memory_max(&self, bytes: Option<u64>) -> io::Result<()> {
        self.write("memory.max", &limit(bytes))
    }

    fn io_rules(&self) -> io::Result<Vec<(Device, IoRule)>> {
        let mut rules = Vec::new();
        for line in nonblank(&self.read("io.max")?) {
            rules.push(io_max_line(line)?);
        }
        Ok(rules)
    }

    fn set_io_rule(&self, device: Device, rule: IoRule) -> io::Result<()> {
        // A line of four `max` removes the disk's rule.
        let IoRule {
            rbps,
            wbps,
            riops,
            wiops,
        } = rule;
        self.write(
            "io.max",
            &format!(
                "{device} rbps={} wbps={} riops={} wiops={}",
                limit(rbps),
                limit(wbps),
                limit(riops),
                limit(wiops)
            ),
        )
    }

    fn io_rule_for(&self, limit: IoMax) -> IoRule {
        IoRule::new(limit, None)
    }

    fn pids_max(&self) -> io::Result<Option<u64>> {
        max_or_number(&self.read("pids.max")?)
    }

    fn set_pids_max(&self, max: Option<u64>) -> io::Result<()> {
        self.write("pids.max", &limit(max))
    }

    fn memory_high(&self) -> io::Result<Option<u64>> {
        match self.read("memory.high") {
            Ok(text) => max_or_number(&text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn set_memory_high(&self, bytes: Option<u64>) -> io::Result<()> {
        self.write("memory.high", &limit(bytes))
    }

    fn swap_max(&self) -> io::Result<Option<u64>> {
        match self.read("memory.swap.max") {
            Ok(text) => max_or_number(&text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn set_swap_max(&self, bytes: Option<u64>) -> io::Result<()> {
        self.write("memory.swap.max", &limit(bytes))
    }
}

impl Controllers for V2<'_> {
    fn memory_usage(&self) -> io::Result<MemoryUsage> {
        let current = self.number("memory.current")?;
        let peak = match self.memory_peak() {
            // memory.peak exists from Linux 5.19.
            Err(err) if err.kind() == io::ErrorKind::NotFound => current,
            peak => peak?,
        };
        // Without swap accounting (or CONFIG_SWAP) there is no such file.
        let swap = self.number("memory.swap.current").ok();
        Ok(MemoryUsage {
            current,
            peak,
            swap,
        })
    }

    fn cpu_times(&self) -> io::Result<(Duration, Duration)> {
        let stat = self.read("cpu.stat")?;
        let get = |key| required(&stat, "cpu.stat", key).map(Duration::from_micros);
        Ok((get("user_usec")?, get("system_usec")?))
    }

    fn page_faults(&self) -> io::Result<u64> {
        self.keyed("memory.stat", "pgfault")
    }

    fn private_memory(&self) -> io::Result<u64> {
        self.keyed("memory.stat", "anon")
    }

    fn io_accounting(&self) -> bool {
        dir::exists(self.dir, "io.stat")
    }

    fn io_usage(&self) -> io::Result<IoUsage> {
        let mut usage = IoUsage::default();
        for line in nonblank(&self.read("io.stat")?) {
            add_io_stat_line(line, &mut usage).ok_or_else(|| malformed("io.stat", line))?;
        }
        Ok(usage)
    }

    fn io_controller(&self) -> &'static str {
        "io"
    }

    fn io_accounting_needs_rules(&self) -> bool {
        false
    }

    fn how_to_get(&self, _controller: &str, parent: &std::path::Path) -> String {
        format!(
            "enable it in the cgroup.subtree_control of the job's parent, {} (a cgroup that \
             holds processes itself cannot enable controllers: choose another cgroup parent: \
             os::linux::OptionsExt::cgroup_parent)",
            parent.display()
        )
    }

    fn process_counts(&self) -> io::Result<ProcessCounts> {
        process_counts(self.dir)
    }

    fn lacks(&self, setting: V2Memory) -> Option<String> {
        if dir::exists(self.dir, setting.file()) {
            return None;
        }
        let why = match setting {
            V2Memory::Swap if dir::exists(self.dir, "memory.max") => {
                "the kernel keeps no swap accounting (built without CONFIG_SWAP, or booted with \
                 swapaccount=0)"
            }
            _ => "the job has no memory controller",
        };
        Some(format!("{}: {why}", setting.what()))
    }

    fn oom_group(&self) -> io::Result<bool> {
        match self.read("memory.oom.group") {
            Ok(text) => Ok(text.trim() == "1"),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn set_oom_group(&self, all: bool) -> io::Result<()> {
        self.write("memory.oom.group", if all { "1" } else { "0" })
    }

    /// Writes to `memory.peak` (Linux 6.12+; before, it cannot be opened for writing), and
    /// keeps the file open: the reset holds for reads through it.
    fn reset_memory_peak(&self) -> io::Result<()> {
        let unsupported = || {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel's memory.peak takes no reset before Linux 6.12",
            )
        };
        let Some(held) = self.peak else {
            return Err(unsupported());
        };
        // Before 6.12 the file takes no write: opening it so is refused, or the write is.
        let refused = |err: io::Error| match err.raw_os_error() {
            Some(libc::EACCES | libc::EINVAL) => unsupported(),
            _ => err,
        };
        if let Some(fd) = held.get() {
            return dir::write_all_once(fd.as_fd(), b"reset").map_err(refused);
        }
        let fd = dir::open_read_write(self.dir, "memory.peak").map_err(refused)?;
        dir::write_all_once(fd.as_fd(), b"reset").map_err(refused)?;
        // Kept only once it took the reset: reads go through it from now on.
        let _ = held.set(fd);
        Ok(())
    }

    fn counter_files(&self) -> Vec<(BorrowedFd<'_>, CounterFile)> {
        vec![
            (self.dir, CounterFile::MemoryEvents),
            (self.dir, CounterFile::PidsEvents),
        ]
    }
}

#[cfg(test)]
mod tests;
