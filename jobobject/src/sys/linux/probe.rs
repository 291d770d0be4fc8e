//! Facts about this host for `Capabilities::probe`: the cgroup layout, the kernel, where jobs
//! go and which controllers they get there.

use std::path::Path;

use super::cgroup::CgroupLayout;
use crate::JobObject;
use crate::os::linux::JobObjectExt;

/// How `terminate` kills a whole job here.
pub(crate) fn describe_kill() -> &'static str {
    "cgroup.kill (Linux 5.14+), else freeze, kill, thaw: race-free against forks"
}

/// How a child is put in a job.
pub(crate) fn describe_spawn() -> &'static str {
    "born in the job: clone3 CLONE_INTO_CGROUP (Linux 5.7+ on cgroup v2), else joined before exec"
}

/// The facts, with what the throwaway `job` (if one could be made) shows.
pub(crate) fn facts(job: Option<&JobObject>) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    let read = |path: &str| std::fs::read_to_string(path).map(|t| t.trim().to_owned());
    facts.push((
        "kernel".to_owned(),
        read("/proc/sys/kernel/osrelease").unwrap_or_else(|e| format!("unknown ({e})")),
    ));
    let layout = match CgroupLayout::detect() {
        Ok(layout) => layout.as_str().to_owned(),
        Err(err) => format!("none ({err})"),
    };
    facts.push(("cgroup layout".to_owned(), layout));
    facts.push((
        "pressure (PSI)".to_owned(),
        match Path::new("/proc/pressure/cpu").exists() {
            true => "on".to_owned(),
            false => "off (no /proc/pressure)".to_owned(),
        },
    ));
    let Some(paths) = job.and_then(|j| j.cgroup_paths().ok()) else {
        return facts;
    };
    for path in paths {
        let Some(parent) = path.parent() else {
            continue;
        };
        let controllers = match read(&format!("{}/cgroup.controllers", path.display())) {
            // A v2 directory: what its parent enables for jobs, of what the parent has.
            Ok(given) => {
                let offered =
                    read(&format!("{}/cgroup.controllers", parent.display())).unwrap_or_default();
                let missing: Vec<&str> = offered
                    .split_whitespace()
                    .filter(|c| !given.split_whitespace().any(|g| g == *c))
                    .collect();
                let missing = match missing.is_empty() {
                    true => String::new(),
                    false => format!(" (not enabled for jobs: {})", missing.join(" ")),
                };
                format!("v2, controllers for jobs: {}{missing}", nonempty(&given))
            }
            Err(_) => "v1".to_owned(),
        };
        facts.push((format!("job parent {}", parent.display()), controllers));
    }
    facts
}

fn nonempty(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}
