//! How a job is created or opened.

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
    ///
    /// On Windows a job reports to one completion port at a time, so one process at a time
    /// gets its notifications: in another, create or open fails with
    /// [`Error::Busy`](crate::Error::Busy). The handles of one process share its port, and
    /// its last one lets the job go (Windows 8 and later). Where the system cannot let it go
    /// (Wine), the job stays with this process's port: a handle opened later watches it again
    /// if another of this process's handles held it meanwhile, and is refused otherwise, as
    /// it may be another job of the same name.
    pub notifications: bool,
    /// Windows: use `NtCreateJobObject` / `NtOpenJobObject`. Ignored on Linux.
    pub use_nt_variant: bool,
    /// Turn on I/O accounting at creation, as
    /// [`set_io_tracking`](crate::JobObject::set_io_tracking) does.
    pub enable_io_tracking: bool,
    /// Linux: where the job's cgroups live (see
    /// [`OptionsExt::cgroup_parent`](crate::os::linux::OptionsExt::cgroup_parent)).
    #[cfg(target_os = "linux")]
    pub(crate) cgroup_parent: crate::os::linux::CgroupParent,
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
}
