//! The test process's own cgroups, found independently of the library, and the jobs'
//! directories in them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jobobject::os::linux::{CgroupLayout, CgroupParent, OptionsExt};
use jobobject::{JobObject, Options};

use super::{V1Use, v1_use};

/// One cgroup hierarchy and this process's cgroup in it.
#[derive(Debug, Clone)]
pub struct OwnCgroup {
    /// `unified` for v2, else the hierarchy's controllers joined by `,`.
    pub label: String,
    pub v2: bool,
    /// The controllers of a v1 hierarchy, as `/proc/self/cgroup` lists them.
    pub controllers: Vec<String>,
    /// This process's cgroup as `/proc/self/cgroup` prints it (a path inside the hierarchy).
    pub cgroup: String,
    /// The same as a directory in the mounted filesystem.
    pub dir: PathBuf,
    /// Whether jobs get a directory in this hierarchy from their creation.
    pub used: bool,
    /// Whether jobs get a directory in this hierarchy once they need it (cpuset, blkio).
    pub on_demand: bool,
}

/// A line of `/proc/PID/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next().unwrap().parse().expect("cgroup id");
            let controllers = parts
                .next()
                .unwrap()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = parts.next().expect("cgroup path").to_owned();
            CgroupLine {
                id,
                controllers,
                path,
            }
        })
        .collect()
}

/// Every cgroup hierarchy mounted under `/sys/fs/cgroup`, with this process's cgroup in it.
pub fn own_cgroups() -> Vec<OwnCgroup> {
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let own = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v2_point = match layout {
        CgroupLayout::Unified => Some("/sys/fs/cgroup"),
        CgroupLayout::Hybrid => Some("/sys/fs/cgroup/unified"),
        _ => None,
    };
    let mut found: Vec<OwnCgroup> = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields
            .iter()
            .position(|f| *f == "-")
            .expect("mountinfo separator");
        let (root, point) = (fields[3], fields[4]);
        let (fs_type, super_options) = (fields[dash + 1], fields[dash + 3]);
        let entry = match fs_type {
            "cgroup2" if Some(point) == v2_point => own.iter().find(|l| l.id == 0),
            "cgroup" => {
                let options: Vec<&str> = super_options.split(',').collect();
                own.iter().find(|l| {
                    l.id != 0
                        && !l.controllers.is_empty()
                        && l.controllers.iter().all(|c| options.contains(&c.as_str()))
                })
            }
            _ => None,
        };
        let Some(entry) = entry else { continue };
        // A hierarchy mounted twice is listed once.
        if found
            .iter()
            .any(|f| f.v2 == (entry.id == 0) && f.controllers == entry.controllers)
        {
            continue;
        }
        let inside = Path::new(&entry.path)
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("own cgroup {} outside the mount of {point}", entry.path));
        let v2 = entry.id == 0;
        found.push(OwnCgroup {
            label: if v2 {
                "unified".into()
            } else {
                entry.controllers.join(",")
            },
            v2,
            controllers: entry.controllers.clone(),
            cgroup: entry.path.clone(),
            dir: Path::new(point).join(inside),
            used: v2 || v1_use(&entry.controllers, layout) == V1Use::Always,
            on_demand: !v2 && v1_use(&entry.controllers, layout) == V1Use::OnDemand,
        });
    }
    assert!(
        found.iter().any(|f| f.used),
        "no cgroup hierarchy found for layout {layout}"
    );
    found
}

/// The hierarchies a job gets a directory in.
pub fn used_cgroups() -> Vec<OwnCgroup> {
    own_cgroups().into_iter().filter(|c| c.used).collect()
}

/// The job `name`'s directory in every hierarchy jobs use.
pub fn job_dirs(name: &str) -> Vec<PathBuf> {
    used_cgroups().iter().map(|c| c.dir.join(name)).collect()
}

/// Whether the job `name` has a directory in every hierarchy it should.
pub fn job_exists_everywhere(name: &str) -> bool {
    job_dirs(name).iter().all(|d| d.is_dir())
}

/// Panics unless the job `name` has a directory in every hierarchy it should.
pub fn assert_job_exists(name: &str) {
    for dir in job_dirs(name) {
        assert!(dir.is_dir(), "job directory {} is missing", dir.display());
    }
}

/// The job directories of `name` that still exist, in any hierarchy mounted under
/// `/sys/fs/cgroup` (including those jobs should never use).
pub fn remaining_dirs(name: &str) -> Vec<PathBuf> {
    own_cgroups()
        .iter()
        .map(|c| c.dir.join(name))
        .filter(|d| d.exists())
        .collect()
}

/// Panics unless the job `name` is gone from every hierarchy.
pub fn assert_job_removed(name: &str) {
    let left = remaining_dirs(name);
    assert!(
        left.is_empty(),
        "job {name} left directories behind: {left:?}"
    );
}

/// Waits until the job `name` is gone from every hierarchy.
pub fn wait_job_removed(name: &str, timeout: Duration) {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(1);
    while !remaining_dirs(name).is_empty() {
        if start.elapsed() >= timeout {
            // What is left, and who could still remove it, for the failure's reader.
            let keepers: Vec<u32> = std::fs::read_dir("/proc")
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                        .filter(|&pid| super::is_keeper(pid))
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "timed out after {timeout:?} waiting for job {name} to be removed: left {:?}; \
                 keepers running {keepers:?}",
                job_pids(name)
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    assert_job_removed(name);
}

/// The processes in job `name`, as each of its directories lists them (for failure messages).
pub fn job_pids(name: &str) -> Vec<(PathBuf, String)> {
    remaining_dirs(name)
        .into_iter()
        .map(|dir| {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            (dir, procs.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// The names in a directory.
pub fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes the job `name` if it still exists when dropped: for the tests that must leave
/// terminate-on-close off, so that even their failure leaves nothing behind. It opens the job
/// by name with terminate-on-close and closes it, which kills what is left and removes it.
pub struct Cleanup {
    pub name: String,
}

impl Cleanup {
    pub fn new(name: &str) -> Self {
        Cleanup { name: name.into() }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if remaining_dirs(&self.name).is_empty() {
            return;
        }
        // An observer opens anonymous jobs too: it kills what is left, and the directories go
        // below (or with the holder's keeper).
        let options = Options::new()
            .name(self.name.clone())
            .cgroup_parent(CgroupParent::Own)
            .observer(true);
        if let Ok(job) = JobObject::open(&options) {
            job.terminate(1).ok();
            job.wait_empty(Some(std::time::Duration::from_secs(10)))
                .ok();
            job.close().ok();
        }
        // Then by hand, v1 first (and what the library could not open: a partial job). An
        // rmdir of a cgroup fails harmlessly while it holds a process or a nested cgroup, and
        // for a moment after its last process exited: tried for up to 2 s.
        for _ in 0..50 {
            let left = remaining_dirs(&self.name);
            if left.is_empty() {
                break;
            }
            for dir in left.iter().rev() {
                std::fs::remove_dir(dir).ok();
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

/// Panics unless `text`, a child's `/proc/self/cgroup`, shows it in the job `name` in every
/// hierarchy the job uses, right below this process's own cgroup there, and nowhere else (on
/// hybrid: the unified one and the v1 ones of the controllers jobs use; not in devices, not
/// in name=systemd).
pub fn assert_in_job(text: &str, name: &str) {
    let child = parse_proc_cgroup(text);
    let mine = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    let layout = CgroupLayout::detect().unwrap();

    let mut in_job = Vec::new();
    for line in &child {
        let own = mine
            .iter()
            .find(|l| l.id == line.id && l.controllers == line.controllers)
            .unwrap_or_else(|| panic!("no line for hierarchy {} here", line.id));
        let used = if line.id == 0 {
            layout != CgroupLayout::Legacy
        } else {
            match v1_use(&line.controllers, layout) {
                V1Use::Always => true,
                V1Use::Never => false,
                // In the job there once the job has its directory.
                V1Use::OnDemand => own_cgroups()
                    .iter()
                    .find(|c| !c.v2 && c.controllers == line.controllers)
                    .is_some_and(|c| c.dir.join(name).is_dir()),
            }
        };
        if used {
            let expected = format!("{}/{name}", own.path.trim_end_matches('/'));
            assert_eq!(line.path, expected, "hierarchy {line:?} in:\n{text}");
            assert_eq!(line.path.rsplit('/').next(), Some(name));
            in_job.push(if line.id == 0 {
                "unified".to_owned()
            } else {
                line.controllers.join(",")
            });
        } else {
            assert_eq!(line.path, own.path, "the job entered hierarchy {line:?}");
        }
    }
    if layout == CgroupLayout::Hybrid {
        // This host: every used v1 controller has its own hierarchy.
        for expected in ["unified", "cpu", "memory"] {
            let mounted = expected == "unified"
                || mine
                    .iter()
                    .any(|l| l.controllers.iter().any(|c| c == expected));
            if mounted {
                assert!(
                    in_job.iter().any(|h| h.split(',').any(|c| c == expected)),
                    "the child is not in the job's {expected} cgroup:\n{text}"
                );
            }
        }
        if mine
            .iter()
            .any(|l| l.controllers.iter().any(|c| c == "pids"))
        {
            assert!(in_job.iter().any(|h| h.split(',').any(|c| c == "pids")));
        }
    }
    let expected = own_cgroups()
        .iter()
        .filter(|c| c.used || (c.on_demand && c.dir.join(name).is_dir()))
        .count();
    assert_eq!(in_job.len(), expected, "{in_job:?} in:\n{text}");
}
