//! CPU lists in the kernel's notation (`0-1,3`), to and from affinity masks: text helpers for
//! tools that take CPUs on a command line. [`CpuSet`] holds any number of CPUs.

use crate::{CpuSet, Error};

/// Formats an affinity mask (bit `i` = logical CPU `i`) as a CPU list in the kernel's
/// notation, such as `0-1,3`.
///
/// ```
/// assert_eq!(jobobject::cpu_list::format(0b1011), "0-1,3");
/// ```
pub fn format(mask: u64) -> String {
    CpuSet::from_mask(mask).to_string()
}

/// Parses a CPU list such as `0,2-3` (the kernel's notation; blanks around entries allowed)
/// into an affinity mask. An empty list is 0. A malformed entry, a range that runs backwards
/// or a CPU from 64 up (which [`CpuSet`] holds) is [`Error::InvalidArgument`] saying which.
///
/// ```
/// assert_eq!(jobobject::cpu_list::parse("0,2-3").unwrap(), 0b1101);
/// assert!(jobobject::cpu_list::parse("3-1").is_err());
/// ```
pub fn parse(list: &str) -> Result<u64, Error> {
    CpuSet::parse(list)?.mask().ok_or_else(|| {
        Error::invalid(format!(
            "{list:?} is not a CPU list for an affinity mask (CPUs 64 and up do not fit one; a \
             CpuSet holds them): use e.g. 0,2-3"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(format(0b1011), "0-1,3");
        assert_eq!(format(1 << 63), "63");
        assert_eq!(format(0), "");
        assert_eq!(parse("0-1,3\n").unwrap(), 0b1011);
        assert_eq!(parse("1-2, 5").unwrap(), 0b10_0110);
        assert_eq!(parse("").unwrap(), 0);
        for bad in ["x", "3-1", "0-64", "1,,2", "-1", "1-"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for mask in [1, 0b110, u64::MAX, 0x8000_0000_0000_0001] {
            assert_eq!(parse(&format(mask)).unwrap(), mask);
        }
    }

    // Any text: no panic; whatever parses formats back to the same mask.
    #[cfg(target_os = "linux")]
    proptest::proptest! {
        #[test]
        fn cpu_lists_never_panic(text in ".{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn cpu_lists_round_trip(mask: u64) {
            proptest::prop_assert_eq!(parse(&format(mask)).unwrap(), mask);
        }

        #[test]
        fn cpu_list_like_text_never_panics(text in "[0-9, -]{0,30}") {
            if let Ok(mask) = parse(&text) {
                proptest::prop_assert_eq!(parse(&format(mask)).unwrap(), mask);
            }
        }
    }
}
