//! Bounded JSON reading for the ThreatFox export and API readers: a lexical [`Guard`] under the parser (no
//! string, number or nesting past a fixed size, whatever the document's shape), and a [`ReportSeed`] that
//! reads one report object straight into its known fields, each capped, without building a `Value`.
//! Together they make a report cost at most a few hundred KiB, however the input is shaped.

use std::io::{self, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::threatfox::{parse_bool, parse_confidence, parse_time, BadRow, Report, Row, MAX_LINE};

/// The longest `ioc_value` (or API `ioc`) of a report; a longer one rejects the report (`field-too-long`).
pub const MAX_VALUE: usize = 64 * 1024;
/// The longest any other field of a report may be (id, type, family, tags, reference, …); real ones are
/// well under 1 KiB.
pub const MAX_FIELD: usize = 4 * 1024;
/// The longest JSON string read at all: a longer one is no ThreatFox export, and the read fails.
pub const MAX_STRING: usize = MAX_LINE;
/// The longest number or literal (`true`, `null`) read.
pub const MAX_TOKEN: usize = 1024;
/// The deepest nesting read (an export is four levels deep: object, array, report, tag array).
pub const MAX_DEPTH: usize = 32;

/// The reject reason of a report with a field over its cap.
pub const FIELD_TOO_LONG: &str = "field-too-long";

/// A reader that fails as soon as the JSON text through it holds a string longer than [`MAX_STRING`], a
/// number longer than [`MAX_TOKEN`] or nesting deeper than [`MAX_DEPTH`]. The parser buffers each string
/// and long number whole, and skips nesting with a stack of its own: these are the bounds on that memory.
pub struct Guard<R> {
    inner: R,
    state: State,
    run: usize,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Token,
    Str,
    Escape,
}

impl<R> Guard<R> {
    pub fn new(inner: R) -> Self {
        Guard {
            inner,
            state: State::Between,
            run: 0,
            depth: 0,
        }
    }

    fn scan(&mut self, bytes: &[u8]) -> Result<(), String> {
        for &b in bytes {
            match self.state {
                State::Str => match b {
                    b'"' => self.state = State::Between,
                    b'\\' => self.state = State::Escape,
                    _ => self.run += 1,
                },
                State::Escape => {
                    self.state = State::Str;
                    self.run += 1;
                }
                State::Between | State::Token => match b {
                    b'"' => {
                        self.state = State::Str;
                        self.run = 0;
                    }
                    b'{' | b'[' => {
                        self.state = State::Between;
                        self.depth += 1;
                        if self.depth > MAX_DEPTH {
                            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                        }
                    }
                    b'}' | b']' => {
                        self.state = State::Between;
                        self.depth = self.depth.saturating_sub(1);
                    }
                    b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => self.state = State::Between,
                    _ => {
                        if self.state == State::Between {
                            self.state = State::Token;
                            self.run = 0;
                        }
                        self.run += 1;
                        if self.run > MAX_TOKEN {
                            return Err(format!(
                                "a number or literal longer than {MAX_TOKEN} bytes"
                            ));
                        }
                    }
                },
            }
            if self.run > MAX_STRING && matches!(self.state, State::Str | State::Escape) {
                return Err(format!("a string longer than {MAX_STRING} bytes"));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }
}

// ------------------------------------------------------------------------------------------ one value

/// What one JSON value was, as far as a report field cares: scalars kept (strings up to a cap), an array
/// kept as its strings (joined up to the cap), an object only noted.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Scalar {
    #[default]
    Null,
    Bool(bool),
    /// A number, as `serde_json::Number` displays it.
    Num(String),
    Str(String),
    /// An array's strings (empty for an array not kept).
    Strings(Vec<String>),
    Object,
    /// A string (or an array's strings) over the cap: its length, and its first characters.
    TooLong(usize, String),
}

/// Reads one value as a [`Scalar`]: strings up to `cap` bytes; an array's strings if `list` (otherwise the
/// array is skipped, as an object always is).
#[derive(Clone, Copy)]
pub struct ScalarSeed {
    pub cap: usize,
    pub list: bool,
}

fn prefix(s: &str) -> String {
    s.chars().take(80).collect()
}

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Num(
            serde_json::Number::from_f64(v)
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(if v.len() > self.cap {
            Scalar::TooLong(v.len(), prefix(v))
        } else {
            Scalar::Str(v.to_string())
        })
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Scalar, S::Error> {
        if !self.list {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Scalar::Strings(Vec::new()));
        }
        let mut out = Vec::new();
        let mut len = 0usize;
        let mut too_long = None;
        let each = ScalarSeed {
            cap: self.cap,
            list: false,
        };
        while let Some(item) = seq.next_element_seed(each)? {
            let s = match item {
                Scalar::Str(s) => s,
                Scalar::TooLong(n, p) => {
                    too_long.get_or_insert((len + n, p));
                    continue;
                }
                _ => continue,
            };
            len += s.len() + 1;
            match &too_long {
                Some(_) => {}
                None if len > self.cap => too_long = Some((len, prefix(&out.join(",")))),
                None => out.push(s),
            }
        }
        Ok(match too_long {
            Some((n, p)) => Scalar::TooLong(n, p),
            None => Scalar::Strings(out),
        })
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Scalar, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl Scalar {
    /// The value as the reader stores text: a non-empty string other than `None`, a number, or an array's
    /// strings joined with commas.
    fn text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) if !s.is_empty() && s != "None" => Some(s.clone()),
            Scalar::Num(n) => Some(n.clone()),
            Scalar::Strings(v) if !v.is_empty() => Some(v.join(",")),
            _ => None,
        }
    }

    /// A short rendering for a rejected row.
    pub fn sketch(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => n.clone(),
            Scalar::Str(s) => format!("{:?}", prefix(s)),
            Scalar::Strings(_) => "[…]".into(),
            Scalar::Object => "{…}".into(),
            Scalar::TooLong(n, p) => format!("{p:?}… ({n} bytes)"),
        }
    }
}

// ----------------------------------------------------------------------------------------- one report

/// The report fields read; every other key is skipped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    IocValue,
    Ioc,
    IocType,
    ThreatType,
    Malware,
    FkMalware,
    MalwarePrintable,
    MalwareAlias,
    FirstSeenUtc,
    FirstSeen,
    LastSeenUtc,
    LastSeen,
    ConfidenceLevel,
    IsCompromised,
    Reference,
    Tags,
    Reporter,
}

const FIELDS: [(&str, Field); 18] = [
    ("id", Field::Id),
    ("ioc_value", Field::IocValue),
    ("ioc", Field::Ioc),
    ("ioc_type", Field::IocType),
    ("threat_type", Field::ThreatType),
    ("malware", Field::Malware),
    ("fk_malware", Field::FkMalware),
    ("malware_printable", Field::MalwarePrintable),
    ("malware_alias", Field::MalwareAlias),
    ("first_seen_utc", Field::FirstSeenUtc),
    ("first_seen", Field::FirstSeen),
    ("last_seen_utc", Field::LastSeenUtc),
    ("last_seen", Field::LastSeen),
    ("confidence_level", Field::ConfidenceLevel),
    ("is_compromised", Field::IsCompromised),
    ("reference", Field::Reference),
    ("tags", Field::Tags),
    ("reporter", Field::Reporter),
];

impl Field {
    fn name(self) -> &'static str {
        FIELDS[self as usize].0
    }
    fn cap(self) -> usize {
        match self {
            Field::IocValue | Field::Ioc => MAX_VALUE,
            _ => MAX_FIELD,
        }
    }
}

/// A report object's known fields, each within its cap (the first one over it noted instead).
#[derive(Debug, Default)]
pub struct RawReport {
    fields: [Scalar; FIELDS.len()],
    too_long: Option<(&'static str, usize, usize, String)>,
}

/// One element where a report belongs: a report object, or something else (sketched, for the rejects).
pub enum Entry {
    Report(Box<RawReport>),
    Other(String),
}

/// Reads one value where a report object belongs, field by field.
pub struct ReportSeed;

struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<Field>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Field>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<Field>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Field>, E> {
        Ok(FIELDS.iter().find(|(n, _)| *n == v).map(|(_, f)| *f))
    }
}

impl<'de> DeserializeSeed<'de> for ReportSeed {
    type Value = Entry;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed {
    type Value = Entry;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a report object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entry, M::Error> {
        let mut r = RawReport::default();
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(field) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let v = map.next_value_seed(ScalarSeed {
                cap: field.cap(),
                list: true,
            })?;
            if let Scalar::TooLong(n, p) = &v {
                r.too_long
                    .get_or_insert((field.name(), *n, field.cap(), p.clone()));
            }
            // A repeated key: the last one counts (as for any JSON object read into a map).
            r.fields[field as usize] = v;
        }
        Ok(Entry::Report(Box::new(r)))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Entry, S::Error> {
        other(
            ScalarSeed {
                cap: 0,
                list: false,
            }
            .visit_seq(seq)?,
        )
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        other(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Entry, E> {
        other(Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Entry, E> {
        other(
            ScalarSeed {
                cap: 0,
                list: false,
            }
            .visit_u64(v)?,
        )
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Entry, E> {
        other(
            ScalarSeed {
                cap: 0,
                list: false,
            }
            .visit_i64(v)?,
        )
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Entry, E> {
        other(
            ScalarSeed {
                cap: 0,
                list: false,
            }
            .visit_f64(v)?,
        )
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        other(
            ScalarSeed {
                cap: 80,
                list: false,
            }
            .visit_str(v)?,
        )
    }
}

fn other<E>(s: Scalar) -> Result<Entry, E> {
    Ok(Entry::Other(s.sketch()))
}

impl RawReport {
    fn get(&self, f: Field) -> &Scalar {
        &self.fields[f as usize]
    }

    fn text(&self, f: Field) -> Option<String> {
        self.get(f).text()
    }

    /// The report's own `id` field, when it has a usable one (a string or a number).
    pub fn own_id(&self) -> Option<String> {
        match self.get(Field::Id) {
            Scalar::Str(s) if !s.is_empty() && s != "null" => Some(s.clone()),
            Scalar::Num(n) => Some(n.clone()),
            _ => None,
        }
    }

    /// The row: the report, with its own `id` or else `id`; or a `field-too-long` reject naming the field.
    pub fn into_row(self, id: &str) -> Row {
        let id_len = self.own_id().map_or(id.len(), |i| i.len());
        let too_long = self
            .too_long
            .clone()
            .or_else(|| (id_len > MAX_FIELD).then(|| ("id", id_len, MAX_FIELD, prefix(id))));
        if let Some((field, len, cap, start)) = too_long {
            return Err(BadRow {
                reason: FIELD_TOO_LONG,
                raw: format!(
                    "{}: {field} of {len} bytes, over the {cap}-byte cap: {start:?}…",
                    prefix(id)
                ),
            });
        }
        let time = |a, b| {
            self.text(a)
                .or_else(|| self.text(b))
                .and_then(|s| parse_time(&s))
        };
        Ok(Report {
            report_id: self.text(Field::Id).or_else(|| Some(id.to_string())),
            value: self
                .text(Field::IocValue)
                .or_else(|| self.text(Field::Ioc))
                .unwrap_or_default(),
            ioc_type: self.text(Field::IocType).unwrap_or_default(),
            threat_type: self.text(Field::ThreatType),
            malware: self
                .text(Field::Malware)
                .or_else(|| self.text(Field::FkMalware)),
            malware_printable: self.text(Field::MalwarePrintable),
            malware_alias: self.text(Field::MalwareAlias),
            first_seen: time(Field::FirstSeenUtc, Field::FirstSeen),
            last_seen: time(Field::LastSeenUtc, Field::LastSeen),
            confidence: match self.get(Field::ConfidenceLevel) {
                Scalar::Num(n) => n.parse::<u64>().ok().filter(|n| *n <= 100).map(|n| n as u8),
                Scalar::Str(s) => parse_confidence(s),
                _ => None,
            },
            is_compromised: match self.get(Field::IsCompromised) {
                Scalar::Bool(b) => *b,
                Scalar::Str(s) => parse_bool(s),
                Scalar::Num(n) => n == "1",
                _ => false,
            },
            reference: self.text(Field::Reference),
            tags: self.text(Field::Tags),
            reporter: self.text(Field::Reporter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_bounds_strings_numbers_and_nesting() {
        let scan = |s: &[u8]| Guard::new(&b""[..]).scan(s);
        assert!(scan(br#"{"a": "b\"c", "n": [1, 2.5e3, true, null]}"#).is_ok());
        let mut long = b"\"".to_vec();
        long.extend(std::iter::repeat(b'a').take(MAX_STRING));
        assert!(scan(&long).is_ok());
        long.push(b'a');
        assert_eq!(
            scan(&long).unwrap_err(),
            format!("a string longer than {MAX_STRING} bytes")
        );
        assert!(scan(&vec![b'1'; MAX_TOKEN + 1]).is_err());
        assert!(scan(&[b'['; MAX_DEPTH]).is_ok());
        assert!(scan(&[b'['; MAX_DEPTH + 1]).is_err());
        // Brackets inside strings are text.
        assert!(scan(format!("\"{}\"", "[".repeat(100)).as_bytes()).is_ok());
    }
}
