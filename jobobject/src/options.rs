//! How a job is created or opened.

#[cfg(target_os = "linux")]
use std::path::PathBuf;

/// Settings for [`JobObject::create`](crate::JobObject::create) and
/// [`JobObject::open`](crate::JobObject::open).
///
/// `Options::default()` is the Go package's nil options: an anonymous job, no notifications.
///
/// ```
/// use jobobject::Options;
///
/// let options = Options::new().name("build-42").notifications(true);
/// assert_eq!(options.name.as_deref(), Some("build-42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The job's name. `None` makes an anonymous job, which no other handle can open.
    ///
    /// A name is one path component of at most 255 bytes: not empty, without `/` or NUL,
    /// and not starting with `.` (on Linux also without a newline, which cgroupfs refuses).
    pub name: Option<String>,
    /// Deliver [`Notification`](crate::Notification)s to
    /// [`poll_notification`](crate::JobObject::poll_notification).
    pub notifications: bool,
    /// Windows: use `NtCreateJobObject` / `NtOpenJobObject`. Ignored on Linux.
    pub use_nt_variant: bool,
    /// Turn on I/O accounting at creation, as
    /// [`set_io_tracking`](crate::JobObject::set_io_tracking) does.
    pub enable_io_tracking: bool,
    /// Linux: where the job's cgroups live. See [`CgroupParent`].
    #[cfg(target_os = "linux")]
    pub cgroup_parent: CgroupParent,
    /// Linux: open as an observer (see
    /// [`OptionsExt::observer`](crate::os::linux::OptionsExt::observer)).
    #[cfg(target_os = "linux")]
    pub(crate) observer: bool,
}

impl Options {
    /// The default options: an anonymous job without notifications.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`name`](Self::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets [`notifications`](Self::notifications).
    pub fn notifications(mut self, enabled: bool) -> Self {
        self.notifications = enabled;
        self
    }

    /// Sets [`use_nt_variant`](Self::use_nt_variant).
    pub fn use_nt_variant(mut self, enabled: bool) -> Self {
        self.use_nt_variant = enabled;
        self
    }

    /// Sets [`enable_io_tracking`](Self::enable_io_tracking).
    pub fn enable_io_tracking(mut self, enabled: bool) -> Self {
        self.enable_io_tracking = enabled;
        self
    }

    /// Sets [`cgroup_parent`](Self::cgroup_parent).
    #[cfg(target_os = "linux")]
    pub fn cgroup_parent(mut self, parent: CgroupParent) -> Self {
        self.cgroup_parent = parent;
        self
    }
}

/// Linux: the cgroup below which a job's directories are made (one per hierarchy).
///
/// A job named `NAME` is the directory `PARENT/NAME` in every cgroup hierarchy the library
/// uses. Two processes see the same job when they resolve the same parent.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupParent {
    /// The environment decides: `JOBOBJECT_CGROUP_PARENT=self` means [`Own`](Self::Own),
    /// `JOBOBJECT_CGROUP_PARENT=PATH` means [`Path`](Self::Path), and unset means
    /// [`Shared`](Self::Shared).
    #[default]
    Default,
    /// The well-known place shared by every process on the host: `/jobobject` at the top of
    /// each hierarchy, made on first use.
    Shared,
    /// Below the calling process's own cgroup, in each hierarchy.
    Own,
    /// This path, relative to the root of each hierarchy (for example `ci/runner-3`). It must
    /// exist, and may not contain `..`.
    Path(PathBuf),
}

/// The environment variable that changes [`CgroupParent::Default`].
#[cfg(target_os = "linux")]
pub const CGROUP_PARENT_ENV: &str = "JOBOBJECT_CGROUP_PARENT";
