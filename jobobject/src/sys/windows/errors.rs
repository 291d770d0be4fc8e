//! Turning Win32 failures into the crate's errors.

use std::io;

use windows_sys::Win32::Foundation::{
    ERROR_CALL_NOT_IMPLEMENTED, ERROR_INVALID_FUNCTION, ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED,
};

use super::handle::wine_version;
use crate::Error;

/// An OS failure of `op` on job `job` (its label: `"name"` or `(anonymous)`).
pub(super) fn os(job: &str, op: impl Into<String>, source: io::Error) -> Error {
    Error::Os {
        job: job.to_owned(),
        op: op.into(),
        path: None,
        source,
    }
}

/// The thread's last error, as the failure of `op` on `job`.
pub(super) fn last(job: &str, op: impl Into<String>) -> Error {
    os(job, op, io::Error::last_os_error())
}

/// The failure of `op`, where the system may simply not implement it: "not supported" and
/// "not implemented" codes, and under Wine the "invalid parameter" with which Wine 8 refuses
/// the information classes it lacks, become [`Error::Unsupported`]; anything else stays an
/// [`Error::Os`].
pub(super) fn maybe_unsupported(job: &str, op: &str, source: io::Error) -> Error {
    let code = source.raw_os_error().map(|code| code as u32);
    let unimplemented = matches!(
        code,
        Some(ERROR_INVALID_FUNCTION | ERROR_NOT_SUPPORTED | ERROR_CALL_NOT_IMPLEMENTED)
    );
    let wine_refuses = wine_version().is_some() && code == Some(ERROR_INVALID_PARAMETER);
    if unimplemented || wine_refuses {
        return Error::Unsupported {
            what: format!("{op} on job {job}: {} ({source})", lacks("implement it")),
        };
    }
    os(job, op, source)
}

/// A limit that the system accepted but that reads back as not applied: Wine 8 stores none of
/// the extended limits.
pub(super) fn not_applied(job: &str, what: &str) -> Error {
    Error::Unsupported {
        what: format!(
            "{what} on job {job}: {} (it accepts the limit, which then reads back unset)",
            lacks("apply it")
        ),
    }
}

/// A function that this system's kernel32 does not export.
pub(super) fn missing_function(job: &str, function: &str) -> Error {
    Error::Unsupported {
        what: format!(
            "{function} on job {job}: {} (Windows 10 and later export it)",
            lacks("export it")
        ),
    }
}

/// "Wine VERSION does not WHAT" or "this Windows does not WHAT".
pub(super) fn lacks(what: &str) -> String {
    match wine_version() {
        Some(version) => format!("Wine {version} does not {what}"),
        None => format!("this Windows does not {what}"),
    }
}
