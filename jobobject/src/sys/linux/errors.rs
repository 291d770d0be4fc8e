//! Errors of a job's controller files, the same for its limits and its statistics.

use std::io;

use super::cgroup::JobCgroups;
use super::cgroup::controllers::Controllers;
use crate::Error;

/// Maps an error of `controller`'s files: a missing file means the controller is not there
/// for this job, which says how to get it.
pub(crate) fn controller(
    cgroups: &JobCgroups,
    controllers: &dyn Controllers,
    controller: &str,
    op: &str,
    err: io::Error,
) -> Error {
    let job = cgroups.name();
    let path = cgroups.path_for(controller);
    if err.kind() == io::ErrorKind::NotFound {
        let fix = controllers.how_to_get(controller, path.parent().unwrap_or(path));
        return Error::Unsupported {
            what: format!("the {controller} controller is not available to job {job:?}: {fix}"),
        };
    }
    super::cgroup::os(job, op, path, err)
}
