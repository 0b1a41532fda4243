//! `csv`: a Microsoft Sentinel watchlist (SPEC §9.4). UTF-8 without BOM, RFC 4180 quoting and CRLF, ISO 8601
//! UTC times, `Indicator` as the SearchKey. No cell may start with `= + - @`, a tab or a carriage return,
//! because a spreadsheet would evaluate it (CSV formula injection): such a cell gets a leading `'`.

use super::Entry;
use crate::clock::iso;
use crate::normalise::is_valid;

pub const HEADER: &str =
    "Indicator,Type,Family,ThreatType,Confidence,Score,FirstSeen,LastSeen,Reference,Tags";

pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::with_capacity(64 * (entries.len() + 1));
    out.push_str(HEADER);
    out.push_str("\r\n");
    for e in entries {
        if !is_valid(e.ioc_type, &e.value) {
            tracing::warn!(value = %e.value.escape_debug(), "csv: refusing an invalid value");
            continue;
        }
        let join = |s: &std::collections::BTreeSet<String>, sep: &str| {
            s.iter().map(String::as_str).collect::<Vec<_>>().join(sep)
        };
        let cells = [
            e.value.clone(),
            e.ioc_type.as_str().to_string(),
            join(&e.families, "; "),
            join(&e.threat_types, "; "),
            e.confidence.to_string(),
            e.score.to_string(),
            e.first_seen.map(iso).unwrap_or_default(),
            e.last_seen.map(iso).unwrap_or_default(),
            join(&e.references, " "),
            join(&e.tags, ","),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&cell(c));
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// One safe, quoted-when-needed cell.
pub fn cell(raw: &str) -> String {
    // Controls (newlines included) never survive into a cell: a watchlist row is one line.
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    // A spreadsheet may skip leading blanks before it looks for a formula: look past them too.
    if s.trim_start().starts_with(['=', '+', '-', '@', '\t', '\r']) {
        s = format!("'{}", s.trim_start());
    }
    let s = s.replace('\t', " ");
    if s.contains([',', '"', '\'']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_inert() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x.example\",\"click\")"),
            "\"'=HYPERLINK(\"\"http://x.example\"\",\"\"click\"\")\""
        );
        assert_eq!(cell("+1"), "\"'+1\"");
        // A tab never starts a cell (it becomes a blank, and blanks are looked past).
        assert_eq!(cell("\tx"), "\" x\"");
        assert_eq!(cell("\t=x"), "\"'=x\"");
        assert_eq!(cell("a\nb"), "a b");
        assert_eq!(cell("\n=1+1"), "\"'=1+1\"");
        assert_eq!(cell("\u{a0}=1+1"), "\"'=1+1\"");
        assert_eq!(cell("plain.example.com"), "plain.example.com");
    }
}
