//! Trees of cgroup files in a temporary directory, written as the kernel shows them, so that
//! the controller code is tested without root and without cgroups (as youki's libcgroups
//! tests do).

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::super::dir;

/// A directory tree of fixture files, removed when dropped.
pub(crate) struct Tree {
    root: PathBuf,
}

/// The modification time a file is given to tell later whether anything wrote to it.
const AGED: Duration = Duration::from_secs(1);

impl Tree {
    /// A new, empty tree in the temporary directory.
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("jobobject-fixture-{}-{n}", std::process::id());
        let root = std::env::temp_dir().join(name);
        fs::remove_dir_all(&root).ok();
        fs::create_dir_all(&root).unwrap();
        Tree { root }
    }

    /// The path of `relative` in the tree.
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Makes the directory `relative` with `files` (name and contents) in it.
    pub(crate) fn dir(&self, relative: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(&path).unwrap();
        for (name, text) in files {
            fs::write(path.join(name), text).unwrap();
        }
        path
    }

    /// Opens the directory `relative` as the controller code does.
    pub(crate) fn open(&self, relative: &str) -> OwnedFd {
        dir::open_path(&self.path(relative)).unwrap()
    }

    /// Replaces a file's contents (what the kernel would show next).
    pub(crate) fn set(&self, file: &str, text: impl AsRef<[u8]>) {
        fs::write(self.path(file), text).unwrap();
    }

    /// A file's contents.
    pub(crate) fn get(&self, file: &str) -> String {
        fs::read_to_string(self.path(file)).unwrap()
    }

    pub(crate) fn remove(&self, file: &str) {
        fs::remove_file(self.path(file)).unwrap();
    }

    /// What `change` writes to `file`, emptied first: the code writes cgroup files in place,
    /// without truncating them, so afterwards the file holds exactly the value written (of
    /// several, the last one over what is left of longer ones before it).
    pub(crate) fn written<T>(&self, file: &str, change: impl FnOnce() -> T) -> (T, String) {
        self.set(file, "");
        let result = change();
        (result, self.get(file))
    }

    /// Marks a file as unwritten, for [`was_written`](Self::was_written).
    pub(crate) fn age(&self, file: &str) {
        let file = File::options().write(true).open(self.path(file)).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + AGED).unwrap();
    }

    /// Whether something wrote to a file since [`age`](Self::age).
    pub(crate) fn was_written(&self, file: &str) -> bool {
        let modified = fs::metadata(self.path(file)).unwrap().modified().unwrap();
        modified != SystemTime::UNIX_EPOCH + AGED
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.root).ok();
    }
}

/// Contents no kernel writes, for the files of every getter: each must be an error or a value,
/// and never a panic.
pub(crate) const GARBAGE: &[&[u8]] = &[
    b"",
    b"\n",
    b" \n",
    b"garbage\n",
    b"-1\n",
    b"-9223372036854775809\n",
    b"18446744073709551616\n",
    b"max max\n",
    b"= == =x x=\n",
    b"8:0\n",
    b"8: rbps=1\n",
    b":0 Read 1\n",
    b"8:0 Read\n",
    b"8:0 rbytes=\n",
    b"8:0 rbytes=-1 wbytes=x\n",
    b"Total\n",
    b"user_usec\nsystem_usec x\n",
    b"anon\npgfault -1\ntotal_rss\n",
    b"\xff\xfe\n",
    b"\0\0\0",
    b"1\n2\n3\n4\n5\n",
];
