//! Line-oriented feeds: one value per line (`#` / `;` / `//` comments, hosts-file lines `0.0.0.0 name`),
//! `rank,domain` top-sites CSVs, and CSVs with mapped columns. Used by `text`, `csv` and `allowlist` sources.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::threatfox::{
    next_line, next_record, parse_time, split_csv_line, BadRow, Capped, ParseError, Report, Row,
};
use crate::config::{AllowFormat, SourceConfig};

/// The values on one line of a list: the line's one value, or every name of a hosts-file line
/// (`0.0.0.0 a.example b.example`; the address in front is where the names point, not an indicator).
pub fn line_values(line: &str) -> Vec<&str> {
    let Some(line) = line_value(line, AllowFormat::List).map(|_| line) else {
        return Vec::new();
    };
    let line = line.trim_start_matches('\u{feff}').trim();
    let line = line.split(" #").next().unwrap_or(line).trim();
    let mut parts = line.split_whitespace();
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = parts.collect();
    if !names.is_empty() && first.parse::<std::net::IpAddr>().is_ok() {
        names
    } else {
        vec![first]
    }
}

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
                // hosts-file line: the address is where the name points, the name is the value
                Some(name) if first.parse::<std::net::IpAddr>().is_ok() => Some(name),
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

// ------------------------------------------------------------------------------- text and csv feeds

/// A report from a list source: the value, and what the source config says of all its values.
fn report(source: &SourceConfig, value: &str, id: Option<String>) -> Report {
    let value = value.trim().to_string();
    Report {
        report_id: id,
        ioc_type: source
            .ioc_type
            .clone()
            .unwrap_or_else(|| crate::normalise::guess_type(&value).to_string()),
        value,
        malware_printable: source.family.clone(),
        threat_type: source.threat_type.clone(),
        confidence: Some(source.confidence.unwrap_or(75)),
        ..Default::default()
    }
}

/// Lines of a file, each at most `MAX_LINE` bytes, valid UTF-8, at most `max_bytes` in all.
/// `records`: CSV records (a quoted field may span lines) instead of plain lines.
fn lines(
    path: &Path,
    max_bytes: u64,
    records: bool,
    mut f: impl FnMut(usize, &str) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut r = BufReader::new(Capped::new(std::fs::File::open(path)?, max_bytes));
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        if records {
            match next_record(&mut r, &mut buf, &mut n).map_err(ParseError::Content)? {
                Some(rec) => f(n, &rec)?,
                None => return Ok(()),
            }
        } else {
            n += 1;
            match next_line(&mut r, &mut buf, n).map_err(ParseError::Content)? {
                Some(line) => f(n, line.trim_start_matches('\u{feff}'))?,
                None => return Ok(()),
            }
        }
    }
}

/// Reads a `text` source: one indicator per line, comments and hosts-file lines understood.
pub fn read_indicators(
    path: &Path,
    source: &SourceConfig,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut content = false;
    lines(path, source.max_bytes, false, |_, line| {
        // An error page served with 200: its first non-blank line is markup. Its text lines must never
        // become indicators.
        if !content && !line.trim().is_empty() {
            content = true;
            if line.trim_start().starts_with('<') {
                return Err(ParseError::Content("got an HTML page, not a list".into()));
            }
        }
        for v in line_values(line) {
            f(Ok(report(source, v, None))).map_err(ParseError::Callback)?;
        }
        Ok(())
    })
}

/// Reads a `csv` source: the header is the first line that is not a comment, or a commented line that
/// names the `value` column (URLhaus style `# id,dateadded,url,…`); `columns` maps the rest.
pub fn read_mapped_csv(
    path: &Path,
    source: &SourceConfig,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let cols = source.columns.clone().unwrap_or_default();
    let mut header: Option<std::collections::HashMap<String, usize>> = None;
    let mut width = 0;
    let mut last_comment = String::new();
    let mut content = false;
    lines(path, source.max_bytes, true, |n, line| {
        if line.trim().is_empty() {
            return Ok(());
        }
        if !std::mem::replace(&mut content, true) && line.trim_start().starts_with('<') {
            return Err(ParseError::Content("got an HTML page, not a CSV".into()));
        }
        if let Some(c) = line.strip_prefix('#') {
            last_comment = c.trim().to_string();
            return Ok(());
        }
        let fields = match split_csv_line(line) {
            Ok(x) => x,
            Err(e) => {
                return f(Err(BadRow {
                    reason: "bad-row",
                    raw: format!("line {n}: {e}: {line}"),
                }))
                .map_err(ParseError::Callback)
            }
        };
        let Some(h) = &header else {
            let parse = |l: &str| -> Option<Vec<String>> {
                let names: Vec<String> = split_csv_line(l)
                    .ok()?
                    .into_iter()
                    .map(|x| x.trim().to_string())
                    .collect();
                names.contains(&cols.value).then_some(names)
            };
            let (names, this_line_is_header) = match parse(&last_comment) {
                Some(names) => (names, false),
                None => match parse(line) {
                    Some(names) => (names, true),
                    None => {
                        return Err(ParseError::Content(format!(
                            "line {n}: no header naming the value column {:?}",
                            cols.value
                        )))
                    }
                },
            };
            width = names.len();
            header = Some(
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| (name, i))
                    .collect(),
            );
            if this_line_is_header {
                return Ok(());
            }
            // The header was a comment: this line is data; read it on the next pass of the logic below.
            let h = header.as_ref().expect("set above");
            return f(mapped(source, &cols, h, width, n, line, &fields))
                .map_err(ParseError::Callback);
        };
        f(mapped(source, &cols, h, width, n, line, &fields)).map_err(ParseError::Callback)
    })?;
    if header.is_none() {
        return Err(ParseError::Content("no data".into()));
    }
    Ok(())
}

fn mapped(
    source: &SourceConfig,
    cols: &crate::config::CsvColumns,
    h: &std::collections::HashMap<String, usize>,
    width: usize,
    n: usize,
    line: &str,
    fields: &[String],
) -> Row {
    if fields.len() != width {
        return Err(BadRow {
            reason: "bad-row",
            raw: format!(
                "line {n}: {} fields, header has {width}: {line}",
                fields.len()
            ),
        });
    }
    let get = |c: &Option<String>| {
        c.as_ref()
            .and_then(|c| h.get(c))
            .map(|i| fields[*i].trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let value = get(&Some(cols.value.clone())).unwrap_or_default();
    let mut r = report(source, &value, get(&cols.id));
    if let Some(t) = get(&cols.ioc_type) {
        r.ioc_type = t;
    }
    if let Some(fam) = get(&cols.family) {
        r.malware_printable = Some(fam);
    }
    if let Some(t) = get(&cols.threat_type) {
        r.threat_type = Some(t);
    }
    if let Some(c) = get(&cols.confidence)
        .and_then(|c| c.parse::<u8>().ok())
        .filter(|c| *c <= 100)
    {
        r.confidence = Some(c);
    }
    r.first_seen = get(&cols.first_seen).and_then(|t| parse_time(&t));
    r.last_seen = get(&cols.last_seen).and_then(|t| parse_time(&t));
    r.tags = get(&cols.tags);
    r.reference = get(&cols.reference);
    Ok(r)
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
        assert_eq!(
            line_values("127.0.0.1 a.example b.example # two"),
            ["a.example", "b.example"]
        );
        assert_eq!(line_values("1.2.3.4 mapped.example"), ["mapped.example"]);
        assert_eq!(line_values("45.192.105.203"), ["45.192.105.203"]);
        assert!(line_values("# only a comment").is_empty());
    }
}
