//! Job names: opening by name (also from another process), missing and existing names, and
//! malformed names that must be refused before anything is created.
//!
//! A symlink planted in the parent directory cannot be tested here: cgroupfs refuses to
//! create symlinks (EPERM), so no such entry can exist in a real cgroup directory. The
//! library's `O_NOFOLLOW` handling of one is covered by the unit tests in
//! `src/sys/linux/cgroup/dir.rs`, on an ordinary filesystem.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use jobobject::os::linux::{CgroupParent, OptionsExt};
use jobobject::{Error, JobObject, Options};

/// The environment variable that turns this test binary into the child of
/// `open_by_name_from_another_process`: it holds the job's name.
const CHILD_JOB_ENV: &str = "JOBOBJECT_TEST_CHILD_JOB";

/// Not a test of its own: the child program of `open_by_name_from_another_process`, run by
/// re-executing this test binary with `--exact child_opens_job_and_prints_pids --ignored`.
/// It opens the job by name (below its own cgroups, which are its parent's, as it was started
/// outside the job) and prints what it sees. Without the variable it does nothing.
#[test]
#[ignore = "child program of open_by_name_from_another_process"]
fn child_opens_job_and_prints_pids() {
    let Some(name) = std::env::var_os(CHILD_JOB_ENV) else {
        return;
    };
    let name = name.into_string().unwrap();
    let options = Options::new()
        .name(name.clone())
        .cgroup_parent(CgroupParent::Own);
    let job = JobObject::open(&options).expect("child: open the job by name");
    let pids = job.pids().expect("child: pids");
    let text: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("CHILD-NAME: {}", job.name().unwrap());
    println!("CHILD-PIDS: {}", text.join(" "));
    // Closing an opened handle leaves the job alone.
    job.close().unwrap();
}

/// Another process opens the job by name and sees the same processes.
#[test]
fn open_by_name_from_another_process() {
    if !require_cgroups("open_by_name_from_another_process") {
        return;
    }
    let options = options("open-elsewhere");
    let name = options.name.clone().unwrap();
    let job = create(&options);
    let mut first = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());
    let mut second = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());

    // Started with plain std, outside the job: the same cgroups as this process.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_opens_job_and_prints_pids",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_JOB_ENV, &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |prefix: &str| -> String {
        stdout
            .lines()
            // The harness's "test NAME ... " may precede the first line.
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {prefix} line in the child's output:\n{stdout}"))
            .trim()
            .to_owned()
    };
    assert_eq!(line("CHILD-NAME:"), name);
    let seen: Vec<u32> = line("CHILD-PIDS:")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let mut expected = vec![first.pid, second.pid];
    expected.sort_unstable();
    assert_eq!(seen, expected, "the child's view of the job");
    assert_eq!(
        job.pids().unwrap(),
        expected,
        "this process's view of the job"
    );
    // The child's close left the job in place.
    assert_job_exists(&name);

    job.terminate(1).unwrap();
    first.wait();
    second.wait();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}

/// Opening a name that does not exist is `NotFound`; opening without a name is
/// `InvalidArgument`. Neither creates anything.
#[test]
fn open_missing_is_not_found() {
    if !require_cgroups("open_missing_is_not_found") {
        return;
    }
    let options = options("missing");
    let name = options.name.clone().unwrap();
    match JobObject::open(&options) {
        Err(Error::NotFound { what }) => assert!(what.contains(&name), "{what}"),
        other => panic!("open of a missing job: {other:?}"),
    }
    assert_job_removed(&name);
    let err = JobObject::open(&anonymous_options()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}

/// Creating a name that exists is `AlreadyExists`, and leaves the existing job intact.
#[test]
fn create_existing_is_already_exists() {
    if !require_cgroups("create_existing_is_already_exists") {
        return;
    }
    let options = options("exists");
    let name = options.name.clone().unwrap();
    let job = create(&options);
    let mut child = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());

    match JobObject::create(&options) {
        Err(Error::AlreadyExists { job }) => assert_eq!(job, name),
        other => panic!("create of an existing job: {other:?}"),
    }
    // Also with other options (notifications): still refused.
    let err = JobObject::create(&options.clone().notifications(true)).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");

    assert_job_exists(&name);
    assert_eq!(job.pids().unwrap(), vec![child.pid]);
    assert!(child.running());
    let opened = JobObject::open(&options).unwrap();
    assert_eq!(opened.pids().unwrap(), vec![child.pid]);
    drop(opened);

    job.terminate(1).unwrap();
    child.wait();
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}

/// A job that exists in only some hierarchies (a half-made or half-removed one) is refused
/// too, and the refusal removes nothing of it and leaves nothing of its own.
#[test]
fn create_over_a_partial_job_is_already_exists() {
    if !require_cgroups("create_over_a_partial_job_is_already_exists") {
        return;
    }
    let name = test_name("partial");
    let used = used_cgroups();
    let Some(last) = used.last() else {
        return;
    };
    if used.len() < 2 {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIP create_over_a_partial_job_is_already_exists: one hierarchy only\n",
        );
        return;
    }
    // Made by hand in the last hierarchy only, so the library makes the others first.
    let planted = last.dir.join(&name);
    std::fs::create_dir(&planted).unwrap();
    struct Rmdir(PathBuf);
    impl Drop for Rmdir {
        fn drop(&mut self) {
            std::fs::remove_dir(&self.0).ok();
        }
    }
    let planted_guard = Rmdir(planted.clone());
    let _cleanup = Cleanup::new(&name);

    let options = options("partial");
    match JobObject::create(&options) {
        Err(Error::AlreadyExists { job }) => assert_eq!(job, name),
        Ok(job) => {
            job.set_terminate_on_last_handle_close().ok();
            panic!(
                "created a job over an existing directory {}",
                planted.display()
            );
        }
        Err(other) => panic!("create over a partial job: {other:?}"),
    }
    assert!(planted.is_dir(), "the existing directory was removed");
    let others: Vec<PathBuf> = remaining_dirs(&name)
        .into_iter()
        .filter(|d| *d != planted)
        .collect();
    assert!(others.is_empty(), "the refused create left {others:?}");
    drop(planted_guard);
    assert_job_removed(&name);
}

/// Malformed names are `InvalidArgument` for both create and open, and nothing is created in
/// any hierarchy: not in the parent, not above it.
#[test]
fn malformed_names_are_refused_and_create_nothing() {
    if !require_cgroups("malformed_names_are_refused_and_create_nothing") {
        return;
    }
    let long = "n".repeat(300);
    let bad = [
        "../x",
        "a/b",
        "",
        "a\0b",
        long.as_str(),
        "..",
        ".",
        ".hidden",
        "a\nb",
        // Control characters: a name reaches terminals.
        "title\x1b]0;pwned\x07",
        "clear\x1b[2J",
        "cr\r",
        "del\x7f",
        "c1\u{9b}2J",
        "bidi\u{202e}",
        // The names of cgroup interface files, which a job directory would collide with.
        "cgroup.procs",
        "cgroup.kill",
        "tasks",
        "notify_on_release",
        "memory.max",
        "cpu.max",
        "pids.max",
        "io.max",
        "freezer.state",
    ];
    // What a careless implementation could have made of them.
    let suspects: BTreeSet<String> = [
        "x",
        "a",
        "b",
        "a\0b",
        "a\nb",
        "n".repeat(255).as_str(),
        long.as_str(),
        ".hidden",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();

    let cgroups = own_cgroups();
    let snapshot = || -> Vec<(BTreeSet<String>, Option<BTreeSet<String>>)> {
        cgroups
            .iter()
            .map(|c| {
                let above = c.dir.parent().filter(|_| c.cgroup != "/").map(listing);
                (listing(&c.dir), above)
            })
            .collect()
    };
    let before = snapshot();

    for name in bad {
        let options = Options::new().name(name).cgroup_parent(CgroupParent::Own);
        match JobObject::create(&options) {
            Err(Error::InvalidArgument { .. }) => {}
            Ok(job) => {
                job.set_terminate_on_last_handle_close().ok();
                panic!("created a job named {name:?}: {:?}", job.name());
            }
            Err(other) => panic!("create {name:?}: {other:?}"),
        }
        match JobObject::open(&options) {
            Err(Error::InvalidArgument { .. }) => {}
            other => panic!("open {name:?}: {other:?}"),
        }
    }

    let after = snapshot();
    for ((cgroup, (parent_before, above_before)), (parent_after, above_after)) in
        cgroups.iter().zip(&before).zip(&after)
    {
        // Tests running meanwhile in this process, and in other processes where the parent
        // is a shared root, add and remove their own jobs: ignore those.
        let concurrent = |n: &&String| !n.starts_with("jobobject-test-") && !n.starts_with("anon-");
        let new: Vec<&String> = parent_after
            .difference(parent_before)
            .filter(concurrent)
            .filter(|n| cgroup.cgroup != "/" || suspects.contains(*n))
            .collect();
        assert!(
            new.is_empty(),
            "malformed names created {new:?} in {}",
            cgroup.dir.display()
        );
        for suspect in &suspects {
            let path = cgroup.dir.join(suspect);
            if !parent_before.contains(suspect) {
                assert!(!path.exists(), "{} was created", path.display());
            }
        }
        if let (Some(above_before), Some(above_after)) = (above_before, above_after) {
            for suspect in &suspects {
                assert!(
                    above_before.contains(suspect) || !above_after.contains(suspect),
                    "{suspect:?} was created above {}",
                    cgroup.dir.display()
                );
            }
        }
    }
}

/// The longest valid name (255 bytes) works end to end.
#[test]
fn longest_name_works() {
    if !require_cgroups("longest_name_works") {
        return;
    }
    let prefix = test_name("long");
    let name = format!("{prefix}-{}", "n".repeat(255 - prefix.len() - 1));
    assert_eq!(name.len(), 255);
    let options = Options::new()
        .name(name.clone())
        .cgroup_parent(CgroupParent::Own);
    let job = create(&options);
    assert_job_exists(&name);
    let opened = JobObject::open(&options).unwrap();
    assert_eq!(opened.name().unwrap(), name);
    drop(opened);
    job.close().unwrap();
    wait_job_removed(&name, TIMEOUT);
}
