//! The library's own process builder on Linux: every spawn path (born in the job with clone3
//! `CLONE_INTO_CGROUP`, joining from a vfork-style child, without a pidfd), each forced and
//! checked by the child's own `/proc/self/cgroup`; the fallbacks a real host takes (a killed
//! cgroup, clone3 refused by seccomp); and what a child inherits and what it must not.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;

use common::*;
use jobobject::os::linux::{CgroupLayout, ChildExt, CommandExt, SpawnPath};
use jobobject::process::{Child, Command, Stdio};
use jobobject::{ErrorKind, JobObject};

/// Waits for a child when dropped, so that a failing test leaves no zombie.
struct Waited(Option<Child>);

impl Drop for Waited {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` in `job` and returns its standard output; panics unless it succeeds.
fn output_of(job: &JobObject, command: &mut Command) -> String {
    let child = command.stdout(Stdio::piped()).spawn(job).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{command:?}: {:?}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

fn paths() -> Vec<(Option<SpawnPath>, &'static str)> {
    let mut paths = vec![
        (None, "default"),
        (Some(SpawnPath::Join), "join"),
        (Some(SpawnPath::JoinWithoutPidfd), "join without pidfd"),
    ];
    if CgroupLayout::detect().unwrap() != CgroupLayout::Legacy {
        paths.push((Some(SpawnPath::BornInJob), "born in job"));
    }
    paths
}

/// Every path puts the child in the job in every hierarchy before it runs the program:
/// `cat` reads its own `/proc/self/cgroup` first thing.
#[test]
fn every_path_puts_the_child_in_every_hierarchy() {
    if !require_cgroups("every_path_puts_the_child_in_every_hierarchy") {
        return;
    }
    let job = create(&options("spawn-paths"));
    let name = job.name().unwrap();
    for (path, label) in paths() {
        let mut command = Command::new("cat");
        command.arg("/proc/self/cgroup");
        if let Some(path) = path {
            command.spawn_path(path);
        }
        let text = output_of(&job, &mut command);
        println!("{label}:\n{text}");
        assert_in_job(&text, &name);
    }
    wait_empty(&job, TIMEOUT);
}

/// The pidfd is there on the paths that ask for one, and names the child.
#[test]
fn pidfd_names_the_child() {
    if !require_cgroups("pidfd_names_the_child") {
        return;
    }
    let job = create(&anonymous_options());
    for (path, label) in paths() {
        let mut command = Command::new("sleep");
        command.arg("100");
        if let Some(path) = path {
            command.spawn_path(path);
        }
        let mut child = Waited(Some(command.spawn(&job).unwrap()));
        let child = child.0.as_mut().unwrap();
        match child.pidfd() {
            Some(fd) => {
                rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL).unwrap();
                assert_eq!(
                    child.wait().unwrap().signal(),
                    Some(libc::SIGKILL),
                    "{label}"
                );
            }
            None => {
                assert_eq!(path, Some(SpawnPath::JoinWithoutPidfd), "{label}: no pidfd");
                child.kill().unwrap();
                child.wait().unwrap();
            }
        }
    }
}

/// After `terminate` (which writes `cgroup.kill`), and after another process killed the job
/// behind this handle's back, a child still starts and runs in the job: Linux 6.18 kills a
/// child cloned into a killed cgroup, and the library notices and joins instead.
#[test]
fn spawn_after_the_job_was_killed() {
    if !require_cgroups("spawn_after_the_job_was_killed") {
        return;
    }
    if CgroupLayout::detect().unwrap() == CgroupLayout::Legacy {
        println!("SKIP spawn_after_the_job_was_killed: no v2 cgroup.kill on cgroup v1");
        return;
    }
    // Killed through this handle.
    let job = create(&options("spawn-killed"));
    let name = job.name().unwrap();
    job.terminate(1).unwrap();
    let text = output_of(&job, Command::new("cat").arg("/proc/self/cgroup"));
    assert_in_job(&text, &name);
    // Killed by someone else: written straight to the file.
    let job = create(&options("spawn-killed-behind"));
    let name = job.name().unwrap();
    let v2 = own_cgroups()
        .into_iter()
        .find(|c| c.v2)
        .unwrap()
        .dir
        .join(&name);
    if !v2.join("cgroup.kill").exists() {
        println!("SKIP spawn_after_the_job_was_killed: no cgroup.kill (Linux < 5.14)");
        return;
    }
    std::fs::write(v2.join("cgroup.kill"), "1").unwrap();
    for _ in 0..3 {
        let text = output_of(&job, Command::new("cat").arg("/proc/self/cgroup"));
        assert_in_job(&text, &name);
    }
}

/// A program that is missing, not executable, or a directory fails like std's spawn, with
/// the program named, and leaves no process behind.
#[test]
fn exec_failures_report_like_std() {
    if !require_cgroups("exec_failures_report_like_std") {
        return;
    }
    let job = create(&anonymous_options());
    let dir = tempdir("exec-failures");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (path, _) in paths() {
        let spawn = |program: &std::path::Path| {
            let mut command = Command::new(program);
            if let Some(path) = path {
                command.spawn_path(path);
            }
            command.spawn(&job).map(|mut c| c.wait()).unwrap_err()
        };
        let missing = spawn("surely-not-a-program-here".as_ref());
        assert_eq!(missing.kind(), ErrorKind::ProgramNotFound, "{missing}");
        assert!(
            missing.to_string().contains("surely-not-a-program-here"),
            "{missing}"
        );
        let denied = spawn(&plain);
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied, "{denied}");
        let directory = spawn(&dir);
        assert_eq!(directory.kind(), ErrorKind::PermissionDenied, "{directory}");
        let std_missing = std::process::Command::new("surely-not-a-program-here")
            .spawn()
            .unwrap_err();
        assert_eq!(missing.raw_os_error(), std_missing.raw_os_error());
    }
    assert!(job.pids().unwrap().is_empty());
}

/// A program is looked up in the child's `PATH` when the builder sets one, else in ours.
#[test]
fn program_is_found_in_the_childs_path() {
    if !require_cgroups("program_is_found_in_the_childs_path") {
        return;
    }
    let job = create(&anonymous_options());
    let dir = tempdir("path-lookup");
    let script = dir.join("jobobject-hello");
    // Written by a child: a descriptor of ours open for writing could leak into a child
    // another test forks meanwhile, and the exec would fail with ETXTBSY while it lives.
    let written = std::process::Command::new("sh")
        .args([
            "-c",
            "printf '#!/bin/sh\\necho found \"$@\"\\n' > \"$0\" && chmod 755 \"$0\"",
        ])
        .arg(&script)
        .status()
        .unwrap();
    assert!(written.success());
    let path = format!("/nonexistent:{}:/usr/bin:/bin", dir.display());
    let text = output_of(
        &job,
        Command::new("jobobject-hello").arg("it").env("PATH", &path),
    );
    assert_eq!(text, "found it\n");
    let err = Command::new("jobobject-hello").spawn(&job).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProgramNotFound);
    // Cleared: the default path still finds `sh`.
    let text = output_of(
        &job,
        Command::new("sh").args(["-c", "echo $PATH"]).env_clear(),
    );
    assert!(!text.trim().is_empty());
}

/// The environment as std builds it: inherited, with set, removed and cleared variables.
#[test]
fn environment_is_set_removed_and_cleared() {
    if !require_cgroups("environment_is_set_removed_and_cleared") {
        return;
    }
    let job = create(&anonymous_options());
    let env = |command: &mut Command| {
        let text = output_of(&job, command.arg("-0"));
        text.split('\0')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let inherited = env(Command::new("env").env("JOBOBJECT_A", "1 2"));
    assert!(inherited.contains(&"JOBOBJECT_A=1 2".to_owned()));
    assert!(inherited.iter().any(|v| v.starts_with("PATH=")));
    let removed = env(Command::new("/usr/bin/env").env_remove("PATH"));
    assert!(!removed.iter().any(|v| v.starts_with("PATH=")));
    let cleared = env(Command::new("/usr/bin/env").env_clear().env("ONLY", "this"));
    assert_eq!(cleared, vec!["ONLY=this".to_owned()]);
}

/// Standard streams: piped both ways, null, a file, and inherited descriptors kept in place.
#[test]
fn standard_streams() {
    if !require_cgroups("standard_streams") {
        return;
    }
    let job = create(&anonymous_options());
    // Piped in and out, and stderr piped apart.
    let mut child = Command::new("sh")
        .args(["-c", "cat; echo oops >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn(&job)
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through the job")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.stdout, b"through the job");
    assert_eq!(output.stderr, b"oops\n");
    // Null: reads end at once.
    let text = output_of(&job, Command::new("wc").arg("-c").stdin(Stdio::null()));
    assert_eq!(text.trim(), "0");
    // A file as stdout.
    let dir = tempdir("stdio");
    let file = std::fs::File::create(dir.join("out")).unwrap();
    let mut child = Command::new("echo")
        .arg("to a file")
        .stdout(file)
        .spawn(&job)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "to a file\n"
    );
    // One child's stdout as the next one's stdin.
    let mut first = Command::new("echo")
        .arg("piped along")
        .stdout(Stdio::piped())
        .spawn(&job)
        .unwrap();
    let mut second = Command::new("cat")
        .stdin(first.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn(&job)
        .unwrap();
    let mut text = String::new();
    second
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "piped along\n");
    assert!(first.wait().unwrap().success() && second.wait().unwrap().success());
}

/// No descriptor of ours reaches the child, whatever path it takes: it has exactly the ones
/// a plain std spawn's child has (0, 1, 2, the one `ls` opens, and any the test runner left
/// open without close-on-exec). Its signal mask is empty and SIGPIPE at its default, as std
/// leaves them, even when spawned from a thread that blocks signals.
#[test]
fn child_gets_no_descriptor_and_a_clean_signal_state() {
    if !require_cgroups("child_gets_no_descriptor_and_a_clean_signal_state") {
        return;
    }
    let job = create(&anonymous_options());
    let script = "ls /proc/self/fd; grep -E '^Sig(Blk|Ign)' /proc/self/status";
    let plain = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    let plain_fds: Vec<&str> = plain
        .lines()
        .take_while(|l| !l.starts_with("Sig"))
        .collect();
    assert!(
        ["0", "1", "2"].iter().all(|fd| plain_fds.contains(fd)),
        "{plain}"
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // SAFETY: blocks SIGUSR1 in this thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            for (path, label) in paths() {
                let mut command = Command::new("sh");
                command.args(["-c", script]);
                if let Some(path) = path {
                    command.spawn_path(path);
                }
                let text = output_of(&job, &mut command);
                let fds: Vec<&str> = text.lines().take_while(|l| !l.starts_with("Sig")).collect();
                assert_eq!(fds, plain_fds, "{label}");
                let blocked = text.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
                assert!(blocked.ends_with("0000000000000000"), "{label}: {text}");
                let ignored = text.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
                let ignored = u64::from_str_radix(ignored.split_whitespace().nth(1).unwrap(), 16);
                let sigpipe = 1u64 << (libc::SIGPIPE - 1);
                assert_eq!(ignored.unwrap() & sigpipe, 0, "{label}: {text}");
            }
        });
    });
}

/// Working directory, process group, exit status, `try_wait` and `kill`.
#[test]
fn directory_group_status_and_kill() {
    if !require_cgroups("directory_group_status_and_kill") {
        return;
    }
    let job = create(&anonymous_options());
    assert_eq!(
        output_of(&job, Command::new("pwd").current_dir("/tmp")),
        "/tmp\n"
    );
    let err = Command::new("pwd")
        .current_dir("/surely/not/here")
        .spawn(&job)
        .unwrap_err();
    assert!(err.to_string().contains("/surely/not/here"), "{err}");
    let mut child = Command::new("sh")
        .args(["-c", "exit 3"])
        .spawn(&job)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert_eq!(
        child.wait().unwrap().code(),
        Some(3),
        "a second wait gives it again"
    );
    let mut child = Command::new("sleep")
        .arg("100")
        .process_group(0)
        .spawn(&job)
        .unwrap();
    let pid = child.id() as i32;
    // SAFETY: getpgid takes a plain value.
    assert_eq!(unsafe { libc::getpgid(pid) }, pid);
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    child
        .kill()
        .expect("killing a reaped child is Ok, as in std");
}

/// Root runs a child as another user and group, without root's supplementary groups.
#[test]
fn user_and_group() {
    if !require_cgroups("user_and_group") {
        return;
    }
    if !rustix::process::getuid().is_root() {
        println!("SKIP user_and_group: needs root");
        return;
    }
    let job = create(&anonymous_options());
    let text = output_of(&job, Command::new("id").uid(65534).gid(65534));
    assert!(text.starts_with("uid=65534"), "{text}");
    assert!(text.contains("gid=65534"), "{text}");
    assert!(!text.contains("groups=0"), "{text}");
}

/// Many threads spawning at once (each with its own child stack), all in the job.
#[test]
fn concurrent_spawns() {
    if !require_cgroups("concurrent_spawns") {
        return;
    }
    let job = create(&anonymous_options());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let mut child = Command::new("true").spawn(&job).unwrap();
                    assert!(child.wait().unwrap().success());
                }
            });
        }
    });
    wait_empty(&job, TIMEOUT);
}

/// A fresh scratch directory for one test, in the system's temporary directory.
fn tempdir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jobobject-spawn-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The variable that makes this test binary a seccomp child (see [`seccomp_child`]).
const SECCOMP_ENV: &str = "JOBOBJECT_TEST_SECCOMP_ERRNO";

/// clone3 refused by a seccomp filter, as container runtimes do (Docker's default profile
/// returns `ENOSYS`; others `EPERM`; a kernel before 5.7 says `E2BIG`): the child still
/// starts in the job, through the vfork-style path. Each errno in a process of its own.
#[test]
fn clone3_refused_by_seccomp_falls_back() {
    if !require_cgroups("clone3_refused_by_seccomp_falls_back") {
        return;
    }
    for errno in [libc::ENOSYS, libc::EPERM, libc::E2BIG, libc::EINVAL] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "seccomp_child", "--nocapture", "-q"])
            .env(SECCOMP_ENV, errno.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "errno {errno}: {status:?}");
    }
}

/// In a seccomp child: refuses clone3 with the errno in [`SECCOMP_ENV`], then spawns into a
/// job by every path that does not force clone3, checking where each child is.
#[test]
fn seccomp_child() {
    let Ok(errno) = std::env::var(SECCOMP_ENV) else {
        return;
    };
    refuse_clone3(errno.parse().unwrap());
    let job = create(&anonymous_options());
    let name = job.name().unwrap();
    for _ in 0..3 {
        let text = output_of(&job, Command::new("cat").arg("/proc/self/cgroup"));
        assert_in_job(&text, &name);
    }
    let err = Command::new("true")
        .spawn_path(SpawnPath::BornInJob)
        .spawn(&job)
        .unwrap_err();
    // Forced, the clone3 path fails with the filter's errno (or, without a v2 hierarchy to
    // be born in, is unsupported).
    if CgroupLayout::detect().unwrap() == CgroupLayout::Legacy {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    } else {
        assert_eq!(err.raw_os_error(), errno.parse().ok(), "{err}");
    }
}

/// Installs a seccomp filter on this thread that fails clone3 with `errno`.
fn refuse_clone3(errno: u32) {
    let code = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jump = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let filter = [
        code(load, 0, 0, 0), // seccomp_data.nr
        code(jump, libc::SYS_clone3 as u32, 0, 1),
        code(ret, libc::SECCOMP_RET_ERRNO | errno, 0, 0),
        code(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with plain values, then with a valid filter program that lives across
    // the call (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let mode = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, mode, &raw const program),
            0
        );
    }
}

/// A child born in a v2 job counts against its process limit from birth, so a full job
/// refuses it (`EAGAIN`), as a Windows job at its active process limit does. Where the
/// process limit is a v1 controller (hybrid, legacy), the child joins it after its birth and
/// the move is not refused, as with `assign`.
#[test]
fn a_full_job_refuses_a_child_born_in_it() {
    if !require_cgroups("a_full_job_refuses_a_child_born_in_it") {
        return;
    }
    let job = create(&anonymous_options());
    if job.set_max_processes(Some(1)).is_err() {
        println!("SKIP a_full_job_refuses_a_child_born_in_it: no process limit here");
        return;
    }
    let _first = Waited(Some(Command::new("sleep").arg("100").spawn(&job).unwrap()));
    let second = Command::new("sleep").arg("100").spawn(&job);
    if CgroupLayout::detect().unwrap() == CgroupLayout::Unified {
        let err = second.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
        assert_eq!(job.pids().unwrap().len(), 1);
    } else {
        let _second = Waited(Some(second.unwrap()));
        assert_eq!(job.pids().unwrap().len(), 2);
    }
}

/// The compatibility path, `JobObject::spawn(&mut std::process::Command)`, leaves nothing on
/// the caller's `Command`: spawned again without the job, its child is where we are.
#[test]
fn std_command_is_left_as_it_was() {
    if !require_cgroups("std_command_is_left_as_it_was") {
        return;
    }
    let job = create(&options("std-command"));
    let name = job.name().unwrap();
    let mut command = std::process::Command::new("cat");
    command
        .arg("/proc/self/cgroup")
        .stdout(std::process::Stdio::piped());
    let output = job.spawn(&mut command).unwrap().wait_with_output().unwrap();
    assert_in_job(&String::from_utf8(output.stdout).unwrap(), &name);
    let output = command.output().unwrap();
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), mine);
}
