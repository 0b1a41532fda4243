//! Resource bounds of the readers, on scaled-down copies of the bombs a review found: many reports under one
//! JSON key, oversize fields and strings, deep nesting, and CSV quoted fields that run on for many lines.
//! What is asserted is the outcome (rows, rejects and their reasons, the error line), never a timing.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use common::*;
use iocfeed::config::SourceConfig;
use iocfeed::sources::{api, json};
use iocfeed::store;
use serde_json::json;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 14, 9, 0, 0).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Imports `file` as `threatfox-recent` (as `iocfeed pull threatfox-recent --file FILE` does).
fn import(data: &Path, file: &Path) -> Result<iocfeed::pull::Summary, String> {
    let (app, _) = app(default_config("http://127.0.0.1:1", data), now());
    app.pull_source("threatfox-recent", Some(file))
        .map_err(|e| e.to_string())
}

fn count(data: &Path, sql: &str) -> i64 {
    let st = store::Store::open(data).unwrap();
    st.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn remus(id: u64, value: &str) -> serde_json::Value {
    tf_report(id, value, "domain", "Remus", 90, "2026-07-14 08:00:00")
}

/// The export without each report's own `id`, so that the key is what names it (as in the real export).
fn without_id(mut r: serde_json::Value) -> serde_json::Value {
    r.as_object_mut().unwrap().remove("id");
    r
}

#[test]
fn a_key_holding_many_reports_imports_each_under_an_id_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let reports: Vec<String> = (0..5000)
        .map(|n| without_id(remus(0, &format!("x{n}.evil-remus.example"))).to_string())
        .collect();
    // The bomb's shape: one key, a long array; `{"a":1}` items as well, which carry no value.
    let body = format!(
        "{{\"1\": [{}, {}]}}",
        reports.join(","),
        vec![r#"{"a":1}"#; 3000].join(",")
    );
    let file = write(dir.path(), "many.json.gz", &gzip(body.as_bytes()));
    let data = dir.path().join("data");
    let s = import(&data, &file).unwrap();
    assert_eq!((s.rows, s.accepted, s.rejected), (8000, 5000, 3000));
    assert_eq!(s.rejects.get("unknown-type"), Some(&3000));
    assert_eq!(count(&data, "SELECT count(*) FROM ioc"), 5000);
    assert_eq!(count(&data, "SELECT count(*) FROM report"), 5000);
    assert_eq!(
        count(
            &data,
            "SELECT count(*) FROM report WHERE report_id IN ('1', '1#1', '1#4999')"
        ),
        3
    );
}

#[test]
fn an_oversize_field_rejects_its_report_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut long_value = remus(2, "ok.evil-remus.example");
    long_value["ioc_value"] = json!(format!("{}.evil-remus.example", "a".repeat(70_000)));
    let mut long_tags = remus(3, "tags.evil-remus.example");
    long_tags["tags"] = json!("t".repeat(json::MAX_FIELD + 1));
    let mut many_tags = remus(4, "tag-array.evil-remus.example");
    many_tags["tags"] = json!(vec!["tag"; 2000]);
    let mut unknown = remus(5, "unknown-key.evil-remus.example");
    unknown["comment"] = json!("c".repeat(500_000)); // not a field the reader keeps: skipped
    let body = tf_export(&[
        remus(1, "fine.evil-remus.example"),
        long_value,
        long_tags,
        many_tags,
        unknown,
    ]);
    let file = write(dir.path(), "oversize.json", &body);
    let data = dir.path().join("data");
    let s = import(&data, &file).unwrap();
    assert_eq!((s.rows, s.accepted, s.rejected), (5, 2, 3));
    assert_eq!(s.rejects.get(json::FIELD_TOO_LONG), Some(&3));
    let st = store::Store::open(&data).unwrap();
    let raws: Vec<String> = store::rejects(&st.conn)
        .unwrap()
        .into_iter()
        .filter(|r| r.1 == "field-too-long")
        .map(|r| r.2)
        .collect();
    assert!(
        raws.iter()
            .any(|r| r.starts_with("2: ioc_value of 70019 bytes, over the 65536-byte cap")),
        "{raws:?}"
    );
    assert!(
        raws.iter()
            .any(|r| r.starts_with("3: tags of 4097 bytes, over the 4096-byte cap")),
        "{raws:?}"
    );
    assert!(
        raws.iter().any(|r| r.starts_with("4: tags of ")),
        "{raws:?}"
    );
    let mut values: Vec<String> = store::all_iocs(&st.conn)
        .unwrap()
        .into_iter()
        .map(|i| i.value)
        .collect();
    values.sort();
    assert_eq!(
        values,
        ["fine.evil-remus.example", "unknown-key.evil-remus.example"]
    );
}

#[test]
fn a_string_past_the_reader_cap_fails_the_pull_in_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = write(
        dir.path(),
        "good.json",
        &tf_export(&[remus(1, "kept.evil-remus.example")]),
    );
    import(&data, &good).unwrap();
    // The 200 MB string of the review, scaled down: still past the longest string read.
    let body = format!(
        "{{\"1\":[{{\"ioc_value\":\"{}\",\"ioc_type\":\"domain\"}}]}}",
        "a".repeat(json::MAX_STRING + 10)
    );
    let file = write(dir.path(), "str.json.gz", &gzip(body.as_bytes()));
    let e = import(&data, &file).unwrap_err();
    let head = format!(
        "pull threatfox-recent from {} failed: invalid JSON: a string longer than {} bytes at line 1 column ",
        file.display(),
        json::MAX_STRING
    );
    assert!(e.starts_with(&head) && !e.contains('\n'), "{e}");
    assert_eq!(count(&data, "SELECT count(*) FROM ioc"), 1);
}

#[test]
fn deep_nesting_and_long_numbers_fail_the_pull() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(
        "{{\"1\":[{{\"x\":{}1{}}}]}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let file = write(dir.path(), "deep.json", deep.as_bytes());
    let e = import(&dir.path().join("a"), &file).unwrap_err();
    assert!(
        e.contains(&format!(
            "failed: invalid JSON: nested deeper than {} levels",
            json::MAX_DEPTH
        )),
        "{e}"
    );
    let long = format!("{{\"1\":[{{\"x\":{}}}]}}", "9".repeat(json::MAX_TOKEN + 1));
    let file = write(dir.path(), "num.json", long.as_bytes());
    let e = import(&dir.path().join("b"), &file).unwrap_err();
    assert!(e.contains("a number or literal longer than"), "{e}");
}

#[test]
fn api_answers_are_read_with_the_same_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let record = |id: &str, value: String| {
        json!({"id": id, "ioc": value, "ioc_type": "domain", "threat_type": "botnet_cc",
               "malware_printable": "Remus", "confidence_level": 90, "first_seen": "2026-07-14 08:00:00 UTC"})
    };
    let answer = json!({"query_status": "ok", "data": [
        record("1", "c2.remus-api.example".into()),
        record("2", "a".repeat(json::MAX_VALUE + 1)),
        5,
    ]});
    let file = write(dir.path(), "answer.json", answer.to_string().as_bytes());
    let mut rows = Vec::new();
    let got = api::read_answer(&file, 1 << 20, &mut |r| {
        rows.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(got, api::Answer::Records(3));
    let r = rows[0].as_ref().unwrap();
    assert_eq!(
        (r.report_id.as_deref(), r.value.as_str(), r.confidence),
        (Some("1"), "c2.remus-api.example", Some(90))
    );
    let bad = rows[1].as_ref().unwrap_err();
    assert_eq!(bad.reason, "field-too-long");
    assert!(bad.raw.starts_with("2: ioc of 65537 bytes"), "{}", bad.raw);
    assert_eq!(rows[2].as_ref().unwrap_err().reason, "bad-row");

    // Many records, streamed one at a time: all of them arrive.
    let many: Vec<serde_json::Value> = (0..3000)
        .map(|n| record(&n.to_string(), format!("x{n}.remus-api.example")))
        .collect();
    let answer = json!({"query_status": "ok", "data": many});
    let file = write(dir.path(), "many.json", answer.to_string().as_bytes());
    let mut n = 0;
    let got = api::read_answer(&file, 1 << 30, &mut |r| {
        assert!(r.is_ok());
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!((got, n), (api::Answer::Records(3000), 3000));

    let huge = format!(
        "{{\"query_status\": \"ok\", \"data\": [{{\"ioc\": \"{}\"}}]}}",
        "a".repeat(json::MAX_STRING + 1)
    );
    let file = write(dir.path(), "huge.json", huge.as_bytes());
    let e = api::read_answer(&file, 1 << 30, &mut |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "invalid JSON: a string longer than {} bytes at line 1",
            json::MAX_STRING
        )),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------------- CSV

/// A `csv` source reading `file` with columns `v` (value) and `t` (type).
fn csv_app(dir: &Path, file: &Path) -> std::sync::Arc<iocfeed::App> {
    let mut cfg = default_config("http://127.0.0.1:1", &dir.join("data"));
    let source: SourceConfig = toml::from_str(&format!(
        "name = \"bomb\"\nkind = \"csv\"\nurl = {:?}\nschedule = \"0 * * * *\"\ncolumns = {{ value = \"v\", type = \"t\" }}\n",
        url::Url::from_file_path(file).unwrap().to_string()
    ))
    .unwrap();
    cfg.sources.push(source);
    app(cfg, now()).0
}

/// The review's CSV, scaled down: a header, then records each a quote, `lines` line breaks, and a name.
fn run_on_csv(records: usize, lines: usize) -> String {
    let mut s = String::from("v,t\n");
    for n in 0..records {
        s.push('"');
        s.push_str(&"\n".repeat(lines));
        s.push_str(&format!("x{n}.evil-example.com\",domain\n"));
    }
    s
}

#[test]
fn quoted_fields_spanning_lines_within_the_cap_are_read_as_one_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "feed.csv",
        format!(
            "{}plain.evil-example.com,domain\n\"broken,domain\n",
            run_on_csv(4, 998)
        )
        .as_bytes(),
    );
    let app = csv_app(dir.path(), &file);
    let s = app.pull_source("bomb", None).unwrap();
    // Four records of 999 lines, one plain line, and an unterminated quote at the end (a bad row).
    assert_eq!((s.rows, s.accepted, s.rejected), (6, 5, 1), "{s:?}");
    assert_eq!(s.rejects.get("bad-row"), Some(&1));
    let st = app.store().unwrap();
    let raws: Vec<String> = store::rejects(&st.conn)
        .unwrap()
        .into_iter()
        .map(|r| r.2)
        .collect();
    // Line numbers count every line: 1 header + 4 × 999 + 1 plain line, then the broken one.
    assert!(
        raws.iter()
            .any(|r| r.starts_with("line 3999: unterminated quoted field")),
        "{raws:?}"
    );
    let mut values: Vec<String> = store::all_iocs(&st.conn)
        .unwrap()
        .into_iter()
        .map(|i| i.value)
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            "plain.evil-example.com",
            "x0.evil-example.com",
            "x1.evil-example.com",
            "x2.evil-example.com",
            "x3.evil-example.com"
        ]
    );
}

#[test]
fn a_quoted_field_running_on_past_the_line_cap_fails_the_pull_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bomb.csv", run_on_csv(4, 1000).as_bytes());
    let app = csv_app(dir.path(), &file);
    let e = app.pull_source("bomb", None).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "pull bomb from {} failed: line 2: a quoted field runs on past {} lines",
            url::Url::from_file_path(&file).unwrap(),
            iocfeed::sources::threatfox::MAX_RECORD_LINES
        )
    );
    let st = app.store().unwrap();
    assert!(store::all_iocs(&st.conn).unwrap().is_empty());
}

#[test]
fn a_threatfox_csv_export_has_the_same_line_cap() {
    let dir = tempfile::tempdir().unwrap();
    // The line breaks are in `reference`, a field kept as given, so both rows are accepted.
    let head =
        "# \"ioc_value\", \"ioc_type\", \"first_seen_utc\", \"confidence_level\", \"reference\"\n";
    let row = |v: &str, lines: usize| {
        format!(
            "\"{v}\", \"domain\", \"2026-07-14 08:00:00\", \"75\", \"see{}\"\n",
            "\n".repeat(lines)
        )
    };
    let within = format!(
        "{head}{}{}# Number of entries: 2",
        row("a.evil-example.com", 999),
        row("b.evil-example.com", 0)
    );
    let file = write(dir.path(), "within.csv", within.as_bytes());
    let s = import(&dir.path().join("a"), &file).unwrap();
    assert_eq!((s.rows, s.accepted), (2, 2), "{s:?}");
    let past = format!(
        "{head}{}# Number of entries: 1",
        row("a.evil-example.com", 1000)
    );
    let file = write(dir.path(), "past.csv", past.as_bytes());
    let e = import(&dir.path().join("b"), &file).unwrap_err();
    assert!(
        e.ends_with("failed: CSV: line 2: a quoted field runs on past 1000 lines"),
        "{e}"
    );
}

/// The field caps hold for every reader, not only JSON: a 100 KB URL in a CSV feed is rejected with the
/// reason, and the rest of the feed imports.
#[test]
fn csv_and_text_rows_meet_the_same_field_caps() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("http://c2.evil-host.xyz/{}", "a".repeat(100_000));
    let file = write(
        dir.path(),
        "feed.csv",
        format!("v,t\n{long},url\nhttp://c2.evil-host.xyz/ok,url\n").as_bytes(),
    );
    let app = csv_app(dir.path(), &file);
    let s = app.pull_source("bomb", None).unwrap();
    assert_eq!((s.rows, s.accepted, s.rejected), (2, 1, 1));
    assert_eq!(s.rejects.get(json::FIELD_TOO_LONG), Some(&1));
    let raw: String = store::Store::open(&dir.path().join("data"))
        .unwrap()
        .conn
        .query_row("SELECT raw FROM reject", [], |r| r.get(0))
        .unwrap();
    assert!(
        raw.starts_with("ioc_value over its cap: http://c2.evil-host.xyz/aaa"),
        "{raw}"
    );
    assert!(raw.len() < 300);
}

/// A ZIP's directory is read whole, so one with many entries is refused before it is read; a dump of one
/// file (and a few more) reads as ever.
#[test]
fn a_zip_of_many_entries_is_refused_before_its_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let zip_of = |entries: usize| {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            z.start_file("full.json", opts).unwrap();
            z.write_all(
                serde_json::to_string(
                    &json!({"1": [without_id(remus(1, "c2.zip-remus.example"))]}),
                )
                .unwrap()
                .as_bytes(),
            )
            .unwrap();
            for i in 1..entries {
                z.start_file(format!("pad-{i}.txt"), opts).unwrap();
            }
            z.finish().unwrap();
        }
        buf.into_inner()
    };
    let many = write(dir.path(), "many.zip", &zip_of(100));
    let e = import(&dir.path().join("a"), &many).unwrap_err();
    assert!(
        e.contains("invalid ZIP: 100 entries: not an export (at most 64)"),
        "{e}"
    );
    let few = write(dir.path(), "few.zip", &zip_of(3));
    let s = import(&dir.path().join("b"), &few).unwrap();
    assert_eq!(s.accepted, 1);
}
