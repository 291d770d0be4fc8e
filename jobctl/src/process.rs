//! What `assign` checks before it moves a process into a job: whether it is the first process
//! of the system (pid 1) or one of jobctl's own ancestors, such as the shell that ran it.
//! Moving either puts far more than one command under the job's limits, and a later
//! `jobctl kill` would kill the system, or the user's session.
//!
//! Linux reads the parent chain from `/proc/PID/stat`. Elsewhere only jobctl itself is known.

/// Why moving process `pid` into a job is refused without `--force`; `None` when it is not.
pub fn danger(pid: u32) -> Option<String> {
    if pid == std::process::id() {
        return Some(format!("process {pid} is jobctl itself"));
    }
    imp::danger(pid)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs;

    /// How far up the parent chain to look: deeper process trees are not made by hand, and
    /// the walk must end even if a recycled pid made the chain loop.
    const MAX_DEPTH: usize = 4096;

    /// The fields of `/proc/PID/stat` used here.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Stat {
        /// The command name, as the kernel keeps it (at most 15 bytes; any byte but NUL).
        pub comm: String,
        pub ppid: u32,
    }

    /// Parses `/proc/PID/stat`: `PID (COMM) STATE PPID ...`. The name may hold spaces, `(`,
    /// `)` and newlines, so it runs from the first `(` to the last `)` of the text; the
    /// fields after it are plain numbers and letters.
    pub fn parse_stat(raw: &[u8]) -> Option<Stat> {
        let open = raw.iter().position(|&b| b == b'(')?;
        let close = raw.iter().rposition(|&b| b == b')')?;
        let comm = raw.get(open + 1..close)?;
        let rest = std::str::from_utf8(raw.get(close + 1..)?).ok()?;
        let mut fields = rest.split_ascii_whitespace();
        let _state = fields.next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Stat {
            comm: String::from_utf8_lossy(comm).into_owned(),
            ppid,
        })
    }

    fn stat(pid: u32) -> Option<Stat> {
        parse_stat(&fs::read(format!("/proc/{pid}/stat")).ok()?)
    }

    /// jobctl's ancestors, nearest first, as far as they can be read: its parent, then that
    /// one's, up to the first process of its pid namespace (whose parent is 0).
    pub fn ancestors() -> Vec<(u32, String)> {
        let mut chain = Vec::new();
        let mut pid = std::os::unix::process::parent_id();
        while pid != 0 && chain.len() < MAX_DEPTH {
            let Some(stat) = stat(pid) else { break };
            chain.push((pid, stat.comm));
            pid = stat.ppid;
        }
        chain
    }

    pub fn danger(pid: u32) -> Option<String> {
        let name = |pid: u32| stat(pid).map_or_else(|| "?".to_owned(), |s| s.comm);
        if pid == 1 {
            return Some(format!(
                "process 1 ({}) is the first process of the system: every process would come \
                 under the job's limits, and `jobctl kill` would kill the system",
                name(1)
            ));
        }
        let (_, comm) = ancestors().into_iter().find(|(p, _)| *p == pid)?;
        Some(format!(
            "process {pid} ({comm}) is an ancestor of jobctl (the shell that ran it, or one of \
             its parents): the session would come under the job's limits, and `jobctl kill` \
             would kill it"
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_with_a_plain_name() {
            let raw = b"4242 (sleep) S 4241 4242 4200 34816 4242 4194304 100 0 0 0 0 0\n";
            let stat = parse_stat(raw).unwrap();
            assert_eq!(stat.comm, "sleep");
            assert_eq!(stat.ppid, 4241);
        }

        #[test]
        fn stat_with_parentheses_spaces_and_newlines_in_the_name() {
            // A process may name itself anything: "a) S 1 (" tries to fake the fields.
            let raw = b"77 (a) S 1 (x\ny) R 76 77 1 0 -1\n";
            let stat = parse_stat(raw).unwrap();
            assert_eq!(stat.comm, "a) S 1 (x\ny");
            assert_eq!(stat.ppid, 76);
            let raw = b"5 ()) Z 0 0 0";
            assert_eq!(parse_stat(raw).unwrap().comm, ")");
            assert_eq!(parse_stat(raw).unwrap().ppid, 0);
            let raw = b"6 (\xff\xfe) S 3 6";
            assert_eq!(parse_stat(raw).unwrap().ppid, 3);
        }

        #[test]
        fn malformed_stat_is_none() {
            for raw in [
                &b""[..],
                b"1",
                b"1 (x",
                b"1 x) S 2",
                b") 1 (",
                b"1 (x) S",
                b"1 (x) S -3",
                b"1 (x) S 99999999999",
                b"1 (x)",
            ] {
                assert_eq!(parse_stat(raw), None, "{:?}", String::from_utf8_lossy(raw));
            }
        }

        #[test]
        fn own_stat_and_ancestors() {
            let own = stat(std::process::id()).unwrap();
            assert_eq!(own.ppid, std::os::unix::process::parent_id());
            let chain = ancestors();
            assert_eq!(chain.first().map(|a| a.0), Some(own.ppid));
            // The walk ends at the first process of the namespace.
            let (last, _) = chain.last().unwrap();
            assert_eq!(stat(*last).unwrap().ppid, 0);
        }

        #[test]
        fn pid_1_and_the_parent_are_dangerous() {
            assert!(danger(1).unwrap().contains("first process"));
            let parent = std::os::unix::process::parent_id();
            if parent != 1 {
                assert!(danger(parent).unwrap().contains("ancestor of jobctl"));
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn danger(_pid: u32) -> Option<String> {
        None
    }
}
