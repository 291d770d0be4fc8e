//! [`V1`] against fixture trees: a job's directories in v1 hierarchies (and the v2 mount of a
//! hybrid host), with their files as the kernel writes them, reached through a [`JobCgroups`]
//! as the library reaches them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::*;
use crate::sys::linux::cgroup::controllers::LimitEvents;
use crate::sys::linux::cgroup::controllers::fixture::{GARBAGE, Tree};
use crate::sys::linux::cgroup::{Hierarchy, Version};

const SDA: Device = Device { major: 8, minor: 0 };
const VDA: Device = Device {
    major: 254,
    minor: 0,
};
const MIB: u64 = 1 << 20;

/// A hybrid host's hierarchies, cpu and cpuacct mounted together (as systemd does).
const HYBRID: &[&str] = &[
    "unified",
    "cpu,cpuacct",
    "cpuset",
    "memory",
    "blkio",
    "pids",
    "freezer",
];
/// A v1-only host's, each controller on its own.
const LEGACY: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer",
];

/// The hierarchy mounted at `mount` (a directory of the tree named after its controllers).
fn hierarchy(mount: &str) -> &'static Hierarchy {
    static ALL: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mounts = HYBRID.iter().chain(LEGACY).copied();
        mounts.map(new_hierarchy).collect()
    });
    all.iter()
        .find(|h| h.mount_point == Path::new(mount))
        .unwrap()
}

fn new_hierarchy(mount: &str) -> Hierarchy {
    let (version, controllers) = match mount {
        "unified" => (Version::V2, Vec::new()),
        v1 => (Version::V1, v1.split(',').map(str::to_owned).collect()),
    };
    Hierarchy {
        version,
        controllers,
        mount_point: PathBuf::from(mount),
        mount_root: PathBuf::from("/"),
        on_demand: false,
    }
}

/// `memory.stat` of a v1 job: its own counters, then the hierarchical `total_` ones (those
/// count nested cgroups, so they are the job's).
const MEMORY_STAT: &str = "\
cache 10141696
rss 4648960
rss_huge 0
shmem 9170944
mapped_file 7823360
dirty 16384
writeback 0
workingset_refault_anon 0
workingset_refault_file 2469
swap 0
pgpgin 39131
pgpgout 35520
pgfault 75951
pgmajfault 0
inactive_anon 0
active_anon 1531904
inactive_file 16384
active_file 954368
unevictable 12288000
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 6389784576
total_rss 9052160
total_rss_huge 0
total_shmem 9170944
total_mapped_file 11251712
total_dirty 487424
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 2840094
total_swap 0
total_pgpgin 96789446
total_pgpgout 95805324
total_pgfault 132951890
total_pgmajfault 22638
total_inactive_anon 4354048
total_active_anon 1564672
total_inactive_file 4196950016
total_active_file 2183663616
total_unevictable 12288000
";

/// The throttle statistics of a cgroup that did no I/O.
const NO_IO: &str = "Total 0\n";

/// What `memory.limit_in_bytes` reads without a limit: `PAGE_COUNTER_MAX` pages.
fn no_memory_limit() -> String {
    format!("{}\n", page_counter_max() * page_size())
}

/// A new job's files of one v1 controller, as the kernel shows them (cpuset's after
/// `init_cpuset`).
fn files(controller: &str) -> Vec<(&'static str, String)> {
    let files: &[(&str, &str)] = match controller {
        "cpu" => &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
        ],
        "cpuacct" => &[("cpuacct.usage_user", "0\n"), ("cpuacct.usage_sys", "0\n")],
        "cpuset" => &[
            ("cpuset.cpus", "0-1\n"),
            ("cpuset.effective_cpus", "0-1\n"),
            ("cpuset.mems", "0\n"),
        ],
        "memory" => &[
            ("memory.usage_in_bytes", "0\n"),
            ("memory.max_usage_in_bytes", "0\n"),
            ("memory.failcnt", "0\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.stat", MEMORY_STAT),
        ],
        "blkio" => &[
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            ("blkio.throttle.io_service_bytes", NO_IO),
            ("blkio.throttle.io_service_bytes_recursive", NO_IO),
            ("blkio.throttle.io_serviced", NO_IO),
            ("blkio.throttle.io_serviced_recursive", NO_IO),
        ],
        "pids" => &[("pids.max", "max\n"), ("pids.events", "max 0\n")],
        "freezer" => &[("freezer.state", "THAWED\n")],
        _ => &[],
    };
    let mut files: Vec<_> = files.iter().map(|(f, t)| (*f, t.to_string())).collect();
    if controller == "memory" {
        files.push(("memory.limit_in_bytes", no_memory_limit()));
    }
    files
}

/// A job named `job` in fixture hierarchies.
struct Fixture {
    tree: Tree,
    mounts: Vec<&'static str>,
    job: JobCgroups,
}

impl Fixture {
    /// The job in each hierarchy of `mounts`, with the files of its controllers.
    fn new(mounts: &[&'static str]) -> Self {
        let tree = Tree::new();
        let mut dirs = Vec::new();
        for mount in mounts {
            let relative = format!("{mount}/job");
            let path = tree.dir(&relative, &[("cgroup.procs", "")]);
            for controller in mount.split(',') {
                for (file, text) in files(controller) {
                    tree.set(&format!("{relative}/{file}"), text);
                }
            }
            let fd = tree.open(&relative);
            let dir = CgroupDir::new(hierarchy(mount), path, fd.as_fd()).unwrap();
            dirs.push((dir, fd));
        }
        let primary = dirs
            .iter()
            .position(|(d, _)| d.hierarchy.has("freezer"))
            .unwrap_or(0);
        let mut primary_fd = None;
        let dirs = (dirs.into_iter().enumerate())
            .map(|(i, (dir, fd))| {
                if i == primary {
                    primary_fd = Some(fd);
                }
                dir
            })
            .collect();
        let job = JobCgroups::assemble("job", dirs, primary_fd, Vec::new(), false).unwrap();
        Fixture {
            tree,
            mounts: mounts.to_vec(),
            job,
        }
    }

    fn hybrid() -> Self {
        Fixture::new(HYBRID)
    }

    /// The job's limits and statistics, as the library gets them.
    fn v1(&self) -> Box<dyn Controllers + '_> {
        self.job.controllers()
    }

    /// Where `file` is: in the job's directory of the hierarchy of the file's controller.
    fn path(&self, file: &str) -> String {
        let controller = file.split('.').next().unwrap();
        let mount = self
            .mounts
            .iter()
            .find(|m| m.split(',').any(|c| c == controller))
            .unwrap_or_else(|| panic!("no hierarchy for {file}"));
        format!("{mount}/job/{file}")
    }

    fn set(&self, file: &str, text: impl AsRef<[u8]>) {
        self.tree.set(&self.path(file), text);
    }

    fn get(&self, file: &str) -> String {
        self.tree.get(&self.path(file))
    }

    fn remove(&self, file: &str) {
        self.tree.remove(&self.path(file));
    }

    /// What `change` writes to `file`.
    fn written(
        &self,
        file: &str,
        change: impl FnOnce(&dyn Controllers) -> io::Result<()>,
    ) -> String {
        let (result, text) = self.tree.written(&self.path(file), || change(&*self.v1()));
        result.unwrap();
        text
    }
}

/// Asserts that reading `file` with each of `texts` in it is an `InvalidData` error.
fn malformed<T: std::fmt::Debug>(
    fx: &Fixture,
    file: &str,
    texts: &[&str],
    get: impl Fn(&dyn Controllers) -> io::Result<T>,
) {
    for text in texts {
        fx.set(file, text);
        match get(&*fx.v1()) {
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

/// On a hybrid host a job's limits are in its v1 directories, whether controllers share a
/// hierarchy or not; the v2 one holds none.
#[test]
fn each_controller_is_read_in_its_hierarchy() {
    for mounts in [HYBRID, LEGACY] {
        let fx = Fixture::new(mounts);
        fx.set("cpu.shares", "2048\n");
        fx.set("cpuacct.usage_user", "7000\n");
        fx.set("memory.limit_in_bytes", "4096\n");
        fx.set("pids.max", "9\n");
        let c = fx.v1();
        assert_eq!(c.default_cpu_weight(), 1024, "{mounts:?}");
        assert_eq!(c.cpu_weight().unwrap(), 2048, "{mounts:?}");
        assert_eq!(c.cpu_times().unwrap().0, Duration::from_micros(7));
        assert_eq!(c.memory_max().unwrap(), Some(4096));
        assert_eq!(c.pids_max().unwrap(), Some(9));
    }
}

#[test]
fn cpu_weight() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().cpu_weight().unwrap(), 1024);
    assert_eq!(fx.written("cpu.shares", |c| c.set_cpu_weight(4096)), "4096");
    let bad = ["", "\n", "-1\n", "1024 1024\n", "lots\n"];
    malformed(&fx, "cpu.shares", &bad, |c| c.cpu_weight());
}

#[test]
fn cpu_max() {
    let fx = Fixture::hybrid();
    let unlimited = CpuMax {
        quota: None,
        period: 100_000,
    };
    assert_eq!(fx.v1().cpu_max().unwrap(), unlimited);
    fx.set("cpu.cfs_quota_us", "50000\n");
    let half = CpuMax {
        quota: Some(50_000),
        period: 100_000,
    };
    assert_eq!(fx.v1().cpu_max().unwrap(), half);

    // The same period: one write of the quota, the period left alone.
    fx.tree.age(&fx.path("cpu.cfs_period_us"));
    assert_eq!(
        fx.written("cpu.cfs_quota_us", |c| c.set_cpu_max(half)),
        "50000"
    );
    let lift = |c: &dyn Controllers| c.set_cpu_max(unlimited);
    assert_eq!(fx.written("cpu.cfs_quota_us", lift), "-1");
    assert!(!fx.tree.was_written(&fx.path("cpu.cfs_period_us")));

    // A new period goes in (after the quota is lifted, which leaves "-1" under the new
    // quota), then the quota.
    let slow = CpuMax {
        quota: Some(2_000),
        period: 1_000_000,
    };
    fx.set("cpu.cfs_quota_us", "");
    fx.v1().set_cpu_max(slow).unwrap();
    assert_eq!(fx.get("cpu.cfs_quota_us"), "2000");
    assert_eq!(fx.get("cpu.cfs_period_us"), "1000000");
    fx.set("cpu.cfs_quota_us", "2000\n");
    fx.set("cpu.cfs_period_us", "1000000\n");
    assert_eq!(fx.v1().cpu_max().unwrap(), slow);

    let bad = ["", "none\n", "-2\n", "-100000\n", "18446744073709551616\n"];
    malformed(&fx, "cpu.cfs_quota_us", &bad, |c| c.cpu_max());
    fx.set("cpu.cfs_quota_us", "-1\n");
    let bad = ["", "-1\n", "100ms\n"];
    malformed(&fx, "cpu.cfs_period_us", &bad, |c| c.cpu_max());
    let err = fx.v1().set_cpu_max(half).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn cpus() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().cpus().unwrap(), "0-1");
    fx.set("cpuset.cpus", "\n");
    assert_eq!(fx.v1().cpus().unwrap(), "");
    assert_eq!(fx.written("cpuset.cpus", |c| c.set_cpus("0,2-3")), "0,2-3");
    assert_eq!(fx.written("cpuset.cpus", |c| c.set_cpus("")), "\n");
}

#[test]
fn cpus_without_a_limit() {
    let fx = Fixture::hybrid();
    // A v1 cpuset must list CPUs: without a limit of its own, its parent's.
    fx.tree.set("cpuset/cpuset.cpus", "0-3\n");
    assert_eq!(fx.v1().parent_cpus().unwrap(), "0-3");
    assert_eq!(fx.v1().unrestricted_cpus().unwrap(), "0-3");
}

#[test]
fn memory_max() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().memory_max().unwrap(), None);
    fx.set("memory.limit_in_bytes", "268435456\n");
    assert_eq!(fx.v1().memory_max().unwrap(), Some(256 * MIB));
    // The highest limit there is, one page under none.
    let highest = (page_counter_max() - 1) * page_size();
    fx.set("memory.limit_in_bytes", format!("{highest}\n"));
    assert_eq!(fx.v1().memory_max().unwrap(), Some(highest));

    let set = |bytes| fx.written("memory.limit_in_bytes", |c| c.set_memory_max(bytes));
    assert_eq!(set(Some(256 * MIB)), "268435456");
    assert_eq!(set(None), "-1");
    let bad = ["", "-1\n", "max\n", "1G\n", "18446744073709551616\n"];
    malformed(&fx, "memory.limit_in_bytes", &bad, |c| c.memory_max());
}

#[test]
fn io_rules() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().io_rules().unwrap(), vec![]);
    // One file per throttle; a disk without a rule in a file is absent from it.
    let accounting = ACCOUNTING_ONLY_BPS.to_string();
    fx.set(
        "blkio.throttle.read_bps_device",
        format!("8:0 {accounting}\n254:0 1048576\n"),
    );
    fx.set(
        "blkio.throttle.write_bps_device",
        format!("8:0 {accounting}\n254:0 1048576\n"),
    );
    fx.set("blkio.throttle.read_iops_device", "8:0 100\n");
    fx.set("blkio.throttle.write_iops_device", "8:0 120\n");
    let bps = Some(ACCOUNTING_ONLY_BPS);
    let rules = fx.v1().io_rules().unwrap();
    assert_eq!(
        rules,
        vec![
            (SDA, rule(bps, bps, Some(100), Some(120))),
            (VDA, rule(Some(MIB), Some(MIB), None, None)),
        ]
    );
    // A bandwidth that never throttles is no limit.
    assert_eq!(
        rules[0].1.limit(),
        IoMax {
            bps: None,
            iops: Some(120)
        }
    );

    // v1 keeps a rule for accounting where there is no bandwidth limit.
    let c = fx.v1();
    let limit = IoMax {
        bps: None,
        iops: Some(50),
    };
    assert_eq!(c.io_rule_for(limit), rule(bps, bps, Some(50), Some(50)));
    let wanted = rule(Some(MIB), Some(2 * MIB), None, Some(50));
    let files = THROTTLE_FILES.map(|(file, _)| fx.path(file));
    for file in &files {
        fx.tree.set(file, "");
    }
    c.set_io_rule(VDA, wanted).unwrap();
    let written = files.map(|file| fx.tree.get(&file));
    // 0 removes a file's rule.
    assert_eq!(
        written,
        ["254:0 1048576", "254:0 2097152", "254:0 0", "254:0 50"]
    );

    let bad = [
        "8:0\n",
        "8:0 x\n",
        "8:0 -1\n",
        "8:0 1 2\n",
        "sda 1048576\n",
        "8:0 18446744073709551616\n",
    ];
    for file in THROTTLE_FILES.map(|(file, _)| file) {
        malformed(&fx, file, &bad, |c| c.io_rules());
        fx.set(file, "");
    }
}

#[test]
fn pids_max() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().pids_max().unwrap(), None);
    fx.set("pids.max", "64\n");
    assert_eq!(fx.v1().pids_max().unwrap(), Some(64));
    let set = |max| fx.written("pids.max", |c| c.set_pids_max(max));
    assert_eq!(set(Some(4_194_304)), "4194304");
    assert_eq!(set(None), "max");
    let bad = ["", "-1\n", "64 64\n", "unlimited\n"];
    malformed(&fx, "pids.max", &bad, |c| c.pids_max());
}

#[test]
fn memory_usage() {
    let fx = Fixture::hybrid();
    fx.set("memory.usage_in_bytes", "3670016\n");
    fx.set("memory.max_usage_in_bytes", "4194304\n");
    let usage = fx.v1().memory_usage().unwrap();
    assert_eq!((usage.current, usage.peak), (3_670_016, 4_194_304));
    let bad = ["", "-1\n", "3.5M\n"];
    malformed(&fx, "memory.usage_in_bytes", &bad, |c| c.memory_usage());
    fx.set("memory.usage_in_bytes", "0\n");
    malformed(&fx, "memory.max_usage_in_bytes", &bad, |c| c.memory_usage());
}

#[test]
fn cpu_times() {
    let fx = Fixture::hybrid();
    assert_eq!(
        fx.v1().cpu_times().unwrap(),
        (Duration::ZERO, Duration::ZERO)
    );
    // Nanoseconds.
    fx.set("cpuacct.usage_user", "2250000001\n");
    fx.set("cpuacct.usage_sys", "750000000\n");
    assert_eq!(
        fx.v1().cpu_times().unwrap(),
        (Duration::new(2, 250_000_001), Duration::from_millis(750))
    );
    let bad = ["", "-1\n", "1 2\n", "18446744073709551616\n"];
    malformed(&fx, "cpuacct.usage_user", &bad, |c| c.cpu_times());
    fx.set("cpuacct.usage_user", "0\n");
    malformed(&fx, "cpuacct.usage_sys", &bad, |c| c.cpu_times());
}

#[test]
fn page_faults_and_private_memory() {
    let fx = Fixture::hybrid();
    // The hierarchical counters, not the job directory's own.
    assert_eq!(fx.v1().page_faults().unwrap(), 132_951_890);
    assert_eq!(fx.v1().private_memory().unwrap(), 9_052_160);
    let bad = [
        "",
        "rss 4096\npgfault 7\n",
        "total_rss x\ntotal_pgfault x\n",
        "total_rss -1\ntotal_pgfault -1\n",
    ];
    malformed(&fx, "memory.stat", &bad, |c| c.page_faults());
    malformed(&fx, "memory.stat", &bad, |c| c.private_memory());
}

#[test]
fn io_usage() {
    let fx = Fixture::hybrid();
    assert!(fx.v1().io_accounting());
    assert_eq!(fx.v1().io_usage().unwrap(), IoUsage::default());
    // Two disks: Read and Write rows count, the others (and the totals) repeat them.
    fx.set(
        "blkio.throttle.io_service_bytes_recursive",
        "254:0 Read 12199673856\n254:0 Write 26560417792\n254:0 Sync 22134095872\n\
         254:0 Async 26473095168\n254:0 Discard 9847099392\n254:0 Total 48607191040\n\
         8:0 Read 4096\n8:0 Write 0\n8:0 Sync 4096\n8:0 Async 0\n8:0 Discard 0\n\
         8:0 Total 4096\nTotal 48607195136\n",
    );
    fx.set(
        "blkio.throttle.io_serviced_recursive",
        "254:0 Read 481217\n254:0 Write 206862\n254:0 Sync 515185\n254:0 Async 198199\n\
         254:0 Discard 25305\n254:0 Total 713384\nTotal 713384\n",
    );
    let usage = IoUsage {
        read_bytes: 12_199_677_952,
        write_bytes: 26_560_417_792,
        read_ios: 481_217,
        write_ios: 206_862,
    };
    assert_eq!(fx.v1().io_usage().unwrap(), usage);

    // Kernels without the recursive files: the job's own.
    fx.set(
        "blkio.throttle.io_service_bytes",
        "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
    );
    fx.set(
        "blkio.throttle.io_serviced",
        "8:0 Read 3\n8:0 Write 4\n8:0 Total 7\nTotal 7\n",
    );
    fx.remove("blkio.throttle.io_service_bytes_recursive");
    fx.remove("blkio.throttle.io_serviced_recursive");
    let own = IoUsage {
        read_bytes: 1,
        write_bytes: 2,
        read_ios: 3,
        write_ios: 4,
    };
    assert_eq!(fx.v1().io_usage().unwrap(), own);

    let bad = [
        "8:0 Read x\nTotal 0\n",
        "8:0 Read\n",
        "8:0 Read -1\n",
        "8:0 Read 1 1\n",
        "sda Read 1\n",
        "Total x\n",
        "garbage\n",
    ];
    malformed(&fx, "blkio.throttle.io_service_bytes", &bad, |c| {
        c.io_usage()
    });
}

#[test]
fn limit_events() {
    let fx = Fixture::hybrid();
    assert_eq!(fx.v1().limit_events().unwrap(), LimitEvents::default());
    fx.set("memory.failcnt", "7\n");
    fx.set(
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    fx.set("pids.events", "max 3\n");
    let events = LimitEvents {
        memory_max: 7,
        oom_kills: 2,
        // v1 does not say which kills its limit caused.
        limit_ooms: None,
        group_kills: 0,
        pids_max: 3,
    };
    assert_eq!(fx.v1().limit_events().unwrap(), events);
    // No oom_kill before Linux 4.13, no pids.events before 4.3: no count.
    fx.set("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
    fx.remove("pids.events");
    let events = LimitEvents {
        memory_max: 7,
        ..LimitEvents::default()
    };
    assert_eq!(fx.v1().limit_events().unwrap(), events);
}

/// What a getter reads, its setter writes back as the kernel showed it: putting back a limit
/// after a refused change leaves the file as it was. (No memory limit is the exception: it
/// is written as -1, which the kernel shows as `PAGE_COUNTER_MAX` pages.)
#[test]
fn values_read_are_written_back_as_the_kernel_shows_them() {
    let fx = Fixture::hybrid();
    let weight = (
        |c: &dyn Controllers| c.cpu_weight(),
        |c: &dyn Controllers, v| c.set_cpu_weight(v),
    );
    round_trip(&fx, "cpu.shares", "2048\n", weight);
    let max = (
        |c: &dyn Controllers| c.cpu_max(),
        |c: &dyn Controllers, v| c.set_cpu_max(v),
    );
    round_trip(&fx, "cpu.cfs_quota_us", "-1\n", max);
    round_trip(&fx, "cpu.cfs_quota_us", "50000\n", max);
    let cpus = (
        |c: &dyn Controllers| c.cpus(),
        |c: &dyn Controllers, v: String| c.set_cpus(&v),
    );
    round_trip(&fx, "cpuset.cpus", "0-1,3\n", cpus);
    let memory = (
        |c: &dyn Controllers| c.memory_max(),
        |c: &dyn Controllers, v| c.set_memory_max(v),
    );
    round_trip(&fx, "memory.limit_in_bytes", "268435456\n", memory);
    let pids = (
        |c: &dyn Controllers| c.pids_max(),
        |c: &dyn Controllers, v| c.set_pids_max(v),
    );
    round_trip(&fx, "pids.max", "max\n", pids);
    round_trip(&fx, "pids.max", "64\n", pids);
    // A disk's rule: the throttles it has as shown, 0 (none, which the kernel does not show)
    // in the others.
    let io = (
        |c: &dyn Controllers| Ok(c.io_rules()?[0]),
        |c: &dyn Controllers, (device, rule)| c.set_io_rule(device, rule),
    );
    round_trip(&fx, "blkio.throttle.read_bps_device", "254:0 1048576\n", io);
    assert_eq!(fx.get("blkio.throttle.write_iops_device"), "254:0 0");
}

/// Reads `file` showing `text` with `get`, and asserts that `set` writes the value back as
/// that text.
fn round_trip<T>(
    fx: &Fixture,
    file: &str,
    text: &str,
    (get, set): (
        impl Fn(&dyn Controllers) -> io::Result<T>,
        impl Fn(&dyn Controllers, T) -> io::Result<()>,
    ),
) {
    fx.set(file, text);
    let value = get(&*fx.v1()).unwrap();
    assert_eq!(
        fx.written(file, |c| set(c, value)),
        text.trim_end(),
        "{file}"
    );
}

/// A job without a hierarchy (a host without that v1 controller): its getters and setters are
/// `NotFound`, which the limits layer reports as the controller missing.
#[test]
fn missing_hierarchies() {
    let fx = Fixture::new(&["unified", "freezer"]);
    let c = fx.v1();
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
    not_found(c.set_cpu_weight(1024), "set_cpu_weight");
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
}

/// A directory that took the place of one of the job's (the job was removed, another made
/// with its name) is not written through.
#[test]
fn a_directory_in_the_jobs_place_is_not_the_job() {
    let fx = Fixture::hybrid();
    let job = fx.tree.path("memory/job");
    std::fs::rename(&job, fx.tree.path("memory/old")).unwrap();
    fx.tree
        .dir("memory/job", &[("memory.limit_in_bytes", "4096\n")]);
    let err = fx.v1().set_memory_max(Some(8192)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert_eq!(fx.get("memory.limit_in_bytes"), "4096\n");
}

/// Every getter on every file filled with contents no kernel writes: errors or values, never a
/// panic.
#[test]
fn garbage_never_panics() {
    let fx = Fixture::hybrid();
    for controller in ["cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"] {
        for (file, text) in files(controller) {
            for garbage in GARBAGE {
                fx.set(file, garbage);
                read_everything(&*fx.v1());
            }
            fx.set(file, text);
        }
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

#[test]
fn blkio_lines() {
    assert_eq!(
        device_values("blkio.throttle.read_bps_device", "254:0 1048576\n8:0 5\n").unwrap(),
        vec![(VDA, 1_048_576), (SDA, 5)]
    );
    let stat = "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n8:0 Read 1\nTotal 12289\n";
    let sums = |text| read_write_sums("blkio.throttle.io_serviced", text);
    assert_eq!(sums(stat).unwrap(), (4097, 8192));
    assert!(sums("garbage\n").is_err());
    // Sums saturate rather than overflow.
    let huge = "8:0 Read 18446744073709551615\n254:0 Read 1\n";
    assert_eq!(sums(huge).unwrap(), (u64::MAX, 0));
}
