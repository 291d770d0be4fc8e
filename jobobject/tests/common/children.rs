//! Children for the portable tests: this test binary run again in a child mode, so that no
//! other program is needed on any platform. A test binary that uses them has the test
//! `fn child_mode() { common::run_child_mode() }` at its root.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The variable that holds the child mode.
pub const CHILD_ENV: &str = "JOBOBJECT_TEST_CHILD";

/// The test harness's arguments that run only the `child_mode` test, quietly.
const CHILD_ARGS: [&str; 5] = [
    "--exact",
    "child_mode",
    "--nocapture",
    "--test-threads=1",
    "-q",
];

/// This binary in child mode `mode`: `sleep:MS`, `exit:CODE`, `spin:MS` (busy for MS of wall
/// time), `alloc:MB` (touches MB MiB; exit 3 when the allocation is refused), `abort`, `grandchild:MS` (starts `sleep:MS`, prints `GRANDCHILD <pid>`, waits for it) or
/// `orphan:MS` (the same, but exits at once, leaving the grandchild running), `echo:VAR`
/// (copies stdin to stdout, then prints the variable VAR to stderr), `args` (prints the
/// arguments given after the harness's own), `watch:NAME` (creates the test job NAME with
/// notifications and holds it as `hold` does, then exits 0 if it heard the job empty), or `hold:NAME` and `hold-kill:NAME` (opens the
/// test job NAME, with `hold-kill` asks for kill-on-close, prints `HOLDING`, holds it until
/// its stdin closes, then closes it and prints `RELEASED`).
pub fn child(mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(CHILD_ARGS)
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// The same child as [`child`], for the library's own builder (standard streams inherited).
pub fn builder_child(mode: &str) -> jobobject::process::Command {
    let mut command =
        jobobject::process::Command::new(std::env::current_exe().expect("current_exe"));
    command.args(CHILD_ARGS).env(CHILD_ENV, mode);
    command
}

/// Runs the child mode named in the environment, if any, and exits.
pub fn run_child_mode() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, arg) = mode.split_once(':').unwrap_or((mode.as_str(), "0"));
    if what == "args" {
        // Prints each argument given after the harness's own, one per line.
        for arg in std::env::args_os().skip(1 + CHILD_ARGS.len()) {
            println!("ARG {arg:?}");
        }
        std::process::exit(0);
    }
    if what == "watch" {
        // Creates the job with notifications and holds it as `hold` does.
        let options = super::named_options(arg).notifications(true);
        let job = jobobject::JobObject::create(&options).expect("watch: create");
        println!("HOLDING");
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).ok();
        // Exits 0 if it heard an emptying meanwhile.
        let timeout = Duration::from_secs(10);
        while let Ok(Some(notification)) = job.poll_notification_timeout(timeout) {
            if notification == jobobject::Notification::AllProcessesExited {
                std::process::exit(0);
            }
        }
        std::process::exit(1);
    }
    if what == "hold" || what == "hold-kill" {
        let job = jobobject::JobObject::open(&super::named_options(arg)).expect("hold: open");
        if what == "hold-kill" {
            job.set_terminate_on_last_handle_close()
                .expect("hold: kill-on-close");
        }
        println!("HOLDING");
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).ok();
        job.close().expect("hold: close");
        println!("RELEASED");
        std::process::exit(0);
    }
    if what == "owner" || what == "owner-lax" {
        let (how, name) = arg.split_once(':').expect("owner:HOW:NAME");
        run_owner(how, name, what == "owner");
    }
    if what == "echo" {
        // Copies stdin to stdout, then writes the value of the variable `arg` to stderr.
        std::io::copy(&mut std::io::stdin(), &mut std::io::stdout()).expect("copy");
        eprint!("{}", std::env::var(arg).unwrap_or_default());
        std::process::exit(0);
    }
    let arg: u64 = arg.parse().expect("child mode argument");
    match what {
        "sleep" => std::thread::sleep(Duration::from_millis(arg)),
        "exit" => std::process::exit(arg as i32),
        // Allocates and touches `arg` MiB: exit 0, or 3 if the allocation was refused.
        "alloc" => {
            let mut memory: Vec<u8> = Vec::new();
            if memory.try_reserve_exact((arg as usize) << 20).is_err() {
                std::process::exit(3);
            }
            memory.resize((arg as usize) << 20, 1);
            std::hint::black_box(&memory);
        }
        // Ends abnormally (on Windows a fail-fast exception, an abnormal exit for a job).
        "abort" => std::process::abort(),
        "spin" => {
            let end = Instant::now() + Duration::from_millis(arg);
            let mut x = 0u64;
            while Instant::now() < end {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
            std::hint::black_box(x);
        }
        "grandchild" | "orphan" => {
            let mut grandchild = child(&format!("sleep:{arg}")).spawn().expect("grandchild");
            println!("GRANDCHILD {}", grandchild.id());
            if what == "orphan" {
                // Leaves it running: the job holds it after this process is gone.
                std::process::exit(0);
            }
            grandchild.wait().expect("wait for the grandchild");
        }
        other => panic!("unknown child mode {other}"),
    }
    std::process::exit(0);
}

/// Child mode `owner:HOW:NAME` (or `owner-lax:`, without kill-on-close): makes the job NAME
/// (`-`: an anonymous one) with kill-on-close, spawns `sleep:100000` in it (and on Linux a
/// shell that starts a daemon with `setsid`), prints `JOB <name>`, `PIDS <pid>...`, on Linux
/// `KEEPER <pid>`, then `READY`, waits for a line on its stdin (see [`Owned::end`]), and ends
/// without closing the job as HOW says: `kill` (waits to be killed), `exit`
/// (`process::exit`), `abort`, or (Linux) `exec` (becomes a shell that prints `EXECED` and
/// sleeps).
fn run_owner(how: &str, name: &str, kill_on_close: bool) -> ! {
    let options = match name {
        "-" => super::anonymous_options(),
        name => super::named_options(name),
    };
    let job = jobobject::JobObject::create(&options).expect("owner: create");
    if kill_on_close {
        job.set_terminate_on_last_handle_close()
            .expect("owner: kill-on-close");
    }
    // The sleeper, and on Linux the shell and its daemon.
    let expected = if cfg!(target_os = "linux") { 3 } else { 1 };
    let sleeper = job.spawn(&mut child("sleep:100000")).expect("owner: spawn");
    #[cfg(target_os = "linux")]
    {
        let mut daemon = Command::new("sh");
        daemon.args(["-c", "setsid sleep 100000 & exec sleep 100000"]);
        std::mem::forget(job.spawn(&mut daemon).expect("owner: spawn a daemon"));
    }
    // Until every process runs what it will run for good: the shell and the daemon's
    // `setsid` end as `sleep` (a process seen before its last exec may still fork and go).
    let settled = |pids: &[u32]| {
        let sleeping = |pid: &&u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        };
        pids.len() >= expected
            && (cfg!(windows) || pids.iter().filter(sleeping).count() >= expected - 1)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let pids = loop {
        let pids = job.pids().expect("owner: pids");
        if settled(&pids) || Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    std::mem::forget(sleeper);
    println!("JOB {}", job.name().expect("owner: name"));
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("PIDS {}", pids.join(" "));
    #[cfg(target_os = "linux")]
    println!(
        "KEEPER {}",
        jobobject::os::linux::keeper_pid().expect("owner: a keeper runs")
    );
    println!("READY");
    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
    std::mem::forget(job);
    // The test watches the processes before they can end.
    std::io::stdin().read_line(&mut String::new()).ok();
    match how {
        "exit" => std::process::exit(0),
        "abort" => std::process::abort(),
        #[cfg(target_os = "linux")]
        "exec" => {
            use std::os::unix::process::CommandExt;
            let err = Command::new("sh")
                .args(["-c", "echo EXECED; exec sleep 100"])
                .exec();
            panic!("owner: exec: {err}");
        }
        _ => {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).ok();
            std::process::exit(0);
        }
    }
}

/// Starts a `hold:` or `hold-kill:` child and waits until it holds the job (its stdin and
/// stdout piped: closing its stdin makes it close the job).
pub fn start_holder(mode: &str) -> Child {
    let mut process = child(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the holder");
    let stdout = process.stdout.as_mut().expect("piped");
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "HOLDING");
    assert!(holding, "the holder never opened the job");
    process
}

/// What an `owner:` child reported.
pub struct Owned {
    pub job: String,
    pub pids: Vec<u32>,
    pub keeper: Option<u32>,
    /// The rest of its output (after `READY`).
    pub lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    /// Its stdin: a line lets it end, closing it ends a `kill` owner.
    stdin: std::process::ChildStdin,
}

impl Owned {
    /// Lets the owner end as its mode says (a `kill` owner waits to be killed). Call it once
    /// the test watches every process it needs to, or those may be gone before it looks.
    pub fn end(&mut self) {
        std::io::Write::write_all(&mut self.stdin, b"END\n").expect("tell the owner to end");
    }
}

/// Starts an `owner:` child in `mode` and reads what it reports, up to `READY`.
pub fn start_owner(mode: &str) -> (Child, Owned) {
    let mut owner = child(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the owner");
    let mut lines = BufReader::new(owner.stdout.take().expect("piped")).lines();
    let stdin = owner.stdin.take().expect("piped");
    let (mut job, mut pids, mut keeper) = (String::new(), Vec::new(), None);
    for line in lines.by_ref() {
        let line = line.expect("read the owner's output");
        if let Some(name) = line.strip_prefix("JOB ") {
            job = name.to_owned();
        } else if let Some(list) = line.strip_prefix("PIDS ") {
            pids = list.split(' ').map(|p| p.parse().expect("pid")).collect();
        } else if let Some(pid) = line.strip_prefix("KEEPER ") {
            keeper = Some(pid.parse().expect("keeper pid"));
        } else if line == "READY" {
            break;
        }
    }
    assert!(!pids.is_empty(), "the owner ({mode}) reported no processes");
    let owned = Owned {
        job,
        pids,
        keeper,
        lines,
        stdin,
    };
    (owner, owned)
}

/// The grandchild's pid, read from the `GRANDCHILD <pid>` line of a `grandchild:` or `orphan:`
/// child spawned with a piped stdout.
pub fn grandchild_of(child: &mut Child) -> u32 {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("GRANDCHILD "))
        .expect("the child reports its grandchild");
    line["GRANDCHILD ".len()..].trim().parse().expect("pid")
}

/// Panics unless `status` is that of a process `terminate(code)` ended: killed by SIGKILL on
/// Linux (which has no exit code to give), exited with `code` on Windows.
pub fn assert_terminated(status: ExitStatus, code: u32) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::ExitStatusExt;
        let _ = code;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
    #[cfg(windows)]
    assert_eq!(status.code(), Some(code as i32), "{status:?}");
}

/// The Wine version, from ntdll's `wine_get_version` export; `None` on Windows itself.
#[cfg(windows)]
pub fn wine() -> Option<String> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
    // SAFETY: a NUL-terminated module name; ntdll is always loaded.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    assert!(!module.is_null(), "ntdll is not loaded");
    // SAFETY: `module` is loaded and the symbol name NUL-terminated.
    let address = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine declares `const char *wine_get_version(void)`.
    let get = unsafe {
        std::mem::transmute::<
            unsafe extern "system" fn() -> isize,
            unsafe extern "C" fn() -> *const std::ffi::c_char,
        >(address)
    };
    // SAFETY: it returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(get()) };
    Some(version.to_string_lossy().into_owned())
}

/// Whether the platform implements limits and statistics, saying which behaviour `test`
/// checks: everywhere but under Wine, which implements neither (there the tests check that
/// the library says so).
pub fn limits_implemented(test: &str) -> bool {
    #[cfg(windows)]
    if let Some(version) = wine() {
        eprintln!("{test}: under Wine {version}: checking that unimplemented limits are reported");
        return false;
    }
    let _ = test;
    true
}
