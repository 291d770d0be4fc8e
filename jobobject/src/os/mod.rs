//! Platform-specific extensions, as in `std::os`.

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(windows)]
pub mod windows;
