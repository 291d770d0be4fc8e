//! Writing results: aligned tables for people, JSON for scripts, and a quiet exit when the
//! reader of stdout has gone (`jobctl list | head -1`).

use std::io::{self, Write};

use serde_json::Value;

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
        eprintln!("jobctl: cannot write the output: {err}");
        std::process::exit(crate::error::status::FAILURE);
    }
}

/// Writes one JSON value on one line.
pub fn json(value: &Value) {
    print(&format!("{value}\n"));
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
            let pad = widths[i].saturating_sub(cell.chars().count());
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
pub fn pairs(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    rows.iter()
        .map(|r| format!("{:width$}  {}\n", r[0], r[1]))
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
        assert_eq!(pairs(&rows), "build  3\nx      12\n");
    }
}
