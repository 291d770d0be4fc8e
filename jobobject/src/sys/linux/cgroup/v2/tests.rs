//! [`V2`] against fixture trees: a job's v2 directory with its files as the kernel writes
//! them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::*;
use crate::sys::linux::cgroup::controllers::LimitEvents;
use crate::sys::linux::cgroup::controllers::fixture::{GARBAGE, Tree};

const SDA: Device = Device { major: 8, minor: 0 };
const VDA: Device = Device {
    major: 254,
    minor: 0,
};

/// `memory.stat` of a job using 3.5 MiB (Linux 6.x keys, in the kernel's order).
const MEMORY_STAT: &str = "\
anon 1703936
file 1937408
kernel 520192
kernel_stack 49152
pagetables 94208
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 1159168
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 1695744
active_anon 8192
inactive_file 1937408
active_file 0
unevictable 0
slab_reclaimable 143672
slab_unreclaimable 176408
slab 320080
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgscan_kswapd 0
pgscan_direct 0
pgsteal_kswapd 0
pgsteal_direct 0
pgfault 5114
pgmajfault 12
pgrefill 0
pgactivate 2
pgdeactivate 0
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
thp_fault_alloc 0
thp_collapse_alloc 0
";

/// A job's v2 directory as the kernel makes it, every controller enabled.
struct Fixture {
    tree: Tree,
    dir: OwnedFd,
}

impl Fixture {
    fn new() -> Self {
        let tree = Tree::new();
        tree.dir(
            "job",
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cgroup.procs", ""),
                ("cpu.weight", "100\n"),
                ("cpu.max", "max 100000\n"),
                (
                    "cpu.stat",
                    "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnice_usec 0\nnr_periods 0\n\
                     nr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
                ),
                ("cpuset.cpus", "\n"),
                ("cpuset.cpus.effective", "0-1\n"),
                ("memory.max", "max\n"),
                ("memory.current", "0\n"),
                ("memory.peak", "0\n"),
                ("memory.stat", MEMORY_STAT),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
                ),
                ("io.max", ""),
                ("io.stat", ""),
                ("pids.max", "max\n"),
                ("pids.events", "max 0\n"),
            ],
        );
        let dir = tree.open("job");
        Fixture { tree, dir }
    }

    fn v2(&self) -> V2<'_> {
        V2::new(self.dir.as_fd())
    }

    fn set(&self, file: &str, text: impl AsRef<[u8]>) {
        self.tree.set(&format!("job/{file}"), text);
    }

    /// What `change` writes to `file`.
    fn written(&self, file: &str, change: impl FnOnce(&V2<'_>) -> io::Result<()>) -> String {
        let (result, text) = self
            .tree
            .written(&format!("job/{file}"), || change(&self.v2()));
        result.unwrap();
        text
    }

    fn remove(&self, file: &str) {
        self.tree.remove(&format!("job/{file}"));
    }
}

/// Asserts that reading `file` with each of `texts` in it is an `InvalidData` error.
fn malformed<T: std::fmt::Debug>(
    fx: &Fixture,
    file: &str,
    texts: &[&str],
    get: impl Fn(&V2<'_>) -> io::Result<T>,
) {
    for text in texts {
        fx.set(file, text);
        match get(&fx.v2()) {
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{file} {text:?}"),
            Ok(value) => panic!("{file} {text:?} read as {value:?}"),
        }
    }
}

fn rule(rbps: Option<u64>, wbps: Option<u64>, riops: Option<u64>, wiops: Option<u64>) -> IoRule {
    IoRule {
        rbps,
        wbps,
        riops,
        wiops,
    }
}

#[test]
fn cpu_weight() {
    let fx = Fixture::new();
    assert_eq!(fx.v2().default_cpu_weight(), 100);
    assert_eq!(fx.v2().cpu_weight().unwrap(), 100);
    fx.set("cpu.weight", "10000\n");
    assert_eq!(fx.v2().cpu_weight().unwrap(), 10_000);
    assert_eq!(fx.written("cpu.weight", |c| c.set_cpu_weight(400)), "400");
    let bad = ["", "\n", "max\n", "-1\n", "1 2\n", "18446744073709551616\n"];
    malformed(&fx, "cpu.weight", &bad, |c| c.cpu_weight());
}

#[test]
fn cpu_max() {
    let fx = Fixture::new();
    let unlimited = CpuMax {
        quota: None,
        period: 100_000,
    };
    assert_eq!(fx.v2().cpu_max().unwrap(), unlimited);
    fx.set("cpu.max", "50000 100000\n");
    let half = CpuMax {
        quota: Some(50_000),
        period: 100_000,
    };
    assert_eq!(fx.v2().cpu_max().unwrap(), half);
    fx.set("cpu.max", "2000 1000000\n");
    assert_eq!(fx.v2().cpu_max().unwrap().period, 1_000_000);

    // Quota and period in one write.
    let set = |max| fx.written("cpu.max", |c| c.set_cpu_max(max));
    assert_eq!(set(half), "50000 100000");
    assert_eq!(set(unlimited), "max 100000");
    let slow = CpuMax {
        quota: Some(2_000),
        period: 1_000_000,
    };
    assert_eq!(set(slow), "2000 1000000");

    let bad = [
        "",
        "max\n",
        "50000\n",
        "max max\n",
        "x 100000\n",
        "-1 100000\n",
        "50000 -1\n",
        "50000 100000x\n",
    ];
    malformed(&fx, "cpu.max", &bad, |c| c.cpu_max());
}

#[test]
fn cpus() {
    let fx = Fixture::new();
    // Empty: the parent's CPUs apply.
    assert_eq!(fx.v2().cpus().unwrap(), "");
    fx.set("cpuset.cpus", "0-1,3\n");
    assert_eq!(fx.v2().cpus().unwrap(), "0-1,3");
    assert_eq!(fx.written("cpuset.cpus", |c| c.set_cpus("0,2-3")), "0,2-3");
    assert_eq!(fx.written("cpuset.cpus", |c| c.set_cpus("")), "\n");
}

#[test]
fn process_counts() {
    let fx = Fixture::new();
    fx.set("pids.peak", "7\n");
    fx.set("pids.events", "max 3\n");
    let counts = fx.v2().process_counts().unwrap();
    assert_eq!((counts.peak, counts.refused), (Some(7), Some(3)));
    // Kernels before 6.1 have no pids.peak; a job without the pids controller, neither file.
    fx.tree.remove("job/pids.peak");
    let counts = fx.v2().process_counts().unwrap();
    assert_eq!((counts.peak, counts.refused), (None, Some(3)));
    fx.set("pids.events", "max lots\n");
    assert!(fx.v2().process_counts().is_err());
}

#[test]
fn cpus_without_a_limit() {
    let fx = Fixture::new();
    // No list of its own is no limit; the parent's effective CPUs are what it may use.
    assert_eq!(fx.v2().unrestricted_cpus().unwrap(), "");
    fx.tree.set("cpuset.cpus.effective", "0-3\n");
    assert_eq!(fx.v2().parent_cpus().unwrap(), "0-3");
}

#[test]
fn memory_max() {
    let fx = Fixture::new();
    assert_eq!(fx.v2().memory_max().unwrap(), None);
    fx.set("memory.max", "268435456\n");
    assert_eq!(fx.v2().memory_max().unwrap(), Some(256 << 20));
    let set = |bytes| fx.written("memory.max", |c| c.set_memory_max(bytes));
    assert_eq!(set(Some(256 << 20)), "268435456");
    assert_eq!(set(None), "max");
    let bad = ["", "MAX\n", "-1\n", "1G\n", "18446744073709551616\n"];
    malformed(&fx, "memory.max", &bad, |c| c.memory_max());
}

#[test]
fn io_rules() {
    let fx = Fixture::new();
    assert_eq!(fx.v2().io_rules().unwrap(), vec![]);
    fx.set(
        "io.max",
        "8:0 rbps=1048576 wbps=1048576 riops=max wiops=max\n\
         254:0 rbps=max wbps=max riops=100 wiops=120\n",
    );
    let mib = Some(1 << 20);
    assert_eq!(
        fx.v2().io_rules().unwrap(),
        vec![
            (SDA, rule(mib, mib, None, None)),
            (VDA, rule(None, None, Some(100), Some(120)))
        ]
    );
    // Read and write limits of their own: the API reports the write side.
    fx.set("io.max", "8:0 rbps=max wbps=2097152 riops=7 wiops=max\n");
    let rules = fx.v2().io_rules().unwrap();
    assert_eq!(rules, vec![(SDA, rule(None, Some(2 << 20), Some(7), None))]);
    assert_eq!(
        rules[0].1.limit(),
        IoMax {
            bps: Some(2 << 20),
            iops: None
        }
    );

    let set = |device, rule| fx.written("io.max", |c| c.set_io_rule(device, rule));
    assert_eq!(
        set(VDA, rule(mib, mib, Some(50), Some(50))),
        "254:0 rbps=1048576 wbps=1048576 riops=50 wiops=50"
    );
    // All four `max`: the kernel removes the disk's rule.
    assert_eq!(
        set(SDA, IoRule::default()),
        "8:0 rbps=max wbps=max riops=max wiops=max"
    );
    // v2 counts I/O without any rule: none is kept for accounting.
    assert_eq!(fx.v2().io_rule_for(IoMax::default()), IoRule::default());
    let limit = IoMax {
        bps: mib,
        iops: None,
    };
    assert_eq!(fx.v2().io_rule_for(limit), rule(mib, mib, None, None));

    let bad = [
        "8:0 rbps=x wbps=max riops=max wiops=max\n",
        "8:0 rbps=-1 wbps=max riops=max wiops=max\n",
        "8:0 rbps=max wbps=max riops=max wiops=18446744073709551616\n",
        "sda rbps=max wbps=max riops=max wiops=max\n",
        "8:0 rbps\n",
        "garbage\n",
    ];
    malformed(&fx, "io.max", &bad, |c| c.io_rules());
}

#[test]
fn pids_max() {
    let fx = Fixture::new();
    assert_eq!(fx.v2().pids_max().unwrap(), None);
    fx.set("pids.max", "64\n");
    assert_eq!(fx.v2().pids_max().unwrap(), Some(64));
    let set = |max| fx.written("pids.max", |c| c.set_pids_max(max));
    assert_eq!(set(Some(4_194_304)), "4194304");
    assert_eq!(set(None), "max");
    let bad = ["", "unlimited\n", "-1\n", "64 64\n"];
    malformed(&fx, "pids.max", &bad, |c| c.pids_max());
}

#[test]
fn memory_usage() {
    let fx = Fixture::new();
    fx.set("memory.current", "3670016\n");
    fx.set("memory.peak", "4194304\n");
    let usage = fx.v2().memory_usage().unwrap();
    assert_eq!((usage.current, usage.peak), (3_670_016, 4_194_304));
    // No memory.peak before Linux 5.19: the current use is the best known peak.
    fx.remove("memory.peak");
    assert_eq!(fx.v2().memory_usage().unwrap().peak, 3_670_016);
    let bad = ["", "max\n", "-4096\n"];
    malformed(&fx, "memory.current", &bad, |c| c.memory_usage());
    fx.set("memory.current", "3670016\n");
    malformed(&fx, "memory.peak", &bad, |c| c.memory_usage());
}

#[test]
fn cpu_times() {
    let fx = Fixture::new();
    assert_eq!(
        fx.v2().cpu_times().unwrap(),
        (Duration::ZERO, Duration::ZERO)
    );
    fx.set(
        "cpu.stat",
        "usage_usec 3000123\nuser_usec 2250000\nsystem_usec 750123\nnice_usec 0\n\
         nr_periods 40\nnr_throttled 3\nthrottled_usec 81234\nnr_bursts 0\nburst_usec 0\n",
    );
    assert_eq!(
        fx.v2().cpu_times().unwrap(),
        (Duration::from_millis(2250), Duration::from_micros(750_123))
    );
    let bad = [
        "",
        "usage_usec 5\n",
        "user_usec 5\n",
        "user_usec x\nsystem_usec 5\n",
        "user_usec 5\nsystem_usec -5\n",
    ];
    malformed(&fx, "cpu.stat", &bad, |c| c.cpu_times());
}

#[test]
fn page_faults_and_private_memory() {
    let fx = Fixture::new();
    assert_eq!(fx.v2().page_faults().unwrap(), 5114);
    assert_eq!(fx.v2().private_memory().unwrap(), 1_703_936);
    // Keys are whole words: neither pgmajfault nor anon_thp is read for another.
    fx.set(
        "memory.stat",
        "anon_thp 4096\npgmajfault 3\nanon 8192\npgfault 9\n",
    );
    assert_eq!(fx.v2().page_faults().unwrap(), 9);
    assert_eq!(fx.v2().private_memory().unwrap(), 8192);
    let bad = [
        "",
        "file 0\n",
        "anon x\npgfault x\n",
        "anon -1\npgfault -1\n",
    ];
    malformed(&fx, "memory.stat", &bad, |c| c.page_faults());
    malformed(&fx, "memory.stat", &bad, |c| c.private_memory());
}

#[test]
fn io_usage() {
    let fx = Fixture::new();
    assert!(fx.v2().io_accounting());
    assert_eq!(fx.v2().io_usage().unwrap(), IoUsage::default());
    // Two disks, one with io.cost's extra keys (not integers), one with io.latency's.
    fx.set(
        "io.stat",
        "8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0 \
         cost.vrate=100.00 cost.usage=210 cost.wait=0 cost.indebt=0 cost.indelay=0\n\
         254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=512 dios=1 \
         depth=max avg_lat=10 win=100\n",
    );
    assert_eq!(
        fx.v2().io_usage().unwrap(),
        IoUsage {
            read_bytes: 1_463_296,
            write_bytes: 314_781_696,
            read_ios: 193,
            write_ios: 355,
        }
    );
    let bad = [
        "8:0 rbytes=x wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n",
        "8:0 rbytes=1 wbytes=-1 rios=0 wios=0 dbytes=0 dios=0\n",
        "8:0 rbytes=1 wbytes=1 rios=18446744073709551616 wios=0\n",
        "rbytes=1 wbytes=1 rios=1 wios=1\n",
        "8:0 rbytes 1\n",
        "garbage\n",
    ];
    malformed(&fx, "io.stat", &bad, |c| c.io_usage());
    // No io controller for the job: no io.stat.
    fx.remove("io.stat");
    assert!(!fx.v2().io_accounting());
    let err = fx.v2().io_usage().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn limit_events() {
    let fx = Fixture::new();
    // A fresh job's memory.events: every count 0, and so the job's own OOMs.
    let fresh = LimitEvents {
        limit_ooms: Some(0),
        ..LimitEvents::default()
    };
    assert_eq!(fx.v2().limit_events().unwrap(), fresh);
    fx.set(
        "memory.events",
        "low 0\nhigh 4\nmax 7\noom 1\noom_kill 2\noom_group_kill 1\n",
    );
    fx.set("pids.events", "max 3\n");
    let events = LimitEvents {
        memory_max: 7,
        oom_kills: 2,
        limit_ooms: Some(1),
        group_kills: 1,
        pids_max: 3,
    };
    assert_eq!(fx.v2().limit_events().unwrap(), events);
    // Counters of controllers the job does not have are zero.
    fx.remove("memory.events");
    fx.remove("pids.events");
    assert_eq!(fx.v2().limit_events().unwrap(), LimitEvents::default());
}

/// What a getter reads, its setter writes back as the kernel showed it: putting back a limit
/// after a refused change leaves the file as it was.
#[test]
fn values_read_are_written_back_as_the_kernel_shows_them() {
    let fx = Fixture::new();
    let weight = (
        |c: &V2<'_>| c.cpu_weight(),
        |c: &V2<'_>, v| c.set_cpu_weight(v),
    );
    round_trip(&fx, "cpu.weight", "250\n", weight);
    let max = (|c: &V2<'_>| c.cpu_max(), |c: &V2<'_>, v| c.set_cpu_max(v));
    round_trip(&fx, "cpu.max", "max 100000\n", max);
    round_trip(&fx, "cpu.max", "50000 100000\n", max);
    let cpus = (
        |c: &V2<'_>| c.cpus(),
        |c: &V2<'_>, v: String| c.set_cpus(&v),
    );
    round_trip(&fx, "cpuset.cpus", "0-1,3\n", cpus);
    let memory = (
        |c: &V2<'_>| c.memory_max(),
        |c: &V2<'_>, v| c.set_memory_max(v),
    );
    round_trip(&fx, "memory.max", "max\n", memory);
    round_trip(&fx, "memory.max", "268435456\n", memory);
    let io = (
        |c: &V2<'_>| Ok(c.io_rules()?[0]),
        |c: &V2<'_>, (device, rule)| c.set_io_rule(device, rule),
    );
    let line = "8:0 rbps=1048576 wbps=1048576 riops=max wiops=120\n";
    round_trip(&fx, "io.max", line, io);
    let pids = (|c: &V2<'_>| c.pids_max(), |c: &V2<'_>, v| c.set_pids_max(v));
    round_trip(&fx, "pids.max", "max\n", pids);
    round_trip(&fx, "pids.max", "64\n", pids);
    // An empty CPU list reads as empty, and is written as a newline.
    fx.set("cpuset.cpus", "\n");
    let cpus = fx.v2().cpus().unwrap();
    assert_eq!(fx.written("cpuset.cpus", |c| c.set_cpus(&cpus)), "\n");
}

/// Reads `file` showing `text` with `get`, and asserts that `set` writes the value back as
/// that text.
fn round_trip<T>(
    fx: &Fixture,
    file: &str,
    text: &str,
    (get, set): (
        impl Fn(&V2<'_>) -> io::Result<T>,
        impl Fn(&V2<'_>, T) -> io::Result<()>,
    ),
) {
    fx.set(file, text);
    let value = get(&fx.v2()).unwrap();
    assert_eq!(
        fx.written(file, |c| set(c, value)),
        text.trim_end(),
        "{file}"
    );
}

/// Without a controller's files, its getters and setters are `NotFound` (what the limits
/// layer reports as a controller the job lacks), and no setter makes a file.
#[test]
fn missing_files() {
    let tree = Tree::new();
    tree.dir("job", &[]);
    let dir = tree.open("job");
    let c = V2::new(dir.as_fd());
    let not_found = |result: io::Result<()>, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{what}: {err}");
    };
    not_found(c.cpu_weight().map(drop), "cpu_weight");
    not_found(c.cpu_max().map(drop), "cpu_max");
    not_found(c.cpus().map(drop), "cpus");
    not_found(c.memory_max().map(drop), "memory_max");
    not_found(c.io_rules().map(drop), "io_rules");
    not_found(c.pids_max().map(drop), "pids_max");
    not_found(c.memory_usage().map(drop), "memory_usage");
    not_found(c.cpu_times().map(drop), "cpu_times");
    not_found(c.page_faults().map(drop), "page_faults");
    not_found(c.private_memory().map(drop), "private_memory");
    not_found(c.io_usage().map(drop), "io_usage");
    not_found(c.set_cpu_weight(100), "set_cpu_weight");
    let max = CpuMax {
        quota: None,
        period: 100_000,
    };
    not_found(c.set_cpu_max(max), "set_cpu_max");
    not_found(c.set_cpus("0"), "set_cpus");
    not_found(c.set_memory_max(None), "set_memory_max");
    not_found(c.set_io_rule(SDA, IoRule::default()), "set_io_rule");
    not_found(c.set_pids_max(None), "set_pids_max");
    assert!(!c.io_accounting());
    assert_eq!(c.limit_events().unwrap(), LimitEvents::default());
    assert_eq!(std::fs::read_dir(tree.path("job")).unwrap().count(), 0);
}

/// Every getter on every file filled with contents no kernel writes: errors or values, never a
/// panic.
#[test]
fn garbage_never_panics() {
    let fx = Fixture::new();
    let files = [
        "cpu.weight",
        "cpu.max",
        "cpu.stat",
        "cpuset.cpus",
        "cpuset.cpus.effective",
        "memory.max",
        "memory.current",
        "memory.peak",
        "memory.stat",
        "memory.events",
        "io.max",
        "io.stat",
        "pids.max",
        "pids.events",
    ];
    for file in files {
        for text in GARBAGE {
            fx.set(file, text);
            read_everything(&fx.v2());
        }
        fx.set(file, "");
    }
}

fn read_everything(c: &dyn Controllers) {
    c.cpu_weight().ok();
    c.cpu_max().ok();
    c.cpus().ok();
    c.memory_max().ok();
    c.io_rules().ok();
    c.pids_max().ok();
    c.memory_usage().ok();
    c.cpu_times().ok();
    c.page_faults().ok();
    c.private_memory().ok();
    c.io_accounting();
    c.io_usage().ok();
    c.limit_events().ok();
}
