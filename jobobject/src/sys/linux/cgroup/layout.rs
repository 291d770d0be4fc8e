//! Which cgroup layout the host runs, found once per process.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use super::parse;
use crate::Error;

/// The v1 controllers a job uses; a v1 hierarchy holding none of them (such as `devices` or
/// `name=systemd`) is left alone.
const USED_V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids",
];

/// The v1 controllers a job needs only once a limit or accounting of theirs is turned on
/// (CPU affinity; I/O limits or tracking): a hierarchy carrying nothing else gets the job's
/// directory then.
const ON_DEMAND_V1_CONTROLLERS: &[&str] = &["cpuset", "blkio"];

/// The v1 controllers whose work the v2 hierarchy of a hybrid host does for every cgroup,
/// without a controller: CPU times (`cpu.stat`) and freezing (`cgroup.freeze`).
const SERVED_BY_V2: &[&str] = &["cpuacct", "freezer"];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

/// How the host mounts cgroups (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CgroupLayout {
    /// Pure cgroup v2 at `/sys/fs/cgroup`.
    Unified,
    /// v1 controllers, plus a v2 mount at `/sys/fs/cgroup/unified` for membership, events and
    /// kill.
    Hybrid,
    /// v1 only.
    Legacy,
}

pub(crate) use CgroupLayout as LayoutKind;

impl CgroupLayout {
    /// The layout once per process, detected on first use: `statfs("/sys/fs/cgroup")` is
    /// cgroup2 for unified; else `/sys/fs/cgroup/unified` is cgroup2 for hybrid; else legacy.
    /// No cgroup filesystem at all is [`Error::Unavailable`](crate::Error::Unavailable).
    ///
    /// ```
    /// # fn main() -> Result<(), jobobject::Error> {
    /// let layout = jobobject::os::linux::CgroupLayout::detect()?;
    /// println!("cgroups: {layout}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn detect() -> Result<Self, Error> {
        get().map(|layout| layout.kind)
    }

    /// The layout's name: `unified`, `hybrid` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutKind::Unified => "unified",
            LayoutKind::Hybrid => "hybrid",
            LayoutKind::Legacy => "legacy",
        }
    }
}

/// A cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// One mounted hierarchy that jobs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub(crate) version: Version,
    /// The v1 controllers mounted together in this hierarchy; empty for v2.
    pub(crate) controllers: Vec<String>,
    pub(crate) mount_point: PathBuf,
    /// The path inside the hierarchy that is mounted at `mount_point`.
    pub(crate) mount_root: PathBuf,
    /// A job gets its directory here only when it needs one of its controllers (see
    /// `ON_DEMAND_V1_CONTROLLERS`).
    pub(crate) on_demand: bool,
}

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller`.
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The filesystem path of a cgroup given by its path inside the hierarchy, as
    /// `/proc/self/cgroup` prints it; `None` when that cgroup is outside this mount.
    pub(crate) fn path_of(&self, cgroup: &str) -> Option<PathBuf> {
        let relative = Path::new(cgroup).strip_prefix(&self.mount_root).ok()?;
        Some(self.mount_point.join(relative))
    }

    /// Finds this hierarchy's line in `/proc/PID/cgroup`.
    pub(crate) fn find<'a>(
        &self,
        entries: &'a [parse::ProcCgroup],
    ) -> Option<&'a parse::ProcCgroup> {
        entries.iter().find(|entry| match self.version {
            Version::V2 => entry.id == 0 && entry.controllers.is_empty(),
            Version::V1 => {
                entry.id != 0
                    && entry.controllers.len() == self.controllers.len()
                    && self
                        .controllers
                        .iter()
                        .all(|c| entry.controllers.contains(c))
            }
        })
    }
}

/// The host's layout: its kind and the hierarchies a job spans, v2 first where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) kind: LayoutKind,
    pub(crate) hierarchies: Vec<Hierarchy>,
}

/// The layout, detected on first success: a failure is not kept, so that a later call (once
/// `/proc` or the cgroup filesystems are mounted) can succeed.
pub(crate) fn get() -> Result<&'static Layout, Error> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    if let Some(layout) = LAYOUT.get() {
        return Ok(layout);
    }
    let layout = detect()?;
    Ok(LAYOUT.get_or_init(|| layout))
}

fn detect() -> Result<Layout, Error> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|err| Error::Unavailable {
            message: format!("cannot read /proc/self/mountinfo ({err}): is /proc mounted?"),
            source: Some(err),
        })?;
    let mounts = parse::mountinfo(&mountinfo).map_err(|err| Error::Unavailable {
        message: err.to_string(),
        source: Some(err.into()),
    })?;
    let kind = if is_cgroup2(CGROUP_ROOT) {
        LayoutKind::Unified
    } else if is_cgroup2(HYBRID_UNIFIED) {
        LayoutKind::Hybrid
    } else {
        LayoutKind::Legacy
    };
    from_mounts(kind, &mounts).map_err(|message| Error::Unavailable {
        message,
        source: None,
    })
}

fn is_cgroup2(path: &str) -> bool {
    const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as u64 == CGROUP2_SUPER_MAGIC)
}

/// Builds the layout of `kind` from the mount table.
pub(crate) fn from_mounts(kind: LayoutKind, mounts: &[parse::Mount]) -> Result<Layout, String> {
    let mut hierarchies = Vec::new();
    if kind != LayoutKind::Legacy {
        let point = if kind == LayoutKind::Unified {
            CGROUP_ROOT
        } else {
            HYBRID_UNIFIED
        };
        let root = mounts
            .iter()
            .rev()
            .find(|m| m.fs_type == "cgroup2" && m.mount_point == Path::new(point))
            .map_or_else(|| PathBuf::from("/"), |m| m.root.clone());
        hierarchies.push(Hierarchy {
            version: Version::V2,
            controllers: Vec::new(),
            mount_point: PathBuf::from(point),
            mount_root: root,
            on_demand: false,
        });
    }
    if kind != LayoutKind::Unified {
        for mount in mounts.iter().filter(|m| m.fs_type == "cgroup") {
            let controllers: Vec<String> = mount
                .super_options
                .iter()
                .filter(|o| USED_V1_CONTROLLERS.contains(&o.as_str()))
                .cloned()
                .collect();
            let seen = hierarchies
                .iter()
                .any(|h: &Hierarchy| h.controllers == controllers);
            let all_in = |set: &[&str]| controllers.iter().all(|c| set.contains(&c.as_str()));
            let served = kind == LayoutKind::Hybrid && all_in(SERVED_BY_V2);
            if !controllers.is_empty() && !seen && !served {
                hierarchies.push(Hierarchy {
                    version: Version::V1,
                    on_demand: all_in(ON_DEMAND_V1_CONTROLLERS),
                    controllers,
                    mount_point: mount.mount_point.clone(),
                    mount_root: mount.root.clone(),
                });
            }
        }
    }
    if hierarchies.is_empty() {
        return Err(format!(
            "no cgroup filesystem is mounted at {CGROUP_ROOT}: jobs need cgroups. Mount cgroup v2 \
             (`mount -t cgroup2 none {CGROUP_ROOT}`) or the v1 controllers, or boot a kernel \
             with cgroups enabled"
        ));
    }
    Ok(Layout { kind, hierarchies })
}

/// Checks a parent path given relative to each hierarchy's root: relative, no `..`.
pub(crate) fn check_relative(path: &Path) -> Result<PathBuf, Error> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "cgroup parent {} may not contain `..`",
                    path.display()
                )));
            }
        }
    }
    Ok(clean)
}

impl std::fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(text: &str) -> Vec<parse::Mount> {
        parse::mountinfo(text).unwrap()
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
39 31 0:36 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_keeps_used_v1_hierarchies_and_unified_first() {
        // cpuacct and freezer alone are left to the v2 hierarchy; cpuset and blkio are used
        // on demand.
        let layout = from_mounts(LayoutKind::Hybrid, &mounts(HYBRID)).unwrap();
        let points: Vec<_> = layout
            .hierarchies
            .iter()
            .map(|h| (h.mount_point.clone(), h.on_demand))
            .collect();
        let expected = [
            ("unified", false),
            ("cpu", false),
            ("cpuset", true),
            ("memory", false),
            ("blkio", true),
        ]
        .map(|(p, lazy)| (PathBuf::from(CGROUP_ROOT).join(p), lazy));
        assert_eq!(points, expected);
        assert_eq!(layout.hierarchies[0].version, Version::V2);
        assert!(layout.hierarchies[3].has("memory"));
    }

    #[test]
    fn legacy_uses_cpuacct_and_freezer() {
        let text = HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs");
        let layout = from_mounts(LayoutKind::Legacy, &mounts(&text)).unwrap();
        let points: Vec<_> = layout
            .hierarchies
            .iter()
            .map(|h| h.controllers.join(","))
            .collect();
        assert_eq!(
            points,
            ["cpu", "cpuacct", "cpuset", "freezer", "memory", "blkio"]
        );
    }

    #[test]
    fn comounted_with_a_needed_controller_is_kept() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    33 31 0:30 / /sys/fs/cgroup/cpuset,blkio rw - cgroup cgroup rw,cpuset,blkio\n\
                    34 31 0:31 / /sys/fs/cgroup/cpuset,memory rw - cgroup cgroup rw,memory\n";
        let layout = from_mounts(LayoutKind::Hybrid, &mounts(text)).unwrap();
        let kept: Vec<_> = layout
            .hierarchies
            .iter()
            .map(|h| (h.controllers.join(","), h.on_demand))
            .collect();
        assert_eq!(
            kept,
            [
                (String::new(), false),
                ("cpu,cpuacct".into(), false),
                ("cpuset,blkio".into(), true),
                ("memory".into(), false)
            ]
        );
    }

    #[test]
    fn comounted_controllers_are_one_hierarchy() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let layout = from_mounts(LayoutKind::Legacy, &mounts(text)).unwrap();
        assert_eq!(layout.hierarchies.len(), 1);
        assert_eq!(layout.hierarchies[0].controllers, vec!["cpu", "cpuacct"]);
        let own = parse::proc_cgroup("3:cpuacct,cpu:/x\n").unwrap();
        assert_eq!(layout.hierarchies[0].find(&own).unwrap().path, "/x");
    }

    #[test]
    fn no_cgroups_says_how_to_fix_it() {
        let err = from_mounts(
            LayoutKind::Legacy,
            &mounts("31 23 0:28 / /sys rw - sysfs sysfs rw\n"),
        )
        .unwrap_err();
        assert!(err.contains("mount -t cgroup2"), "{err}");
    }

    #[test]
    fn paths_inside_a_bind_mounted_subtree() {
        let text = "41 31 0:38 /ns /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let layout = from_mounts(LayoutKind::Unified, &mounts(text)).unwrap();
        let v2 = &layout.hierarchies[0];
        assert_eq!(v2.path_of("/ns/a"), Some(PathBuf::from("/sys/fs/cgroup/a")));
        assert_eq!(v2.path_of("/other"), None);
    }

    #[test]
    fn relative_parents() {
        assert_eq!(
            check_relative(Path::new("/a/./b")).unwrap(),
            PathBuf::from("a/b")
        );
        assert!(check_relative(Path::new("a/../../etc")).is_err());
    }
}
