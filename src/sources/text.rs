//! Line-oriented lists: one value per line, `#` / `;` / `//` comments, hosts-file lines (`0.0.0.0 name`),
//! and `rank,domain` top-sites CSVs. Used by `allowlist` sources.

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::config::AllowFormat;

/// The value on one line, without comments or a hosts-file address; None for blank and comment lines.
pub fn line_value(line: &str, format: AllowFormat) -> Option<&str> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with("//") {
        return None;
    }
    let line = line.split(" #").next().unwrap_or(line).trim();
    match format {
        AllowFormat::TopSites => {
            let (rank, name) = line.split_once(',')?;
            rank.trim().parse::<u64>().ok()?;
            Some(name.trim())
        }
        AllowFormat::List => {
            let mut parts = line.split_whitespace();
            let first = parts.next()?;
            match parts.next() {
                // hosts-file line: the address is the sink, the name is the value
                Some(name) if matches!(first, "0.0.0.0" | "127.0.0.1" | "::" | "::1") => Some(name),
                _ => Some(first),
            }
        }
    }
}

/// Reads an allowlist file into (raw entry, covers subdomains) pairs; `top` keeps the first N values.
pub fn read_allow(
    path: &Path,
    format: AllowFormat,
    top: Option<usize>,
) -> std::io::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let reader = BufReader::new(std::fs::File::open(path)?);
    for line in reader.lines() {
        let line = line
            .map_err(|e| std::io::Error::new(e.kind(), format!("line {}: {e}", out.len() + 1)))?;
        if let Some(v) = line_value(&line, format) {
            if top.is_some_and(|n| out.len() >= n) {
                break;
            }
            match format {
                AllowFormat::List => out.push((v.to_string(), true)),
                AllowFormat::TopSites => out.push((v.to_string(), false)),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(line_value("  # c", AllowFormat::List), None);
        assert_eq!(line_value("// c", AllowFormat::List), None);
        assert_eq!(
            line_value("0.0.0.0 ads.example.com", AllowFormat::List),
            Some("ads.example.com")
        );
        assert_eq!(
            line_value("example.org # ok", AllowFormat::List),
            Some("example.org")
        );
        assert_eq!(
            line_value("1,google.com", AllowFormat::TopSites),
            Some("google.com")
        );
        assert_eq!(line_value("rank,domain", AllowFormat::TopSites), None);
    }
}
