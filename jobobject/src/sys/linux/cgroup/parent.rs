//! Where jobs live: a job's parent directory in each hierarchy, from [`CgroupParent`] and the
//! environment, and the list of jobs below it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{
    Hierarchy, Layout, Version, check_name, creation_error, dir, layout, os, parse, v1, v2,
};
use crate::Error;
use crate::os::linux::{CGROUP_PARENT_ENV, CgroupParent};

/// The directory made at the top of each hierarchy for [`CgroupParent::Shared`].
const SHARED_PARENT: &str = "jobobject";

/// A job's parent directory in one hierarchy: its path, and the directory opened unless the
/// hierarchy is used on demand (see [`Hierarchy::on_demand`]).
#[derive(Debug)]
pub(super) struct Parent {
    pub(super) path: PathBuf,
    pub(super) fd: Option<Arc<OwnedFd>>,
}

/// A job's parents, one per hierarchy of the layout, in its order.
pub(super) type Parents = Arc<[Parent]>;

/// The parents of jobs, resolved and opened once per process and kept: a job is made, found
/// and removed through these descriptors, one per hierarchy and parent (not per job), and
/// without reading `/proc/self/cgroup` again for [`CgroupParent::Own`]. A parent that has
/// gone since (its directory removed, or no longer usable by this process) is resolved
/// again: see [`fresh_parents`].
pub(super) fn parents(layout: &'static Layout, parent: &CgroupParent) -> Result<Parents, Error> {
    let parent = resolve_default(parent)?;
    let mut cache = PARENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, parents)) = cache.iter().find(|(p, _)| *p == parent) {
        return Ok(Arc::clone(parents));
    }
    let parents: Parents = open_parents(layout, &parent)?.into();
    cache.push((parent, Arc::clone(&parents)));
    Ok(parents)
}

/// Forgets the cached parents for `parent` and resolves them again.
pub(super) fn fresh_parents(
    layout: &'static Layout,
    parent: &CgroupParent,
) -> Result<Parents, Error> {
    let resolved = resolve_default(parent)?;
    PARENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(p, _)| *p != resolved);
    parents(layout, parent)
}

static PARENTS: Mutex<Vec<(CgroupParent, Parents)>> = Mutex::new(Vec::new());

/// The names of the jobs below `parent`: the directories of its first hierarchy (the v2 one
/// where there is one) that look like jobs.
pub(crate) fn list(parent: &CgroupParent) -> Result<Vec<String>, Error> {
    let layout = layout::get()?;
    let parents = parents(layout, parent)?;
    let Some((path, fd)) = parents.iter().find_map(|p| Some((&p.path, p.fd.as_ref()?))) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = dir::subdirectories(fd.as_fd())
        .map_err(|e| os("(parent)", "list", path, e))?
        .into_iter()
        .filter(|name| check_name(name).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The job's parent directory in every hierarchy of the layout, in its order: opened, except
/// in the hierarchies used on demand, which [`open_on_demand`] opens when needed.
fn open_parents(layout: &'static Layout, parent: &CgroupParent) -> Result<Vec<Parent>, Error> {
    let parent = resolve_default(parent)?;
    let own = match parent {
        CgroupParent::Own => Some(own_cgroups()?),
        _ => None,
    };
    layout
        .hierarchies
        .iter()
        .map(|hierarchy| {
            let path = match &parent {
                CgroupParent::Own => own_path(hierarchy, own.as_deref().unwrap_or_default())?,
                CgroupParent::Path(relative) => hierarchy
                    .mount_point
                    .join(layout::check_relative(relative)?),
                _ if hierarchy.on_demand => hierarchy.mount_point.join(SHARED_PARENT),
                _ => {
                    let (path, fd) = open_shared_parent(hierarchy)?;
                    let fd = Some(Arc::new(fd));
                    return Ok(Parent { path, fd });
                }
            };
            let fd = match hierarchy.on_demand {
                true => None,
                false => Some(Arc::new(open_existing(&path)?)),
            };
            Ok(Parent { path, fd })
        })
        .collect()
}

/// Opens a job's parent in a hierarchy used on demand, `path` as [`open_parents`] gave it
/// (making the shared parent there on first use).
pub(super) fn open_on_demand(hierarchy: &Hierarchy, path: &Path) -> Result<OwnedFd, Error> {
    if path == hierarchy.mount_point.join(SHARED_PARENT) {
        return open_shared_parent(hierarchy).map(|(_, fd)| fd);
    }
    open_existing(path)
}

fn open_existing(path: &Path) -> Result<OwnedFd, Error> {
    dir::open_path(path).map_err(|err| match err.raw_os_error() {
        Some(libc::ENOENT) => Error::ParentNotFound {
            path: path.to_owned(),
        },
        _ => os("(parent)", "open", path, err),
    })
}

/// Turns [`CgroupParent::Default`] into what the environment says.
fn resolve_default(parent: &CgroupParent) -> Result<CgroupParent, Error> {
    if *parent != CgroupParent::Default {
        return Ok(parent.clone());
    }
    Ok(match std::env::var_os(CGROUP_PARENT_ENV) {
        None => CgroupParent::Shared,
        Some(value) if value.is_empty() => CgroupParent::Shared,
        Some(value) if value == "self" => CgroupParent::Own,
        Some(value) => CgroupParent::Path(PathBuf::from(value)),
    })
}

/// `/jobobject` at the top of the hierarchy, made on first use.
fn open_shared_parent(hierarchy: &Hierarchy) -> Result<(PathBuf, OwnedFd), Error> {
    let top_path = &hierarchy.mount_point;
    let top = dir::open_path(top_path).map_err(|e| os("(parent)", "open", top_path, e))?;
    let path = top_path.join(SHARED_PARENT);
    let made = match dir::make_child(top.as_fd(), SHARED_PARENT) {
        Ok(()) => true,
        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => false,
        Err(err) => return Err(creation_error("(parent)", &path, err)),
    };
    let fd = dir::open_child(top.as_fd(), SHARED_PARENT)
        .map_err(|e| os("(parent)", "open", &path, e))?;
    if made && hierarchy.has("cpuset") {
        v1::init_cpuset(top.as_fd(), fd.as_fd())
            .map_err(|e| os("(parent)", "init cpuset", &path, e))?;
    }
    if hierarchy.version == Version::V2 {
        v2::enable_controllers(fd.as_fd());
    }
    Ok((path, fd))
}

fn own_cgroups() -> Result<Vec<parse::ProcCgroup>, Error> {
    let path = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(path).map_err(|e| os("(parent)", "read", path, e))?;
    parse::proc_cgroup(&text).map_err(|e| os("(parent)", "parse", path, e.into()))
}

fn own_path(hierarchy: &Hierarchy, own: &[parse::ProcCgroup]) -> Result<PathBuf, Error> {
    hierarchy
        .find(own)
        .and_then(|entry| hierarchy.path_of(&entry.path))
        .ok_or_else(|| Error::Unavailable {
            source: None,
            message: format!(
                "this process's cgroup in the hierarchy at {} is not visible there; \
                 use another cgroup parent",
                hierarchy.mount_point.display()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parent_follows_the_environment() {
        // Only the pure mapping is tested here: the environment of a test process is shared.
        assert_eq!(
            resolve_default(&CgroupParent::Own).unwrap(),
            CgroupParent::Own
        );
        let path = CgroupParent::Path("a/b".into());
        assert_eq!(resolve_default(&path).unwrap(), path);
    }
}
