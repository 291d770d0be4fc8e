//! Writing results: aligned tables for people, JSON for scripts, and a quiet exit when the
//! reader of stdout has gone (`jobctl list | head -1`).
//!
//! Text that came from a job or a process (job names, command lines, paths, messages of the
//! system that quote them) may hold terminal control sequences: a process can retitle or
//! clear the terminal of whoever runs `jobctl ps`. Human output passes such text through
//! [`escape`]; JSON goes through [`json`] / [`json_line`], which escape the same characters as
//! `\uXXXX` (serde_json alone writes DEL and C1 controls raw).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::Formatter;

/// Writes `text` to stdout; a closed pipe ends jobctl quietly, as it does for other tools.
pub fn print(text: &str) {
    let mut stdout = io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(err) = result {
        if err.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprint(&format!("jobctl: cannot write the output: {err}\n"));
        std::process::exit(crate::error::status::FAILURE);
    }
}

/// Writes `text` to stderr. A failure is ignored: unlike `eprint!`, which panics, this
/// cannot stop `jobctl run` from cleaning up its job when stderr has gone.
pub fn eprint(text: &str) {
    let mut stderr = io::stderr().lock();
    stderr.write_all(text.as_bytes()).ok();
    stderr.flush().ok();
}

/// Writes `jobctl: MESSAGE` on one line of stderr, with `message` escaped: it may quote
/// names and paths.
pub fn note(message: &str) {
    eprint(&format!("jobctl: {}\n", one_line(message)));
}

/// An error under `--json`: `{"error": MESSAGE, "status": STATUS}`, one line on stderr, so
/// that a script reads it as it reads the documents (which go to stdout).
pub fn json_error(message: &str, status: i32) {
    eprint(&json_line(
        &serde_json::json!({ "error": message.replace('\n', " "), "status": status }),
    ));
}

/// `message` on one line (a message from the system may carry a newline), escaped.
pub fn one_line(message: &str) -> String {
    escape(&message.replace('\n', " ")).into_owned()
}

/// Writes one JSON value on one line.
pub fn json(value: &Value) {
    print(&json_line(value));
}

/// One JSON value on one line, with a newline, every control and bidi character escaped.
pub fn json_line(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    // Writing a `Value` into memory cannot fail: its keys are strings, its numbers finite.
    if value.serialize(&mut serializer).is_err() {
        return "null\n".to_owned();
    }
    out.push(b'\n');
    // The serializer writes UTF-8; the fallback is for the impossible.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether printing `c` raw could drive a terminal or reorder what it shows: the C0 and C1
/// controls and DEL (ESC, BEL, CR, CSI...), the Unicode bidi embeddings, overrides, isolates
/// and marks, and the line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` safe to print on a terminal: each unsafe character (see [`is_unsafe`]) as visible
/// text, `\t`, `\n` and `\r`, other C0 controls and DEL as `\x1b`, the rest as `\u{202e}`.
/// Backslashes stay as they are (paths and command lines are full of them): the escaping is
/// for safety, and the JSON output is the exact form.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// serde_json's compact output, with DEL, the C1 controls and the bidi characters escaped as
/// `\uXXXX` too (serde_json escapes only C0, `"` and `\\`). Still valid JSON, and the same
/// strings once parsed.
struct TerminalSafe;

impl Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every unsafe character is in the Basic Multilingual Plane: one \u escape.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Formats rows under headers, columns padded to their widest cell; the columns whose index
/// is in `right` are aligned right (numbers).
pub fn table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(cell.chars().count());
            if right.contains(&i) {
                text += &" ".repeat(pad);
                text += cell;
            } else {
                text += cell;
                if i != last {
                    text += &" ".repeat(pad);
                }
            }
            if i != last {
                text += "  ";
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text += &line(row.iter().map(String::as_str).collect());
    }
    text
}

/// Formats (key, value) pairs as two aligned columns, without headers.
pub fn pairs(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:width$}  {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned() {
        let rows = vec![
            vec!["build".to_owned(), "3".to_owned()],
            vec!["x".to_owned(), "12".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "PROCS"], &rows, &[1]),
            "NAME   PROCS\nbuild      3\nx         12\n"
        );
        let pairs_rows: Vec<(String, String)> =
            rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
        assert_eq!(pairs(&pairs_rows), "build  3\nx      12\n");
        // A row longer than the headers is not a panic.
        let long = vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]];
        assert_eq!(table(&["X"], &long, &[]), "X\na  b  c\n");
    }

    #[test]
    fn escape_makes_controls_visible() {
        assert_eq!(
            escape("plain text, ünïcödé, C:\\dir"),
            "plain text, ünïcödé, C:\\dir"
        );
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("\x1b]0;pwned\x07\x1b[2J"),
            "\\x1b]0;pwned\\x07\\x1b[2J"
        );
        assert_eq!(escape("a\tb\nc\rd\0e\x7f"), "a\\tb\\nc\\rd\\x00e\\x7f");
        // C1: CSI (U+009B) starts a sequence on terminals that take 8-bit controls.
        assert_eq!(escape("\u{9b}2J\u{85}"), "\\u{9b}2J\\u{85}");
        // Bidi: an override that would show "exe.txt" as "txt.exe".
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\u{200f}"),
            "a\\u{202e}b\\u{2066}c\\u{200f}"
        );
        assert_eq!(
            escape("\u{2028}\u{2029}\u{61c}"),
            "\\u{2028}\\u{2029}\\u{61c}"
        );
    }

    #[test]
    fn escaped_text_has_nothing_unsafe() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let escaped = escape(&all);
        assert!(!escaped.chars().any(is_unsafe), "{escaped:?}");
    }

    #[test]
    fn one_line_is_one_escaped_line() {
        assert_eq!(one_line("no job\nnamed \x1b[2J"), "no job named \\x1b[2J");
    }

    #[test]
    fn json_escapes_del_c1_and_bidi_and_stays_json() {
        let text = "\x1b]0;pwned\x07\x1b[2J \x7f \u{9b} \u{85} \u{202e} \u{2069} ünï \"q\" \\";
        let value = serde_json::json!({ "command": [text], "k\u{9b}": 1 });
        let line = json_line(&value);
        assert!(line.ends_with('\n'));
        assert_eq!(line.lines().count(), 1);
        for c in line.trim_end().chars() {
            assert!(!is_unsafe(c), "{c:?} raw in {line}");
        }
        assert!(line.contains("\\u001b]0;pwned\\u0007\\u001b[2J"), "{line}");
        assert!(
            line.contains("\\u007f \\u009b \\u0085 \\u202e \\u2069 ünï"),
            "{line}"
        );
        assert!(line.contains("\"k\\u009b\""), "{line}");
        // The same value once parsed.
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn json_matches_serde_json_where_nothing_needs_escaping() {
        let value =
            serde_json::json!({ "a": [1, 2.5, null, true], "b": "ünï \"q\" \\ \n", "c": {} });
        assert_eq!(json_line(&value), format!("{value}\n"));
    }
}
