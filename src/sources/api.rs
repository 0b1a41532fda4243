//! The ThreatFox API (SPEC §5): `POST` with an `Auth-Key`, queries `malwareinfo` (per tracked family) and
//! `get_iocs`. `query_status` other than `ok` / `no_result`, and HTML error pages, are source errors.

use std::io::{BufRead, BufReader};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::path::Path;

use serde_json::json;

use super::json;
use super::threatfox::{BadRow, Capped, ParseError, Row};
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

/// Reads one saved API answer, handing each record to `f` as it is parsed: the `data` array is streamed,
/// so an answer of any size costs one record of memory at a time.
pub fn read_answer(
    path: &Path,
    max_bytes: u64,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<Answer, ParseError> {
    let mut r = BufReader::new(Capped::new(std::fs::File::open(path)?, max_bytes));
    let first = {
        let buf = r.fill_buf()?;
        buf.iter().copied().find(|b| !b.is_ascii_whitespace())
    };
    if first == Some(b'<') {
        return Err(ParseError::Content(
            "got an HTML page, not a ThreatFox API answer".into(),
        ));
    }
    let mut callback_error = None;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(json::Guard::new(r)));
    let seen = Fields {
        f,
        err: &mut callback_error,
        records: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    if let Some(e) = callback_error {
        return Err(ParseError::Callback(e));
    }
    let (status, records) = seen.map_err(|e| ParseError::Json(e.to_string()))?;
    match status.as_deref().unwrap_or("") {
        "ok" => Ok(Answer::Records(records)),
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

/// Visits the answer object: `query_status` kept, `data` streamed record by record, the rest skipped.
struct Fields<'a> {
    f: &'a mut dyn FnMut(Row) -> Result<(), String>,
    err: &'a mut Option<String>,
    records: usize,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = (Option<String>, usize);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = (Option<String>, usize);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a ThreatFox API answer object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut status = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "query_status" => {
                    status = Some(
                        match map.next_value_seed(json::ScalarSeed {
                            cap: 256,
                            list: false,
                        })? {
                            json::Scalar::Str(s) => s,
                            _ => "?".into(),
                        },
                    )
                }
                "data" => {
                    let records = map.next_value_seed(Records {
                        f: &mut *self.f,
                        err: &mut *self.err,
                    })?;
                    self.records += records;
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok((status, self.records))
    }
}

/// `data`: an array of records (streamed), or a string (the `no_result` message).
struct Records<'a> {
    f: &'a mut dyn FnMut(Row) -> Result<(), String>,
    err: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of IOC records, or a message")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<usize, S::Error> {
        let mut n = 0;
        while let Some(item) = seq.next_element_seed(json::ReportSeed)? {
            n += 1;
            // A record without an id is its own value's report (as for text lists), never a made-up id
            // that another answer could reuse.
            let row = match item {
                json::Entry::Report(r) => match r.own_id() {
                    Some(id) => r.into_row(&id),
                    None => r.into_row("").map(|mut r| {
                        r.report_id = None;
                        r
                    }),
                },
                json::Entry::Other(v) => Err(BadRow {
                    reason: "bad-row",
                    raw: format!(": {v}"),
                }),
            };
            if let Err(e) = (self.f)(row) {
                *self.err = Some(e.clone());
                return Err(de::Error::custom(e));
            }
        }
        Ok(n)
    }
}
