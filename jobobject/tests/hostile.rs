//! What another local user and hostile processes can do to a job: nothing. Other users cannot
//! lock, pin or alter a job (tried as `nobody`); a lock held on a job by anyone is waited for a
//! bounded time; `assign` refuses init and kernel threads (init is tried only inside a fresh
//! pid namespace, where pid 1 is this test's own process), moves a forking tree whole, and
//! leaves a refused process where it was; `terminate` kills a job someone froze.
#![cfg(target_os = "linux")]

mod common;
mod workload;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use jobobject::os::linux::CgroupLayout;
use jobobject::os::linux::JobObjectExt;
use jobobject::{Error, JobObject};

/// Not a test: the workload program (see `workload`).
#[test]
#[ignore = "workload program of the hostile tests"]
fn workload() {
    workload::run_from_env();
}

/// `sh -c script` as user `nobody`, without any group of ours.
fn as_nobody(script: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        script,
    ]);
    command
}

/// The job's directories and every file directly in them.
fn job_entries(job: &JobObject) -> Vec<PathBuf> {
    let mut entries = Vec::new();
    for dir in job.cgroup_paths().unwrap() {
        entries.extend(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()));
        entries.push(dir);
    }
    entries
}

#[test]
fn another_user_cannot_lock_pin_or_alter_a_job() {
    if !require_cgroups("another_user_cannot_lock_pin_or_alter_a_job") {
        return;
    }
    let options = options("nobody");
    let name = options.name.clone().unwrap();
    let job = create(&options);
    let mut child = Reap::new(job.spawn(Command::new("sleep").arg("60")).unwrap());
    for dir in job.cgroup_paths().unwrap() {
        let dir = dir.display();
        // `flock` opens the path to lock it: shared (pin) and exclusive (block), both refused.
        for mode in ["-s", "-x"] {
            let output = as_nobody(&format!("flock -n {mode} {dir} echo locked"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                !output.status.success() && !stdout.contains("locked"),
                "nobody took a {mode} lock on {dir}"
            );
        }
    }
    // Nor can it write any file of the job, or mark it.
    for entry in job_entries(&job) {
        let path = entry.display();
        let script = if entry.is_dir() {
            format!("exec 2>/dev/null; setfattr -n user.jobobject.persistent -v 1 {path}")
        } else {
            format!("exec 2>/dev/null; printf 1 > {path}")
        };
        let status = as_nobody(&script).status().unwrap();
        assert!(!status.success(), "nobody altered {path}");
    }
    assert_eq!(job.pids().unwrap(), vec![child.pid]);
    job.terminate(1).unwrap();
    child.wait();
    // Nothing pins it: its close removes it.
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}

#[test]
fn a_lock_held_by_anyone_is_waited_for_a_bounded_time() {
    if !require_cgroups("a_lock_held_by_anyone_is_waited_for_a_bounded_time") {
        return;
    }
    let options = options("foreign-lock");
    let name = options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&name);
    let job = JobObject::create(&options).unwrap();
    job.set_persistent().unwrap();
    // A cgroup made by another tool may let anyone lock it: open ours up likewise, and lock
    // every directory (whichever the library locks: the primary one).
    let dirs = job.cgroup_paths().unwrap();
    job.close().unwrap();
    let mut script = String::from("exec");
    for dir in &dirs {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        script += &format!(" flock -o -n -x {}", dir.display());
    }
    // It holds the locks until its stdin closes.
    script += " sh -c 'echo locked; exec cat'";
    let mut holder = as_nobody(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let start = Instant::now();
    let err = JobObject::open(&options).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(waited < Duration::from_secs(20), "open waited {waited:?}");
    eprintln!("open of a job locked by another user: Busy after {waited:?}");

    drop(holder.stdin.take());
    holder.wait().unwrap();
    // Once the lock is gone, it opens.
    JobObject::open(&options).unwrap().delete().unwrap();
}

/// The text a workload printed after `WORKLOAD assign `.
fn assign_outcome(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("WORKLOAD assign "))
        .unwrap_or_else(|| {
            panic!(
                "no outcome: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned()
}

#[test]
fn assign_refuses_init_in_a_pid_namespace() {
    if !require_cgroups("assign_refuses_init_in_a_pid_namespace") {
        return;
    }
    let options = options("init");
    let name = options.name.clone().unwrap();
    let job = create(&options);
    // In the new namespace the workload itself is pid 1: were it moved, only it would be.
    let workload = workload::command(&format!("assign {name} 1"));
    let output = Command::new("unshare")
        .args(["-pf", "--mount-proc"])
        .arg(workload.get_program())
        .args(workload.get_args())
        .envs(workload.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    let outcome = assign_outcome(&output);
    assert!(
        outcome.starts_with("error InvalidArgument") && outcome.contains("init"),
        "{outcome}"
    );
    assert!(job.pids().unwrap().is_empty());
}

#[test]
fn assign_refuses_kernel_threads() {
    if !require_cgroups("assign_refuses_kernel_threads") {
        return;
    }
    // Pid 2 is kthreadd outside containers; the kernel itself never lets it move
    // (`no_cgroup_migration`), so even a broken check could not move it.
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        eprintln!("SKIP assign_refuses_kernel_threads: pid 2 is {comm:?}, not kthreadd");
        return;
    }
    let job = create(&options("kthread"));
    let err = job.assign(2).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { message } if message.contains("kernel thread")),
        "{err:?}"
    );
}

/// Where process `pid` is, hierarchy by hierarchy (`None` once it is gone).
fn cgroups_of(pid: u32) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let lines = parse_proc_cgroup(&text);
    Some(
        used_cgroups()
            .iter()
            .filter_map(|c| {
                let line = lines.iter().find(|l| {
                    if c.v2 {
                        l.id == 0
                    } else {
                        l.id != 0 && l.controllers == c.controllers
                    }
                })?;
                Some((c.label.clone(), line.path.clone()))
            })
            .collect(),
    )
}

/// Whether process `pid` is exiting or gone (`PF_EXITING` in the flags of its stat).
fn exiting(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let flags: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(6)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    flags & 0x4 != 0
}

/// The processes in any of the job's directories that are outside it in another hierarchy.
fn split_processes(job: &JobObject) -> Vec<(u32, BTreeMap<String, String>)> {
    let name = job.name().unwrap();
    let mut pids = std::collections::BTreeSet::new();
    for dir in job.cgroup_paths().unwrap() {
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(text.lines().filter_map(|l| l.parse::<u32>().ok()));
    }
    pids.into_iter()
        .filter_map(|pid| {
            let where_ = cgroups_of(pid)?;
            // v1 shows a process that is exiting in its root cgroup: no verdict on those.
            if exiting(pid) {
                return None;
            }
            let inside = where_.values().filter(|p| p.ends_with(&format!("/{name}")));
            (inside.count() != where_.len()).then_some((pid, where_))
        })
        .collect()
}

#[test]
fn assign_moves_a_forking_tree_whole() {
    if !require_cgroups("assign_moves_a_forking_tree_whole") {
        return;
    }
    const LIMIT: u32 = 8;
    // On a unified host a job is one cgroup and nothing can split: fewer trials suffice there
    // (and the emulated v2 guest is slow).
    let trials = if CgroupLayout::detect().unwrap() == CgroupLayout::Unified {
        100
    } else {
        1000
    };
    let jobs = [create(&options("fork-a")), create(&options("fork-b"))];
    for job in &jobs {
        job.set_max_processes(Some(LIMIT)).unwrap();
    }
    // Its children live 5 ms: the job is often at its limit.
    let mut forker = workload::command("fork 5");
    forker.stdout(Stdio::piped());
    let mut forker = Reap::new(jobs[0].spawn(&mut forker).unwrap());
    // Kept open to the end: the workload must not meet a closed pipe.
    let mut stdout = BufReader::new(forker.child().stdout.take().unwrap());
    wait_ready(&mut stdout);

    let (mut split, mut most) = (0, 0);
    let start = Instant::now();
    let mut assigning = Duration::ZERO;
    for trial in 0..trials {
        let job = &jobs[(trial + 1) % 2];
        let before = Instant::now();
        job.assign(forker.pid).unwrap();
        assigning += before.elapsed();
        let found = split_processes(job);
        if !found.is_empty() {
            eprintln!("trial {trial}: split processes {found:?}");
            split += found.len();
        }
        most = most.max(job.pids().unwrap().len());
    }
    eprintln!(
        "{trials} assigns of a process forking in a tight loop ({:?}, of which assign \
         {assigning:?}): {split} split processes, at most {most} processes in a job limited \
         to {LIMIT}",
        start.elapsed()
    );
    assert_eq!(split, 0);
    // The limit refuses forks, not the move itself: the assigned process may be one over.
    let bound = LIMIT as usize + 1;
    assert!(most <= bound, "{most} processes");
    for job in &jobs {
        if let Some(peak) = pids_peak(job) {
            assert!(peak <= bound as u64, "pids.peak {peak}");
        }
    }
}

/// Reads a workload's output until it says it is ready.
fn wait_ready(stdout: &mut impl BufRead) {
    let mut line = String::new();
    while !workload::ready(&line) {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no ready line");
    }
}

/// The job's `pids.peak`, where the kernel has it.
fn pids_peak(job: &JobObject) -> Option<u64> {
    job.cgroup_paths().unwrap().iter().find_map(|d| {
        std::fs::read_to_string(d.join("pids.peak"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn a_refused_assign_leaves_the_process_where_it_was() {
    if !require_cgroups("a_refused_assign_leaves_the_process_where_it_was") {
        return;
    }
    let job = create(&options("realtime"));
    // A real-time task: the v1 cpu controller refuses it in a cgroup with no real-time budget.
    let mut child = Reap::new(
        Command::new("chrt")
            .args(["-f", "1", "sleep", "60"])
            .spawn()
            .unwrap(),
    );
    wait_for("chrt to exec sleep", TIMEOUT, || {
        std::fs::read_to_string(format!("/proc/{}/comm", child.pid))
            .is_ok_and(|c| c.trim() == "sleep")
    });
    let before = cgroups_of(child.pid).unwrap();
    match job.assign(child.pid) {
        Err(err) => {
            assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
            assert_eq!(cgroups_of(child.pid).unwrap(), before, "{err}");
            assert!(job.pids().unwrap().is_empty());
        }
        // A kernel without real-time group scheduling takes it: then wholly.
        Ok(()) => {
            assert!(split_processes(&job).is_empty());
            assert_eq!(job.pids().unwrap(), vec![child.pid]);
        }
    }
    child.child().kill().unwrap();
}

/// Freezes the cgroup `dir` as another tool would: the v1 freezer, or v2 `cgroup.freeze`.
fn freeze(dir: &Path) {
    if dir.join("freezer.state").exists() {
        std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
        wait_for("the v1 freezer to freeze", TIMEOUT, || {
            std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        });
    } else {
        std::fs::write(dir.join("cgroup.freeze"), "1").unwrap();
    }
}

#[test]
fn terminate_kills_a_frozen_job() {
    if !require_cgroups("terminate_kills_a_frozen_job") {
        return;
    }
    let job = create(&options("frozen"));
    let mut outer = Reap::new(job.spawn(Command::new("sleep").arg("60")).unwrap());
    let mut inner = Reap::new(job.spawn(Command::new("sleep").arg("60")).unwrap());
    wait_asleep(&[outer.pid, inner.pid]);
    // The job's freezer: the v1 one where there is one, else the v2 directory.
    let dirs = job.cgroup_paths().unwrap();
    let freezer = dirs
        .iter()
        .find(|d| d.join("freezer.state").exists())
        .unwrap_or(&dirs[0])
        .clone();
    // A cgroup nested in it, frozen on its own (thawing the job leaves it frozen), holding one.
    let nested = freezer.join("frozen-child");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("cgroup.procs"), inner.pid.to_string()).unwrap();
    freeze(&nested);
    freeze(&freezer);

    job.terminate(1).unwrap();
    let outer_gone = outer.wait_timeout(TIMEOUT).is_some();
    let inner_gone = inner.wait_timeout(TIMEOUT).is_some();
    // Should it have failed, thaw what is left so that the clean-up can kill it.
    for dir in [&nested, &freezer] {
        std::fs::write(dir.join("freezer.state"), "THAWED")
            .or_else(|_| std::fs::write(dir.join("cgroup.freeze"), "0"))
            .ok();
    }
    if inner_gone {
        std::fs::remove_dir(&nested).ok();
    }
    assert!(
        outer_gone && inner_gone,
        "a frozen process survived terminate"
    );
}
