//! Platform-specific extensions, as in `std::os`.

#[cfg(target_os = "linux")]
pub mod linux;
