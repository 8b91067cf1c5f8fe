//! Reading draft files: `*.txt` (one draft per line, blank lines skipped) and `*.csv`
//! (RFC 4180 `text,at` rows, read with the csv crate), or folders of them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chrono_tz::Tz;

use super::time::parse_time;
use super::{Draft, Problem};

/// Reads drafts from files and folders: a folder contributes its `*.txt` and `*.csv` files in
/// name order; a `.csv` file has `text,at` rows (a header row naming `text` is optional; an
/// empty `at` takes the next slot); any other file has one draft per line (blank lines are
/// skipped). Rows whose `at` does not parse are problems.
///
/// # Errors
/// When a file or folder cannot be read, or no draft file is found.
pub fn read_drafts(paths: &[PathBuf], tz: Tz) -> anyhow::Result<(Vec<Draft>, Vec<Problem>)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the folder {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "csv"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no draft files (*.txt, *.csv) in {paths:?}");
    }
    let mut drafts = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the drafts file {}", file.display()))?;
        if file.extension().and_then(|e| e.to_str()) == Some("csv") {
            read_csv(&file, &text, tz, &mut drafts, &mut problems);
        } else {
            for (index, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                drafts.push(Draft {
                    text: line.trim().to_owned(),
                    at: None,
                    source: format!("{}:{}", file.display(), index + 1),
                });
            }
        }
    }
    Ok((drafts, problems))
}

fn read_csv(file: &Path, text: &str, tz: Tz, drafts: &mut Vec<Draft>, problems: &mut Vec<Problem>) {
    let (rows, error) = csv_rows(text);
    if let Some((line, reason)) = error {
        problems.push(Problem {
            source: format!("{}:{line}", file.display()),
            reason,
        });
    }
    let mut text_column = 0;
    let mut at_column = Some(1);
    let mut first = true;
    for (line, fields) in rows {
        let source = format!("{}:{line}", file.display());
        if first {
            first = false;
            if fields.iter().any(|f| f.trim().eq_ignore_ascii_case("text")) {
                let find = |name: &str| {
                    fields
                        .iter()
                        .position(|f| f.trim().eq_ignore_ascii_case(name))
                };
                text_column = find("text").unwrap_or(0);
                at_column = find("at");
                continue;
            }
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let text = fields
            .get(text_column)
            .map(|t| t.trim())
            .unwrap_or_default();
        let at = match at_column.and_then(|c| fields.get(c)).map(|a| a.trim()) {
            Some(value) if !value.is_empty() => match parse_time(value, tz) {
                Ok(at) => Some(at),
                Err(reason) => {
                    problems.push(Problem { source, reason });
                    continue;
                }
            },
            _ => None,
        };
        drafts.push(Draft {
            text: text.to_owned(),
            at,
            source,
        });
    }
}

/// A CSV row: the line it starts on, and its fields.
type CsvRow = (usize, Vec<String>);

/// RFC 4180 CSV, read with the csv crate: fields separated by commas, optionally in double
/// quotes (a quoted field may hold commas, newlines and `""` for a quote); rows may have any
/// number of fields, and empty lines are skipped. Returns each row with the line it starts on,
/// and the line and reason where the reader gave up, if it did (the text is UTF-8 and rows may
/// differ in length, so it has next to nothing to refuse).
fn csv_rows(text: &str) -> (Vec<CsvRow>, Option<(usize, String)>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(1, |p| p.line() as usize);
                rows.push((line, record.iter().map(str::to_owned).collect()));
            }
            Err(error) => {
                let line = error.position().map_or(1, |p| p.line() as usize);
                return (rows, Some((line, format!("not CSV: {error}"))));
            }
        }
    }
    (rows, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_csv(text: &str) -> Vec<CsvRow> {
        let (rows, error) = csv_rows(text);
        assert_eq!(error, None);
        rows
    }

    #[test]
    fn csv_rows_quotes_and_lines() {
        let rows = parse_csv("text,at\n\"a, \"\"quoted\"\"\ntext\",2026-03-01T00:00:00Z\nplain,\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].0, 2);
        assert_eq!(rows[1].1[0], "a, \"quoted\"\ntext");
        assert_eq!(rows[2].0, 4);
        assert_eq!(rows[2].1, vec!["plain".to_owned(), String::new()]);
    }
}
