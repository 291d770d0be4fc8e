//! What `CreateProcessW` takes as text: the program found as std finds it, the command line
//! quoted as std quotes it (so that `CommandLineToArgvW` and the C runtime give the child its
//! arguments back), and the environment block sorted as Windows wants it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use windows_sys::Win32::System::SystemInformation::{GetSystemDirectoryW, GetWindowsDirectoryW};

use crate::process::EnvChanges;

/// Whether `program` is a batch file, which `cmd.exe` runs with quoting rules of its own.
pub(super) fn is_batch_file(program: &Path) -> bool {
    program
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("bat") || e.eq_ignore_ascii_case("cmd"))
}

/// The program to run, as std looks for it: a name with a path separator is used as it is;
/// a bare name is looked up in the child's `PATH` (when the builder sets one), this
/// executable's directory, the system directory, the Windows directory, then the caller's
/// `PATH`. A name without an extension gets `.exe`.
pub(super) fn resolve(program: &OsStr, env: &EnvChanges) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty program name",
        ));
    }
    let wide: Vec<u16> = program.encode_wide().collect();
    let mut name = PathBuf::from(program);
    if name.extension().is_none() {
        name.as_mut_os_string().push(".exe");
    }
    if wide
        .iter()
        .any(|&c| c == u16::from(b'\\') || c == u16::from(b'/'))
    {
        return Ok(name);
    }
    let child_path = env
        .vars
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("PATH"))
        .and_then(|(_, value)| value.clone());
    let app_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(path) = &child_path {
        dirs.extend(std::env::split_paths(path));
    }
    dirs.extend(app_dir);
    dirs.extend(system_dir(GetSystemDirectoryW));
    dirs.extend(system_dir(GetWindowsDirectoryW));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| io::Error::from_raw_os_error(2)) // ERROR_FILE_NOT_FOUND
}

/// A directory that a `GetSystemDirectoryW`-like call returns.
fn system_dir(get: unsafe extern "system" fn(*mut u16, u32) -> u32) -> Option<PathBuf> {
    let mut buffer = vec![0u16; 260];
    // SAFETY: the buffer holds `len` UTF-16 units; the call writes at most that many.
    let len = unsafe { get(buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    (len > 0 && len < buffer.len()).then(|| PathBuf::from(OsString::from_wide(&buffer[..len])))
}

/// The command line: the program as given, always quoted, then each argument quoted where it
/// needs to be; NUL-terminated. A program or argument holding a NUL, or a program holding a
/// quote, cannot be passed.
pub(super) fn command_line(program: &OsStr, args: &[OsString]) -> io::Result<Vec<u16>> {
    let mut line = Vec::new();
    let program: Vec<u16> = program.encode_wide().collect();
    if program.contains(&u16::from(b'"')) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a program name may not contain a quote",
        ));
    }
    line.push(u16::from(b'"'));
    line.extend_from_slice(&program);
    line.push(u16::from(b'"'));
    for arg in args {
        line.push(u16::from(b' '));
        append_arg(&mut line, &arg.encode_wide().collect::<Vec<u16>>());
    }
    if line.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument contains a NUL",
        ));
    }
    line.push(0);
    Ok(line)
}

/// Appends `arg`, quoted if it is empty or holds a space or tab: backslashes are doubled
/// before a quote (and before the closing quote), and a quote is escaped.
fn append_arg(line: &mut Vec<u16>, arg: &[u16]) {
    let (quote, backslash, space, tab) = (
        u16::from(b'"'),
        u16::from(b'\\'),
        u16::from(b' '),
        u16::from(b'\t'),
    );
    let quoted = arg.is_empty() || arg.contains(&space) || arg.contains(&tab);
    if quoted {
        line.push(quote);
    }
    let mut backslashes = 0;
    for &c in arg {
        if c == backslash {
            backslashes += 1;
        } else {
            if c == quote {
                line.extend(std::iter::repeat_n(backslash, backslashes + 1));
            }
            backslashes = 0;
        }
        line.push(c);
    }
    if quoted {
        line.extend(std::iter::repeat_n(backslash, backslashes));
        line.push(quote);
    }
}

/// The child's environment block (`KEY=VALUE` strings, sorted by key as Windows compares
/// them, ending with an empty one), or `None` to inherit the caller's unchanged.
pub(super) fn environment_block(env: &EnvChanges) -> io::Result<Option<Vec<u16>>> {
    if !env.clear && env.vars.is_empty() {
        return Ok(None);
    }
    // Keys compare without case; the key keeps the spelling it was given last.
    let mut vars: BTreeMap<Vec<u16>, (OsString, OsString)> = BTreeMap::new();
    let upper = |key: &OsStr| -> Vec<u16> {
        key.to_string_lossy()
            .to_uppercase()
            .encode_utf16()
            .collect()
    };
    if !env.clear {
        for (key, value) in std::env::vars_os() {
            vars.insert(upper(&key), (key, value));
        }
    }
    for (key, value) in &env.vars {
        match value {
            Some(value) => {
                vars.insert(upper(key), (key.clone(), value.clone()));
            }
            None => {
                vars.remove(&upper(key));
            }
        }
    }
    let mut block = Vec::new();
    for (key, value) in vars.values() {
        let key: Vec<u16> = key.encode_wide().collect();
        if key.is_empty() || key[1..].contains(&u16::from(b'=')) || key.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an environment variable name is empty or holds '=' or NUL",
            ));
        }
        block.extend(key);
        block.push(u16::from(b'='));
        block.extend(value.encode_wide());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(Some(block))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(arg: &str) -> String {
        let mut line = Vec::new();
        append_arg(&mut line, &arg.encode_utf16().collect::<Vec<u16>>());
        String::from_utf16(&line).unwrap()
    }

    #[test]
    fn arguments_are_quoted_as_the_c_runtime_reads_them() {
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("two words"), "\"two words\"");
        assert_eq!(quoted("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quoted(r"C:\dir\"), r"C:\dir\");
        assert_eq!(quoted(r"C:\my dir\"), r#""C:\my dir\\""#);
        assert_eq!(quoted(r#"a\"b"#), r#"a\\\"b"#);
    }

    #[test]
    fn batch_files_are_recognised() {
        assert!(is_batch_file(Path::new("run.BAT")));
        assert!(is_batch_file(Path::new(r"C:\x\run.cmd")));
        assert!(!is_batch_file(Path::new("run.exe")));
    }

    #[test]
    fn the_environment_block_is_sorted_and_ends_twice() {
        let mut env = EnvChanges {
            clear: true,
            ..EnvChanges::default()
        };
        env.vars.insert("b".into(), Some("2".into()));
        env.vars.insert("A".into(), Some("1".into()));
        let block = environment_block(&env).unwrap().unwrap();
        assert_eq!(String::from_utf16(&block).unwrap(), "A=1\0b=2\0\0");
        env.vars.insert("bad=name".into(), Some("x".into()));
        assert!(environment_block(&env).is_err());
    }
}
