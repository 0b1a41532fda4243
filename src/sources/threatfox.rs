//! Readers for the abuse.ch ThreatFox export files (SPEC §5): JSON (an object keyed by IOC id, each value a
//! one-element array) and CSV (`#` header block, commented column line, `", "` separators), plain, gzip or
//! ZIP, detected from the content. Both are streamed: one report at a time reaches the callback.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::json;

/// One upstream report of one indicator, as ThreatFox published it (before normalisation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub report_id: Option<String>,
    pub value: String,
    pub ioc_type: String,
    pub threat_type: Option<String>,
    pub malware: Option<String>,
    pub malware_printable: Option<String>,
    pub malware_alias: Option<String>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub confidence: Option<u8>,
    pub is_compromised: bool,
    pub reference: Option<String>,
    pub tags: Option<String>,
    pub reporter: Option<String>,
}

impl Report {
    /// The first field over its cap (`ioc_value` 64 KiB, the others 4 KiB), whatever format the report came
    /// in: the JSON reader stops such a field as it reads, and every other reader is checked here.
    pub fn oversize_field(&self) -> Option<&'static str> {
        use super::json::{MAX_FIELD, MAX_VALUE};
        if self.value.len() > MAX_VALUE {
            return Some("ioc_value");
        }
        [
            ("report_id", &self.report_id),
            ("threat_type", &self.threat_type),
            ("malware", &self.malware),
            ("malware_printable", &self.malware_printable),
            ("malware_alias", &self.malware_alias),
            ("reference", &self.reference),
            ("tags", &self.tags),
            ("reporter", &self.reporter),
        ]
        .into_iter()
        .find(|(_, v)| v.as_ref().is_some_and(|v| v.len() > MAX_FIELD))
        .map(|(name, _)| name)
    }
}

/// A row that could not be read as a report: a reason code and the raw text, for the rejects table.
#[derive(Clone, Debug, PartialEq)]
pub struct BadRow {
    pub reason: &'static str,
    pub raw: String,
}

pub type Row = Result<Report, BadRow>;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid ZIP: {0}")]
    Zip(String),
    #[error("CSV: {0}")]
    Csv(String),
    #[error("{0}")]
    Content(String),
    #[error("{0}")]
    Callback(String),
}

/// The longest CSV line read; a longer one is an error, not an allocation.
pub const MAX_LINE: usize = 1 << 20;

/// The most lines one CSV record may span (quoted fields holding line breaks); a record that runs on
/// further is an error, like one longer than [`MAX_LINE`]: no indicator feed has a field of a thousand
/// lines, and past an unbalanced quote the reader cannot tell where the record ends.
pub const MAX_RECORD_LINES: usize = 1000;

/// Reads the next line into `buf`: at most [`MAX_LINE`] bytes, valid UTF-8, line ending removed; None at
/// the end of the input.
pub fn next_line<'b, R: BufRead>(
    r: &mut R,
    buf: &'b mut Vec<u8>,
    n: usize,
) -> Result<Option<&'b str>, String> {
    buf.clear();
    if r.take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| e.to_string())?
        == 0
    {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(format!("line {n}: longer than {MAX_LINE} bytes"));
    }
    let line = std::str::from_utf8(buf).map_err(|_| format!("line {n}: invalid UTF-8"))?;
    Ok(Some(line.trim_end_matches(['\n', '\r'])))
}

/// Reads the next CSV record: a line, joined with the lines after it while a quoted field is still open
/// (RFC 4180 lets a quoted field hold line breaks; reading line by line would let one field forge rows).
/// A byte-order mark on the first line is dropped. `n` counts lines.
pub fn next_record<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    n: &mut usize,
) -> Result<Option<String>, String> {
    *n += 1;
    let Some(first) = next_line(r, buf, *n)? else {
        return Ok(None);
    };
    let mut record = if *n == 1 {
        first.trim_start_matches('\u{feff}')
    } else {
        first
    }
    .to_string();
    if record.starts_with('#') {
        return Ok(Some(record));
    }
    // Whether a quoted field is open: the parity of the quotes so far, kept up line by line (each line's
    // quotes are counted once, so a record of many lines costs its length, not its length squared).
    let odd_quotes = |s: &str| s.bytes().filter(|b| *b == b'"').count() % 2 == 1;
    let mut open = odd_quotes(&record);
    let start = *n;
    while open {
        if *n + 1 - start >= MAX_RECORD_LINES {
            return Err(format!(
                "line {start}: a quoted field runs on past {MAX_RECORD_LINES} lines"
            ));
        }
        *n += 1;
        let Some(more) = next_line(r, buf, *n)? else {
            *n -= 1; // no such line
            break; // unterminated at the end: the caller's parser reports it
        };
        if record.len() + more.len() >= MAX_LINE {
            return Err(format!(
                "line {}: a quoted field runs on past {MAX_LINE} bytes",
                *n
            ));
        }
        open ^= odd_quotes(more);
        record.push('\n');
        record.push_str(more);
    }
    Ok(Some(record))
}

/// The columns without which a CSV export cannot be imported.
pub const REQUIRED_CSV_COLUMNS: [&str; 4] = [
    "ioc_value",
    "ioc_type",
    "first_seen_utc",
    "confidence_level",
];

/// A reader that fails once more than `cap` bytes have come through it: a small gzip or ZIP can expand to
/// gigabytes, so the size cap applies after decompression.
pub struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Self {
        Capped {
            inner,
            left: cap,
            cap,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "content larger than the {}-byte cap once decompressed",
                self.cap
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Most entries a ZIP may hold: a ThreatFox dump holds one file.
pub const MAX_ZIP_ENTRIES: u64 = 64;

/// The entry count in a ZIP's end-of-central-directory record (ZIP64's when the classic field is full),
/// read from the file's tail; `None` when no record is found (the ZIP reader then says what is wrong).
fn zip_entries(file: &mut std::fs::File) -> io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0))?;
    let tail = len.min(22 + 65_535 + 20);
    file.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::with_capacity(tail as usize);
    std::io::Read::take(&mut *file, tail).read_to_end(&mut buf)?;
    let Some(at) = (0..buf.len().saturating_sub(21))
        .rev()
        .find(|&i| buf[i..i + 4] == [b'P', b'K', 5, 6])
    else {
        return Ok(None);
    };
    let classic = u16::from_le_bytes([buf[at + 10], buf[at + 11]]);
    if classic != 0xffff {
        return Ok(Some(classic.into()));
    }
    // ZIP64: the locator just before the record points at the ZIP64 record, whose count is at offset 32.
    let Some(loc) = at
        .checked_sub(20)
        .filter(|&l| buf[l..l + 4] == [b'P', b'K', 6, 7])
    else {
        return Ok(Some(u64::MAX));
    };
    let offset = u64::from_le_bytes(buf[loc + 8..loc + 16].try_into().unwrap());
    let mut rec = [0u8; 40];
    file.seek(SeekFrom::Start(offset))?;
    if read_up_to(file, &mut rec)? < 40 || rec[..4] != [b'P', b'K', 6, 6] {
        return Ok(Some(u64::MAX));
    }
    Ok(Some(u64::from_le_bytes(rec[32..40].try_into().unwrap())))
}

/// Reads every report in the file at `path`, whatever its packaging, and hands each to `f`. At most
/// `max_bytes` of content are read, after decompression.
pub fn read_file(
    path: &Path,
    max_bytes: u64,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic)?;
    file.rewind()?;
    match &magic[..n] {
        [b'P', b'K', 3, 4] => {
            // The archive's directory is read into memory whole: refuse one with more entries than an
            // export could need before it is (a million empty entries took 600 MB).
            if let Some(n) = zip_entries(&mut file)? {
                if n > MAX_ZIP_ENTRIES {
                    return Err(ParseError::Zip(format!(
                        "{n} entries: not an export (at most {MAX_ZIP_ENTRIES})"
                    )));
                }
            }
            file.rewind()?;
            let mut zip = zip::ZipArchive::new(BufReader::new(file))
                .map_err(|e| ParseError::Zip(e.to_string()))?;
            let index = (0..zip.len())
                .find(|&i| zip.by_index(i).map(|e| e.is_file()).unwrap_or(false))
                .ok_or_else(|| ParseError::Zip("archive holds no file".into()))?;
            let entry = zip
                .by_index(index)
                .map_err(|e| ParseError::Zip(e.to_string()))?;
            read_stream(
                BufReader::with_capacity(1 << 16, Capped::new(entry, max_bytes)),
                f,
            )
        }
        [0x1f, 0x8b, ..] => read_stream(
            BufReader::with_capacity(
                1 << 16,
                Capped::new(flate2::read::MultiGzDecoder::new(file), max_bytes),
            ),
            f,
        ),
        _ => read_stream(
            BufReader::with_capacity(1 << 16, Capped::new(file, max_bytes)),
            f,
        ),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Detects JSON or CSV from the first non-blank byte and reads accordingly.
pub fn read_stream<R: BufRead>(
    mut r: R,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let first = loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(ParseError::Content("empty body".into()));
        }
        let skip = buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf)
            .count();
        if skip < buf.len() {
            let c = buf[skip];
            r.consume(skip);
            break c;
        }
        let len = buf.len();
        r.consume(len);
    };
    match first {
        b'{' => read_json(r, f),
        b'#' | b'"' => read_csv(r, f),
        b'<' => Err(ParseError::Content(
            "got an HTML page, not a ThreatFox export".into(),
        )),
        c => Err(ParseError::Content(format!(
            "not a ThreatFox export (JSON or CSV): starts with {:?}",
            c as char
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------- JSON

/// Reads an export object: one key (IOC id) at a time, and under it one report at a time, each handed to
/// `f` as soon as it is read. Nothing of the input is held beyond the report being read (see [`json`]).
fn read_json<R: Read>(
    r: R,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut callback_error = None;
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::new(json::Guard::new(r)));
    let seed = Entries {
        f,
        err: &mut callback_error,
    };
    let res = seed.deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = callback_error {
        return Err(ParseError::Callback(e));
    }
    res.map_err(|e| ParseError::Json(e.to_string()))
}

struct Entries<'a> {
    f: &'a mut dyn FnMut(Row) -> Result<(), String>,
    err: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of IOC id to report arrays")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(id) = map.next_key::<String>()? {
            map.next_value_seed(Reports {
                id: &id,
                f: &mut *self.f,
                err: &mut *self.err,
            })?;
        }
        Ok(())
    }
}

/// The value under one IOC id: an array of reports (streamed), one report, or something that is not.
struct Reports<'a> {
    id: &'a str,
    f: &'a mut dyn FnMut(Row) -> Result<(), String>,
    err: &'a mut Option<String>,
}

impl Reports<'_> {
    fn send<E: de::Error>(&mut self, row: Row) -> Result<(), E> {
        (self.f)(row).map_err(|e| {
            *self.err = Some(e.clone());
            de::Error::custom(e)
        })
    }

    fn other<E: de::Error>(mut self, v: json::Scalar) -> Result<(), E> {
        let raw = format!("{}: {}", self.id, v.sketch());
        self.send(Err(BadRow {
            reason: "bad-row",
            raw,
        }))
    }
}

impl<'de> DeserializeSeed<'de> for Reports<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reports<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of reports")
    }
    fn visit_seq<S: SeqAccess<'de>>(mut self, mut seq: S) -> Result<(), S::Error> {
        // One report per id is the export's shape; any further ones get ids of their own, so that no
        // report overwrites another.
        let mut n = 0usize;
        while let Some(entry) = seq.next_element_seed(json::ReportSeed)? {
            let id = match n {
                0 => self.id.to_string(),
                n => format!("{}#{n}", self.id),
            };
            let row = match entry {
                json::Entry::Report(r) if n == 0 => r.into_row(&id),
                json::Entry::Report(r) => r.into_row(&id).map(|mut r| {
                    r.report_id = Some(id.clone());
                    r
                }),
                json::Entry::Other(v) => Err(BadRow {
                    reason: "bad-row",
                    raw: format!("{id}: {v}"),
                }),
            };
            self.send(row)?;
            n += 1;
        }
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(mut self, map: M) -> Result<(), M::Error> {
        let row = match json::ReportSeed.visit_map(map)? {
            json::Entry::Report(r) => r.into_row(self.id),
            json::Entry::Other(v) => Err(BadRow {
                reason: "bad-row",
                raw: format!("{}: {v}", self.id),
            }),
        };
        self.send(row)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if self.id == "query_status" {
            let shown: String = s.chars().take(64).collect();
            return Err(de::Error::custom(format!(
                "upstream said query_status {shown:?}"
            )));
        }
        self.other(
            json::ScalarSeed {
                cap: 80,
                list: false,
            }
            .visit_str(s)?,
        )
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.other(json::Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.other(json::Scalar::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.other(json::Scalar::Num(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.other(json::Scalar::Num(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.other(
            json::ScalarSeed {
                cap: 0,
                list: false,
            }
            .visit_f64(v)?,
        )
    }
}

pub(crate) fn parse_confidence(s: &str) -> Option<u8> {
    s.trim().parse::<u8>().ok().filter(|n| *n <= 100)
}

pub(crate) fn parse_bool(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// The span of believable report times: 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const REPORT_TIMES: std::ops::RangeInclusive<i64> = 946_684_800..=253_402_300_799;

/// ThreatFox times: `2026-07-14 08:19:50`, sometimes with ` UTC`; RFC 3339 is accepted too. A time before
/// 2000 or after year 9999 (`0000-01-01 00:00:00`, `-262143-…`) is no time at all and is treated like an
/// unparseable one: the field is absent. Stored, it would be the IOC's first_seen forever (the earliest
/// wins) and make every STIX bundle invalid (year ≤ 0) or every time unprintable.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches(" UTC");
    let t = match chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        Ok(t) => t.and_utc().timestamp(),
        Err(_) => chrono::DateTime::parse_from_rfc3339(s).ok()?.timestamp(),
    };
    REPORT_TIMES.contains(&t).then_some(t)
}

// ----------------------------------------------------------------------------------------------------- CSV

/// Splits one CSV line: comma-separated, optional blanks before a field, `"…"` quoting with `""` escapes.
/// This reads RFC 4180 and ThreatFox's `", "` layout alike.
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim_end().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim_end().to_string());
        }
    }
}

struct Columns {
    names: Vec<String>,
    idx: std::collections::HashMap<String, usize>,
}

impl Columns {
    fn get<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        let v = row.get(*self.idx.get(name)?)?.as_str();
        (!v.is_empty() && v != "None").then_some(v)
    }
}

fn read_csv<R: BufRead>(
    mut r: R,
    f: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), ParseError> {
    let mut columns: Option<Columns> = None;
    // A ThreatFox export (commented column line) ends with `# Number of entries: N`: without it, or with
    // another count, the file was cut short, and a full dump cut short would withdraw what it lost.
    let mut threatfox_layout = false;
    let mut footer: Option<u64> = None;
    let mut data_rows = 0u64;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    while let Some(record) = next_record(&mut r, &mut buf, &mut line_no).map_err(ParseError::Csv)? {
        let line = record.as_str();
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let c = comment.trim_start();
            // The column line is the commented line of quoted names; in a plain CSV it is the first line.
            if c.starts_with('"') && columns.is_none() {
                columns = Some(header(c, line_no)?);
                threatfox_layout = true;
            } else if let Some(n) = c.strip_prefix("Number of entries:") {
                footer = n.trim().parse().ok();
            }
            continue;
        }
        if footer.is_some() {
            return Err(ParseError::Csv(format!(
                "line {line_no}: data after the '# Number of entries' footer"
            )));
        }
        let cols = match &columns {
            Some(c) => c,
            None => {
                // No commented header: the first line names the columns (an in-house CSV export).
                columns = Some(header(line, line_no)?);
                continue;
            }
        };
        let row = match split_csv_line(line) {
            Ok(fields) if fields.len() == cols.names.len() => Ok(csv_report(cols, &fields)),
            Ok(fields) => Err(BadRow {
                reason: "bad-row",
                raw: format!(
                    "line {line_no}: {} fields, header has {}: {line}",
                    fields.len(),
                    cols.names.len()
                ),
            }),
            Err(e) => Err(BadRow {
                reason: "bad-row",
                raw: format!("line {line_no}: {e}: {line}"),
            }),
        };
        data_rows += 1;
        f(row).map_err(ParseError::Callback)?;
    }
    if columns.is_none() {
        return Err(ParseError::Csv("no column header line".into()));
    }
    if threatfox_layout {
        match footer {
            Some(n) if n != data_rows => {
                return Err(ParseError::Csv(format!(
                    "truncated: the footer says {n} entries, the file holds {data_rows}"
                )))
            }
            None => {
                return Err(ParseError::Csv(
                    "truncated: no '# Number of entries' footer at the end".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn header(line: &str, line_no: usize) -> Result<Columns, ParseError> {
    let names: Vec<String> = split_csv_line(line)
        .map_err(|e| ParseError::Csv(format!("line {line_no}: column header: {e}")))?
        .into_iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut idx = std::collections::HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if idx.insert(n.clone(), i).is_some() {
            return Err(ParseError::Csv(format!(
                "line {line_no}: column {n:?} appears twice"
            )));
        }
    }
    let missing: Vec<&str> = REQUIRED_CSV_COLUMNS
        .iter()
        .copied()
        .filter(|c| !idx.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(ParseError::Csv(format!(
            "line {line_no}: missing required column{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    Ok(Columns { names, idx })
}

fn csv_report(c: &Columns, row: &[String]) -> Report {
    let s = |n: &str| c.get(row, n).map(str::to_string);
    Report {
        report_id: s("ioc_id"),
        value: c.get(row, "ioc_value").unwrap_or_default().to_string(),
        ioc_type: c.get(row, "ioc_type").unwrap_or_default().to_string(),
        threat_type: s("threat_type"),
        malware: s("fk_malware").or_else(|| s("malware")),
        malware_printable: s("malware_printable"),
        malware_alias: s("malware_alias"),
        first_seen: c.get(row, "first_seen_utc").and_then(parse_time),
        last_seen: c.get(row, "last_seen_utc").and_then(parse_time),
        confidence: c.get(row, "confidence_level").and_then(parse_confidence),
        is_compromised: c.get(row, "is_compromised").is_some_and(parse_bool),
        reference: s("reference"),
        tags: s("tags"),
        reporter: s("reporter"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_2000_to_9999_are_absent() {
        for t in [
            "-0001-01-01 00:00:00",
            "0000-01-01 00:00:00",
            "-262143-01-01 00:00:00",
            "+262142-12-31 23:59:59",
            "1999-12-31 23:59:59",
            "1970-01-01 00:00:00 UTC",
            "0001-01-01T00:00:00Z",
            "10000-01-01 00:00:00",
            "9999-12-31T23:59:59-01:00",
            "not a time",
        ] {
            assert_eq!(parse_time(t), None, "{t}");
        }
        assert_eq!(parse_time("2000-01-01 00:00:00"), Some(946_684_800));
        assert_eq!(parse_time("9999-12-31 23:59:59 UTC"), Some(253_402_300_799));
        assert_eq!(parse_time("2026-04-12T04:49:28Z"), Some(1775969368));
    }

    fn collect(input: &str) -> Result<Vec<Row>, ParseError> {
        let mut out = Vec::new();
        read_stream(input.as_bytes(), &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn csv_line_forms() {
        assert_eq!(
            split_csv_line(r#""a", "b,c", "d""e""#).unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert_eq!(split_csv_line("x,,y").unwrap(), ["x", "", "y"]);
        assert!(split_csv_line(r#""open"#).is_err());
    }

    #[test]
    fn csv_columns_by_name_and_bad_rows_counted() {
        let text = "# c\r\n# \"ioc_value\", \"extra\", \"ioc_type\", \"first_seen_utc\", \"confidence_level\", \"is_compromised\"\r\n\"Evil.COM\", \"?\", \"domain\", \"2026-04-12 04:49:28\", \"75\", \"True\"\r\n\"short\"\r\n# Number of entries: 2";
        let rows = collect(text).unwrap();
        assert_eq!(rows.len(), 2);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.value, "Evil.COM");
        assert_eq!(r.confidence, Some(75));
        assert!(r.is_compromised);
        assert_eq!(r.first_seen, Some(1775969368));
        assert_eq!(rows[1].as_ref().unwrap_err().reason, "bad-row");
    }

    #[test]
    fn csv_missing_required_column_is_an_error() {
        let e = collect(
            "# \"ioc_type\", \"first_seen_utc\", \"confidence_level\"\n\"domain\", \"x\", \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "CSV: line 1: missing required column ioc_value");
    }

    #[test]
    fn csv_without_its_footer_is_truncated() {
        let head = "# \"ioc_value\", \"ioc_type\", \"first_seen_utc\", \"confidence_level\"\n\"a.example.com\", \"domain\", \"2026-04-12 04:49:28\", \"75\"\n";
        assert!(collect(&format!("{head}# Number of entries: 1")).is_ok());
        let e = collect(head).unwrap_err().to_string();
        assert!(
            e.contains("truncated: no '# Number of entries' footer"),
            "{e}"
        );
        let e = collect(&format!("{head}# Number of entries: 2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("footer says 2 entries, the file holds 1"), "{e}");
        // A plain CSV with its header on the first line has no footer to check.
        assert!(collect("\"ioc_value\",\"ioc_type\",\"first_seen_utc\",\"confidence_level\"\na.example.com,domain,x,75\n").is_ok());
    }

    #[test]
    fn json_entries_stream_and_html_is_refused() {
        let rows = collect(r#"{"7": [{"ioc_value": "a.example.com", "ioc_type": "domain", "confidence_level": 90, "tags": "x,y"}], "8": 5}"#).unwrap();
        assert_eq!(rows.len(), 2);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.report_id.as_deref(), Some("7"));
        assert_eq!(r.tags.as_deref(), Some("x,y"));
        assert!(rows[1].is_err());
        let e = collect("<html><body>502</body></html>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTML"), "{e}");
        assert!(collect(r#"{"7": [{"ioc_value": "a"#).is_err());
    }
}
