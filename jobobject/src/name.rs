//! The rules every platform applies to a job's name; each backend adds its own on top.

use crate::Error;

/// The longest name, in bytes (Linux's NAME_MAX).
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// Checks the rules a name follows everywhere: one path component of 1 to 255 bytes, without
/// NUL, control characters or bidirectional-text controls (a name is printed to terminals, and
/// these could rewrite or disguise what an administrator sees), not starting with `.`. A
/// backslash is allowed: Windows uses it for its namespaces (`Global\NAME`, `Local\NAME`).
pub(crate) fn check(name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        "may not be empty".to_owned()
    } else if name.len() > MAX_NAME_BYTES {
        format!("may be at most {MAX_NAME_BYTES} bytes long")
    } else if name.contains('/') {
        "may not contain `/`".to_owned()
    } else if let Some(c) = name.chars().find(|&c| is_control(c)) {
        format!("may not contain control characters (found {:?})", c)
    } else if name.starts_with('.') {
        "may not start with `.`".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "a job name {problem} (got {name:?})"
    )))
}

/// C0, DEL and C1 controls (NUL, newline and ESC among them), and the Unicode controls that
/// reorder displayed text (U+202A-U+202E, U+2066-U+2069).
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_rules() {
        for good in ["a", "build-42", "x.y", &"n".repeat(255), "ünïcode", "a b"] {
            assert!(check(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            ".",
            ".hidden",
            "nul\0",
            "new\nline",
            "esc\x1b]0;title\x07",
            "cr\r",
            "del\x7f",
            "c1\u{9b}",
            "bidi\u{202e}",
            "isolate\u{2066}",
            &"n".repeat(256),
        ] {
            let err = check(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{bad:?}");
        }
    }

    // Any string: no panic, and every name accepted follows the rules.
    #[cfg(target_os = "linux")]
    proptest::proptest! {
        #[test]
        fn accepted_names_follow_the_rules(name in ".{0,300}") {
            if check(&name).is_ok() {
                proptest::prop_assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
                proptest::prop_assert!(!name.contains('/') && !name.starts_with('.'));
                proptest::prop_assert!(!name.chars().any(is_control));
            }
        }
    }
}
