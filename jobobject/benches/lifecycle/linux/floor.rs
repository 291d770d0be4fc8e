//! The floor: the same cgroup directories made, joined, watched and removed by hand.

use super::*;

/// This process's own cgroup directory in each hierarchy the library uses, the v2 one first
/// (where there is one).
pub(super) fn own_cgroup_dirs() -> io::Result<Vec<PathBuf>> {
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    let mut dirs = Vec::new();
    for mount in mounts.lines() {
        let Some((left, right)) = mount.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount_point), Some(fstype)) =
            (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        // The v2 line of /proc/self/cgroup, or the v1 line carrying this mount's first
        // controller that the library uses.
        let controller = match *fstype {
            "cgroup2" => None,
            "cgroup" => {
                let options: Vec<&str> = right
                    .get(2)
                    .copied()
                    .unwrap_or_default()
                    .split(',')
                    .collect();
                if !made_with_a_job(&options) {
                    continue;
                }
                options
                    .into_iter()
                    .find(|o| USED_V1_CONTROLLERS.contains(o))
            }
            _ => continue,
        };
        let Some(path) = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = match controller {
                None => id == "0" && controllers.is_empty(),
                Some(c) => id != "0" && controllers.split(',').any(|x| x == c),
            };
            wanted.then_some(path)
        }) else {
            continue;
        };
        let Ok(relative) = Path::new(path).strip_prefix(root) else {
            continue;
        };
        let dir = Path::new(mount_point).join(relative);
        if *fstype == "cgroup2" {
            dirs.insert(0, dir);
        } else {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// Whether a job gets a directory at its creation in the v1 hierarchy mounted with
/// `options`, as the library decides it: one of the controllers it uses, and not only cpuset
/// and blkio (made on demand), nor on hybrid only cpuacct and freezer (served by v2).
fn made_with_a_job(options: &[&str]) -> bool {
    let used: Vec<&str> = options
        .iter()
        .copied()
        .filter(|o| USED_V1_CONTROLLERS.contains(o))
        .collect();
    let all_in = |set: &[&str]| used.iter().all(|c| set.contains(c));
    let hybrid = CgroupLayout::detect().ok() == Some(CgroupLayout::Hybrid);
    let served_by_v2 = hybrid && all_in(&["cpuacct", "freezer"]);
    !(used.is_empty() || all_in(&["cpuset", "blkio"]) || served_by_v2)
}

/// One directory per hierarchy, made by hand; removed when dropped.
pub(super) struct RawCgroups {
    pub(super) dirs: Vec<PathBuf>,
}

impl RawCgroups {
    pub(super) fn make(parents: &[PathBuf], name: &str) -> io::Result<Self> {
        let mut made = RawCgroups { dirs: Vec::new() };
        for parent in parents {
            let dir = parent.join(name);
            fs::create_dir(&dir)?;
            made.dirs.push(dir);
        }
        Ok(made)
    }

    /// Copies `cpuset.cpus` and `cpuset.mems` from the parent, which a v1 cpuset needs
    /// before it accepts a process.
    pub(super) fn init_cpusets(&self) -> io::Result<()> {
        for dir in &self.dirs {
            let parent = dir.parent().expect("a cgroup has a parent");
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if parent.join(file).exists() {
                    fs::write(dir.join(file), fs::read(parent.join(file))?)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn remove(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        while let Some(dir) = self.dirs.pop() {
            let started = Instant::now();
            loop {
                match fs::remove_dir(&dir) {
                    Err(e)
                        if e.kind() == io::ErrorKind::ResourceBusy
                            && started.elapsed() < Duration::from_secs(2) =>
                    {
                        thread::sleep(Duration::from_micros(100));
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                    Ok(()) => break,
                }
            }
        }
        result
    }
}

impl Drop for RawCgroups {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

pub(super) fn floor_create_remove(parents: &[PathBuf]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = bench_name(&format!("floor-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    let mut raw = RawCgroups::make(parents, &name).expect("mkdir the floor cgroups");
    raw.remove().expect("rmdir the floor cgroups");
}

/// Cgroups made by hand with their `cgroup.procs` files open, for a hook to join.
pub(super) struct RawJoin {
    pub(super) procs: Arc<[File]>,
    // Dropped after `procs`: the directories are removed once the files are closed.
    pub(super) cgroups: RawCgroups,
}

impl RawJoin {
    pub(super) fn new(parents: &[PathBuf], what: &str) -> io::Result<Self> {
        let cgroups = RawCgroups::make(parents, &bench_name(what))?;
        cgroups.init_cpusets()?;
        let procs = cgroups
            .dirs
            .iter()
            .map(|d| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
            })
            .collect::<io::Result<Vec<File>>>()?;
        Ok(RawJoin {
            procs: procs.into(),
            cgroups,
        })
    }

    /// A command whose child joins these cgroups before it execs.
    pub(super) fn command(&self, program: &str) -> Command {
        let procs = Arc::clone(&self.procs);
        let mut command = Command::new(program);
        // SAFETY: between fork and exec the hook only calls write(2) on open descriptors and
        // allocates nothing, as the library's own hook does.
        unsafe {
            command.pre_exec(move || {
                for mut file in procs.iter() {
                    file.write_all(b"0")?;
                }
                Ok(())
            })
        };
        command
    }
}

/// Joined-by-hand cgroups with an inotify watch on the v2 `cgroup.events`: what the library's
/// event thread does, without the thread.
pub(super) struct RawWatch {
    pub(super) join: RawJoin,
    pub(super) inotify: OwnedFd,
    pub(super) events: PathBuf,
}

impl RawWatch {
    pub(super) fn new(parents: &[PathBuf]) -> io::Result<Option<Self>> {
        let join = RawJoin::new(parents, "notify-floor")?;
        let Some(events) = join
            .cgroups
            .dirs
            .first()
            .map(|d| d.join("cgroup.events"))
            .filter(|e| e.exists())
        else {
            return Ok(None);
        };
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(&inotify, &events, inotify::WatchFlags::MODIFY)?;
        Ok(Some(RawWatch {
            join,
            inotify,
            events,
        }))
    }

    pub(super) fn drain(&self) {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 1024];
        let mut reader = inotify::Reader::new(&self.inotify, &mut buffer);
        while reader.next().is_ok() {}
    }

    pub(super) fn populated(&self) -> bool {
        fs::read_to_string(&self.events)
            .expect("read cgroup.events")
            .contains("populated 1")
    }
}
