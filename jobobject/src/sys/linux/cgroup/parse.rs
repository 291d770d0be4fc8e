//! Parsers for the kernel's text files: `cgroup.events`, `cgroup.procs`, `/proc/PID/cgroup`
//! and `/proc/PID/mountinfo`. Pure functions, so that malformed input is tested without a
//! kernel.

use std::fmt;
use std::path::PathBuf;

/// Malformed kernel output: which file, which line, what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) file: &'static str,
    pub(crate) line: usize,
    pub(crate) message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for std::io::Error {
    fn from(err: ParseError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }
}

fn error(file: &'static str, index: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        file,
        line: index + 1,
        message: message.into(),
    }
}

/// The keys of a v2 `cgroup.events` file that this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupEvents {
    /// The cgroup or one of its descendants holds a live process.
    pub(crate) populated: bool,
    /// The cgroup is frozen (absent before Linux 5.2).
    pub(crate) frozen: Option<bool>,
}

/// Parses `cgroup.events`: `key value` lines; `populated` is required, unknown keys are
/// skipped (the kernel adds keys over time).
pub(crate) fn cgroup_events(text: &str) -> Result<CgroupEvents, ParseError> {
    const FILE: &str = "cgroup.events";
    let mut populated = None;
    let mut frozen = None;
    for (index, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(error(
                FILE,
                index,
                format!("expected `key value`, found {line:?}"),
            ));
        };
        let flag = || match value {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(error(
                FILE,
                index,
                format!("{key}: expected 0 or 1, found {value:?}"),
            )),
        };
        match key {
            "populated" => populated = Some(flag()?),
            "frozen" => frozen = Some(flag()?),
            _ => {}
        }
    }
    let populated = populated.ok_or_else(|| error(FILE, 0, "no `populated` key"))?;
    Ok(CgroupEvents { populated, frozen })
}

/// Parses `cgroup.procs` (or `tasks`): one decimal id per line.
pub(crate) fn pids(text: &str) -> Result<Vec<u32>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            line.parse::<u32>()
                .ok()
                .filter(|&pid| pid != 0)
                .ok_or_else(|| error("cgroup.procs", index, format!("not a process id: {line:?}")))
        })
        .collect()
}

/// One line of `/proc/PID/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// Hierarchy id; 0 is the v2 unified hierarchy.
    pub(crate) id: u32,
    /// The v1 controllers (and `name=` entries) of the hierarchy; empty for v2.
    pub(crate) controllers: Vec<String>,
    /// The cgroup's path from the hierarchy's root (or the cgroup namespace's root).
    pub(crate) path: String,
}

/// Parses `/proc/PID/cgroup`: `id:controllers:path` lines.
pub(crate) fn proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, ParseError> {
    const FILE: &str = "/proc/self/cgroup";
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(error(
                    FILE,
                    index,
                    format!("expected `id:controllers:path`, found {line:?}"),
                ));
            };
            let id = id
                .parse()
                .map_err(|_| error(FILE, index, format!("bad hierarchy id {id:?}")))?;
            if !path.starts_with('/') {
                return Err(error(FILE, index, format!("path {path:?} is not absolute")));
            }
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(ProcCgroup {
                id,
                controllers,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The fields of one `/proc/PID/mountinfo` line that this crate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The path inside the filesystem that is mounted (`/` for a whole hierarchy).
    pub(crate) root: PathBuf,
    /// Where it is mounted.
    pub(crate) mount_point: PathBuf,
    /// The filesystem type, such as `cgroup` or `cgroup2`.
    pub(crate) fs_type: String,
    /// The per-superblock options; for cgroup v1 they name the controllers.
    pub(crate) super_options: Vec<String>,
}

/// Parses `/proc/PID/mountinfo` (see proc(5)): fields, optional fields ended by `-`, then
/// type, source and super options. Octal escapes such as `\040` are decoded.
pub(crate) fn mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    const FILE: &str = "/proc/self/mountinfo";
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields
                .iter()
                .skip(6)
                .position(|f| *f == "-")
                .map(|p| p + 6)
                .ok_or_else(|| error(FILE, index, "no `-` separator after the optional fields"))?;
            if fields.len() < separator + 4 {
                return Err(error(FILE, index, "missing type, source or super options"));
            }
            let decode = |field: &str| {
                unescape(field)
                    .ok_or_else(|| error(FILE, index, format!("bad escape in {field:?}")))
            };
            Ok(Mount {
                root: PathBuf::from(decode(fields[3])?),
                mount_point: PathBuf::from(decode(fields[4])?),
                fs_type: decode(fields[separator + 1])?,
                super_options: fields[separator + 3]
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> Option<String> {
    if !field.contains('\\') {
        return Some(field.to_owned());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes.get(i + 1..i + 4)?;
            let text = std::str::from_utf8(digits).ok()?;
            out.push(u8::from_str_radix(text, 8).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_well_formed() {
        let parsed = cgroup_events("populated 1\nfrozen 0\n").unwrap();
        assert_eq!(
            parsed,
            CgroupEvents {
                populated: true,
                frozen: Some(false)
            }
        );
        let old_kernel = cgroup_events("populated 0\n").unwrap();
        assert_eq!(old_kernel.frozen, None);
        assert!(!old_kernel.populated);
        // Keys added by later kernels are skipped.
        assert!(cgroup_events("populated 1\nnew_key 7\n").unwrap().populated);
    }

    #[test]
    fn events_malformed() {
        for bad in [
            "",
            "frozen 0\n",
            "populated\n",
            "populated 2\n",
            "populated 1 1\n",
            "populated yes\n",
            "\u{0}\n",
        ] {
            assert!(cgroup_events(bad).is_err(), "accepted {bad:?}");
        }
        let err = cgroup_events("populated 1\nfrozen x\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("cgroup.events line 2"));
    }

    #[test]
    fn pids_well_formed_and_malformed() {
        assert_eq!(pids("12\n7\n").unwrap(), vec![12, 7]);
        assert_eq!(pids("").unwrap(), Vec::<u32>::new());
        for bad in ["x\n", "-1\n", "0\n", "1 2\n", "99999999999\n", " 3\n"] {
            assert!(pids(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn proc_cgroup_hybrid() {
        let text = "9:name=systemd:/\n4:memory:/process_api/f0d1\n1:cpu,cpuacct:/\n0::/a/b\n";
        let parsed = proc_cgroup(text).unwrap();
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].controllers, vec!["name=systemd"]);
        assert_eq!(parsed[1].path, "/process_api/f0d1");
        assert_eq!(parsed[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(parsed[3].id, 0);
        assert!(parsed[3].controllers.is_empty());
        // A path may itself contain ':'.
        assert_eq!(proc_cgroup("0::/a:b\n").unwrap()[0].path, "/a:b");
    }

    #[test]
    fn proc_cgroup_malformed() {
        for bad in ["0:/\n", "x::/\n", "0::relative\n", "garbage\n", "-1::/\n"] {
            assert!(proc_cgroup(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn mountinfo_cgroups() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 /sub /mnt/with\\040space rw master:1 shared:2 - cgroup2 none rw,nsdelegate
";
        let mounts = mountinfo(text).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[1].fs_type, "cgroup");
        assert_eq!(mounts[1].super_options, vec!["rw", "cpu"]);
        assert_eq!(
            mounts[2].mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert_eq!(mounts[3].root, PathBuf::from("/sub"));
        assert_eq!(mounts[3].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(mounts[3].super_options, vec!["rw", "nsdelegate"]);
    }

    #[test]
    fn mountinfo_malformed() {
        for bad in [
            "31 23 0:28 / /sys/fs/cgroup rw,relatime tmpfs tmpfs rw\n",
            "31 23 0:28 / /sys/fs/cgroup rw - cgroup2\n",
            "short line\n",
            "31 23 0:28 / /bad\\04 rw - cgroup2 cgroup2 rw\n",
            "31 23 0:28 / /bad\\999 rw - cgroup2 cgroup2 rw\n",
        ] {
            assert!(mountinfo(bad).is_err(), "accepted {bad:?}");
        }
    }
}
