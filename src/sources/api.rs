//! The ThreatFox API (SPEC §5): `POST` with an `Auth-Key`, queries `malwareinfo` (per tracked family) and
//! `get_iocs`. `query_status` other than `ok` / `no_result`, and HTML error pages, are source errors.

use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::{json, Value};

use super::threatfox::{json_report, Capped, ParseError, Row};
use crate::config::{ApiQuery, Config, SourceConfig};

/// The request bodies of one pull: (tag for the temporary file, JSON body).
pub fn requests(source: &SourceConfig, cfg: &Config) -> Vec<(String, String)> {
    match source.query.unwrap_or(ApiQuery::Malwareinfo) {
        ApiQuery::GetIocs => vec![(
            "-get_iocs".into(),
            json!({"query": "get_iocs", "days": source.days.unwrap_or(1)}).to_string(),
        )],
        ApiQuery::Malwareinfo => {
            let families: Vec<String> = if source.families.is_empty() {
                cfg.families.iter().map(|f| f.name.clone()).collect()
            } else {
                source.families.clone()
            };
            families
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    (
                        format!("-malwareinfo{i}"),
                        json!({"query": "malwareinfo", "malware": f, "limit": source.limit.unwrap_or(1000)}).to_string(),
                    )
                })
                .collect()
        }
    }
}

/// What an API answer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// `query_status: ok`, with this many records.
    Records(usize),
    /// `query_status: no_result`: a successful, empty answer.
    NoResult,
}

/// Reads one saved API answer, handing each record to `f`.
pub fn read_answer(
    path: &Path,
    max_bytes: u64,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<Answer, ParseError> {
    let mut text = Vec::new();
    Capped::new(BufReader::new(std::fs::File::open(path)?), max_bytes).read_to_end(&mut text)?;
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    if text[start..].starts_with(b"<") {
        return Err(ParseError::Content(
            "got an HTML page, not a ThreatFox API answer".into(),
        ));
    }
    let v: Value = serde_json::from_slice(&text).map_err(|e| ParseError::Json(e.to_string()))?;
    let status = v.get("query_status").and_then(Value::as_str).unwrap_or("");
    match status {
        "ok" => {
            let data = v.get("data").and_then(Value::as_array).ok_or_else(|| {
                ParseError::Content("query_status ok without a data array".into())
            })?;
            for (i, item) in data.iter().enumerate() {
                let id = item
                    .get("id")
                    .map(|x| x.to_string().trim_matches('"').to_string())
                    .unwrap_or_else(|| format!("api-{i}"));
                f(json_report(&id, item)).map_err(ParseError::Callback)?;
            }
            Ok(Answer::Records(data.len()))
        }
        "no_result" => Ok(Answer::NoResult),
        other => {
            // Upstream text goes into our logs: keep it short and printable.
            let shown: String = other
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            Err(ParseError::Content(if shown.is_empty() {
                "the API answer has no query_status".into()
            } else {
                format!("the API answered query_status {shown:?}")
            }))
        }
    }
}
