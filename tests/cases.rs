//! `../shared/cases/values.tsv`: every row is a value as it arrives from a feed and what normalisation must
//! make of it (SPEC §6): the normalised value, or a rejection of the named kind.

mod common;

use iocfeed::normalise::normalise;

/// Undoes the file's C escapes (`\n`, `\r`, `\t`, `\\`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o)
            }
            None => out.push('\\'),
        }
    }
    out
}

#[test]
fn every_row_of_values_tsv() {
    let text = std::fs::read_to_string(common::shared().join("cases/values.tsv")).unwrap();
    let mut rows = 0;
    let mut failures = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 3, "bad row {line:?}");
        let (ioc_type, raw, expected) = (cols[0], unescape(cols[1]), cols[2]);
        rows += 1;
        let got = match normalise(ioc_type, &raw) {
            Ok(i) => i.value,
            Err(r) => format!("REJECT:{}", r.as_str()),
        };
        if got != expected {
            failures.push(format!(
                "{ioc_type} {raw:?}: expected {expected}, got {got}"
            ));
        }
    }
    assert!(rows >= 27, "only {rows} rows read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
