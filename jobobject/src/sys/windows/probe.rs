//! Facts about this host for `Capabilities::probe`.

use crate::JobObject;

/// How `terminate` kills a whole job here.
pub(crate) fn describe_kill() -> &'static str {
    "TerminateJobObject: every process of the job, in the kernel"
}

/// How a child is put in a job.
pub(crate) fn describe_spawn() -> &'static str {
    "born in the job: PROC_THREAD_ATTRIBUTE_JOB_LIST, else created suspended and assigned"
}

/// The facts.
pub(crate) fn facts(_job: Option<&JobObject>) -> Vec<(String, String)> {
    vec![("system".to_owned(), "Windows job objects".to_owned())]
}
